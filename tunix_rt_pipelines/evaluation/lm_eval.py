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
_RUN = re.compile(r"[$0-9.,]+")  # what FLEXIBLE's matches are made of (see flexible_answer)


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
    """What lm-eval's flexible-extract filter extracts from ``output`` (``[invalid]`` when nothing).

    Scanned from the end instead of ``findall`` over the whole output; the same answer, because
    the pattern's matches are exactly the maximal runs of ``[$0-9.,]`` that are two or more
    characters long or a single digit, each with the ``-`` right before it if there is one:
    left-to-right, the first alternative takes a whole run of two or more greedily, the second a
    lone digit, and a lone ``.``, ``,`` or ``$`` matches neither. So the last match is the last
    such run.
    """
    reverse = output[::-1]
    pos = 0
    while True:
        m = _RUN.search(reverse, pos)
        if m is None:
            return INVALID
        run = m.group()
        if len(run) >= 2 or run.isdigit():
            end = m.end()
            sign = "-" if end < len(reverse) and reverse[end] == "-" else ""
            return sign + run[::-1]
        pos = m.end()


def lm_eval_matches(output: str, expected: str) -> tuple[bool, bool]:
    """(strict_match, flexible_match) as lm-eval-harness's GSM8K task decides them."""
    target = clean_reference(expected)
    return clean(strict_answer(output)) == target, clean(flexible_answer(output)) == target
