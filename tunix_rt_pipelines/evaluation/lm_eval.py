"""lm-eval-harness's GSM8K scoring, reproduced, so our figures can be set against the field's.

``strict-match``: the *first* match of ``#### (\\-?[0-9\\.\\,]+)`` (``take_first``).
``flexible-extract``: the *last* match of ``(-?[$0-9.,]{2,})|(-?[0-9]+)`` (``group_select: -1``),
its first non-empty group. Either falls back to ``[invalid]`` and is stripped of whitespace.
Then ``exact_match`` with ``ignore_case`` and ``regexes_to_ignore`` ``[",", "\\$", "(?s).*#### ",
"\\.$"]`` applied, in that order, to prediction and reference alike; equal strings match.

Like lm-eval, this reads the raw output: think blocks are *not* stripped and the first ``####``
wins for strict, which are the known complaints our own extraction answers.
"""

from __future__ import annotations

import re
from functools import lru_cache

INVALID = "[invalid]"
STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_TRAILING_DOT = re.compile(r"\.$")


def clean(s: str) -> str:
    """lm-eval's ``regexes_to_ignore`` for GSM8K, then lower case (``ignore_case``)."""
    if "," in s:
        s = s.replace(",", "")
    if "$" in s:
        s = s.replace("$", "")
    i = s.rfind("#### ")  # "(?s).*#### " is greedy: it removes everything up to the last marker
    if i >= 0:
        s = s[i + 5:]
    if s.endswith(".") or s.endswith(".\n"):
        s = _TRAILING_DOT.sub("", s)
    return s.lower()


clean_reference = lru_cache(maxsize=1 << 16)(clean)


def strict_answer(output: str) -> str:
    """What lm-eval's strict-match filter extracts from ``output`` (``[invalid]`` when nothing)."""
    i = output.find("#### ")
    if i < 0:
        return INVALID
    m = STRICT.search(output, i)
    return m.group(1).strip() if m else INVALID


def flexible_answer(output: str) -> str:
    """What lm-eval's flexible-extract filter extracts from ``output`` (``[invalid]`` when nothing)."""
    # Matches never span a newline, so the last match lies in the last line that has one:
    # try the last line before scanning the whole output (same result, less work).
    pos = output.rfind("\n") + 1
    found = FLEXIBLE.findall(output, pos)
    if not found and pos:
        found = FLEXIBLE.findall(output, 0, pos)
    if not found:
        return INVALID
    a, b = found[-1]
    return (a or b).strip()


def lm_eval_matches(output: str, expected: str) -> tuple[bool, bool]:
    """(strict_match, flexible_match) as lm-eval-harness's GSM8K task decides them."""
    target = clean_reference(expected)
    return clean(strict_answer(output)) == target, clean(flexible_answer(output)) == target
