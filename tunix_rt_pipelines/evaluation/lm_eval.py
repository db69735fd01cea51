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
_TRAILING_DOT = re.compile(r"\.$")
# flexible-extract's last match, searched for in the reversed output (see flexible_key): a run, then its sign.
_FLEXIBLE_REVERSED = re.compile(r"([$0-9.,]{2,}|[0-9])(-?)")


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


def _clean_run(s: str) -> str:
    """``clean`` of a string made of ``[-$0-9.,]`` only: no case, no ``#### `` and no newline to handle."""
    if "," in s:
        s = s.replace(",", "")
    if "$" in s:
        s = s.replace("$", "")
    return s[:-1] if s[-1:] == "." else s


def strict_key(output: str, start: int | None = None) -> str:
    """What lm-eval's strict-match compares for ``output``: its filter's answer, cleaned
    (``[invalid]`` when nothing). ``start``: ``output.find("#### ")`` when the caller has it."""
    i = output.find("#### ") if start is None else start
    if i < 0:
        return INVALID
    m = STRICT.search(output, i)
    return _clean_run(m.group(1)) if m else INVALID  # the group holds no whitespace: strip() is a no-op


def flexible_key(output: str) -> str:
    """What lm-eval's flexible-extract compares for ``output``: its filter's answer, cleaned
    (``[invalid]`` when nothing).

    Found from the end instead of ``findall`` over the whole output, with the same answer: the
    pattern's matches are exactly the maximal runs of ``[$0-9.,]`` that are two or more characters
    long or a single digit, each with the ``-`` right before it if there is one (left to right, the
    first alternative takes a whole run of two or more greedily, the second a lone digit, and a lone
    ``.``, ``,`` or ``$`` matches neither). So the last match is the first such run in the reversed
    output, where a search for ``_FLEXIBLE_REVERSED`` can only start at a run's first character.
    """
    m = _FLEXIBLE_REVERSED.search(output[::-1])
    if m is None:
        return INVALID
    run, sign = m.groups()
    return _clean_run(sign + run[::-1])


def lm_eval_matches(output: str, expected: str) -> tuple[bool, bool]:
    """(strict_match, flexible_match) as lm-eval-harness's GSM8K task decides them."""
    target = clean_reference(expected)
    return strict_key(output) == target, flexible_key(output) == target
