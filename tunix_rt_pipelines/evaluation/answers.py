"""``answer_correctness@v1``: extract the final answer from reasoning output and compare it to the expected one.

Locked: any change to extraction or normalisation is a new version, so scores stored under
``@v1`` stay comparable with each other.

Extraction, in order:

1. Think blocks are removed (``<think>…</think>``). An unclosed ``<think>`` means the model
   never left its reasoning: nothing after it counts, and the item is usually ``invalid``.
2. Explicit markers: ``#### X``, ``Answer: X`` (any case), ``\\boxed{X}`` (nested braces
   allowed). Of all marker occurrences the *last by position* wins, so a marker recited in the
   reasoning does not shadow the final one.
3. Otherwise the last number in the text (``last_number``).
4. Nothing found: outcome ``invalid`` (kept apart from ``wrong``).

Comparison after normalisation: surrounding ``**bold**``, whitespace, a trailing ``.``,
thousands separators, currency signs (``$ € £``) and unicode minus/dashes are dropped; numbers
(integers, decimals, fractions ``a/b``) are compared exactly as rationals (``0.5 == 1/2``,
``7.0 == 7``); a trailing ``%`` is kept on both sides (``25%`` is not ``25``); text is compared
case- and whitespace-insensitively.

The lm-eval-harness GSM8K filters are reported beside ours (``strict_match``: ``#### (-?[0-9.,]+)``;
``flexible_match``: the last match of ``(-?[$0-9.,]{2,})|(-?[0-9]+)``; both cleaned of ``,``, ``$``
and a trailing ``.`` and compared as strings), so our figures can be set against the field's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

METRIC = "answer_correctness@v1"

_THINK_CLOSED = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think>.*\Z", re.DOTALL | re.IGNORECASE)
_HASH = re.compile(r"####\s*([^\n]*)")
_ANSWER = re.compile(r"(?i)\banswer\s*[:：]\s*([^\n]*)")
_BOXED = re.compile(r"\\boxed\s*\{")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_DASHES = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\ufe63": "-", "\uff0d": "-"})
_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_PLAIN_INT = re.compile(r"-?\d+")


@dataclass(frozen=True, slots=True)
class ItemScore:
    outcome: str  # correct | wrong | invalid
    extracted: str | None  # the answer as found (before normalisation); None when invalid
    extractor: str  # marker_hash | marker_answer | boxed | last_number | none
    strict_match: bool  # lm-eval-harness GSM8K strict filter
    flexible_match: bool  # lm-eval-harness GSM8K flexible filter


def strip_think(text: str) -> str:
    return _THINK_OPEN.sub("", _THINK_CLOSED.sub("", text))


def _boxed(text: str) -> list[tuple[int, str]]:
    """(position, content) of every ``\\boxed{...}``, braces balanced."""
    found = []
    for m in _BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found.append((m.start(), text[m.end() : i - 1]))
    return found


def extract(text: str) -> tuple[str | None, str]:
    """(answer, extractor) from model output; (None, "none") when nothing can be found."""
    text = strip_think(text)
    best: tuple[int, str, str] | None = None  # (position, answer, extractor)
    if "####" in text:
        m = None
        for m in _HASH.finditer(text):  # noqa: B007  (the last one is wanted)
            pass
        if m is not None and m.group(1).strip():
            best = (m.start(), m.group(1), "marker_hash")
    if "nswer" in text or "NSWER" in text:
        for m in _ANSWER.finditer(text):
            if m.group(1).strip() and (best is None or m.start() > best[0]):
                best = (m.start(), m.group(1), "marker_answer")
    if "boxed" in text:
        for pos, content in _boxed(text):
            if content.strip() and (best is None or pos > best[0]):
                best = (pos, content, "boxed")
    if best is not None:
        return best[1].strip(), best[2]
    numbers = _NUMBER.findall(text.translate(_DASHES))
    if numbers:
        return numbers[-1], "last_number"
    return None, "none"


def normalize(answer: str) -> str | Fraction:
    """A rational for numeric answers, else lower-cased text with whitespace collapsed."""
    s = answer.translate(_DASHES).strip().strip("*").strip()
    s = s.rstrip(".").strip()
    for sign in ("$", "€", "£"):
        s = s.replace(sign, "")
    s = s.replace(",", "").strip()
    if s.endswith("%"):
        return " ".join(s.lower().split())  # percentages compare as text: '25%' is not '25'
    try:
        if "/" in s:
            num, den = s.split("/")
            return Fraction(int(num), int(den))
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return " ".join(s.lower().split())


def same_answer(got: str, expected: str) -> bool:
    # Fast path: plain integers (most arithmetic answers) need no Fraction.
    if _PLAIN_INT.fullmatch(got) and _PLAIN_INT.fullmatch(expected):
        return int(got) == int(expected)
    return normalize(got) == normalize(expected)


def _lm_eval_clean(s: str) -> str:
    s = s.replace(",", "").replace("$", "")
    s = re.sub(r"(?s).*#### ", "", s)
    return s.rstrip(".").strip()


def lm_eval_matches(output: str, expected: str) -> tuple[bool, bool]:
    """(strict, flexible) as lm-eval-harness's GSM8K filters decide them."""
    target = _lm_eval_clean(expected)
    strict = _STRICT.search(output)
    flexible = _FLEXIBLE.findall(output)
    strict_ok = strict is not None and _lm_eval_clean(strict.group(1)) == target
    if flexible:
        last = flexible[-1]
        flexible_ok = _lm_eval_clean(last[0] or last[1]) == target
    else:
        flexible_ok = False
    return strict_ok, flexible_ok


def score_item(output: str, expected: str) -> ItemScore:
    answer, extractor = extract(output)
    strict, flexible = lm_eval_matches(output, expected)
    if answer is None:
        return ItemScore("invalid", None, "none", strict, flexible)
    outcome = "correct" if same_answer(answer, expected) else "wrong"
    return ItemScore(outcome, answer, extractor, strict, flexible)
