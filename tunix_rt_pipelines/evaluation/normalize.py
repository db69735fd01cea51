"""Normalise an answer before comparison: numbers become exact rationals, anything else lower-cased text.

The rules (part of ``answer_correctness@v1``):

* Unicode minus and dashes become ``-``; no-break and thin spaces become spaces; surrounding
  whitespace, ``**bold**``/``_italic_``/backticks and a trailing ``.`` go.
* A little LaTeX: ``\\frac{a}{b}`` (and ``\\dfrac``, ``\\tfrac``) is ``a/b``; ``\\text{…}`` and
  friends are their content; ``\\$ \\% \\, \\!`` and ``^\\circ`` are dropped or unescaped.
* An equation keeps its right-hand side: ``x = 5`` and ``3 × 4 = 12`` answer ``5`` and ``12``.
* Currency signs (``$ € £ ¥ ₹``) go, and ``,`` between digit groups (``1,234``; ``1,2`` is left).
* Percent is a unit like any other: ``25%`` equals ``25`` (what peers do: lm-eval's filters
  drop the ``%`` too). It is *not* read as ``0.25``.
* A number (integer, decimal, ``a/b`` fraction, or ``1e3`` exponent form) is an exact
  ``Fraction``/``int``: ``0.5 == 1/2 == 3/6``, ``7.0 == 7``, ``1e3 == 1000``. A fraction with a
  zero denominator is text.
* Text holding exactly one number and otherwise only words or symbols (``47.5 litres``,
  ``-24 °C``, ``The answer is 17``) is that number; text with two or more numbers
  (``5 or 6``) stays text, so it cannot match a number.
* Everything else is text, compared lower-cased with whitespace runs collapsed and trailing
  ``. ! ?`` and surrounding quotes dropped: ``Answer: **Alice**`` matches ``alice``.

A number never equals text: ``yes`` is not ``1``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from tunix_rt_pipelines.evaluation.extraction import DASHES

_SPACES = str.maketrans({"\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2007": " "})
_CURRENCY = str.maketrans({c: None for c in "$€£¥₹"})
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_WRAP = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_LATEX_DROP = re.compile(r"\\left|\\right|\\[,!;: ]|\^\s*\{?\\circ\}?|\\circ|\\displaystyle")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:/(?:\d+(?:\.\d*)?|\.\d+))?")
_NUMBER_IN_TEXT = re.compile(
    r"(?:(?<![0-9A-Za-z)\]])[+-])?(?<![A-Za-z0-9.])(?:\d+(?:\.\d+)?|\.\d+)(?:/\d+)?(?![A-Za-z0-9])"
)
_DIGIT = re.compile(r"\d")

Canonical = int | Fraction | str


def _latex(s: str) -> str:
    s = _LATEX_FRAC.sub(r"\1/\2", s)
    s = _LATEX_WRAP.sub(r"\1", s)
    s = _LATEX_DROP.sub("", s)
    s = s.replace("\\$", "$").replace("\\%", "%").replace("{,}", ",")
    return s.replace("{", "").replace("}", "")


def _number(s: str) -> int | Fraction | None:
    if not _NUMBER.fullmatch(s):
        return None
    try:
        if "/" in s:
            num, den = s.split("/")
            return Fraction(num) / Fraction(den)
        if s.isdigit():
            return int(s)
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def _text(s: str) -> str:
    return " ".join(s.lower().split()).rstrip(".!?").strip("\"'“”‘’ ")


@lru_cache(maxsize=1 << 16)
def canonical(answer: str) -> Canonical:
    """``int``/``Fraction`` for a numeric answer, else normalised text (see the module docstring)."""
    if answer.isascii() and answer.isdigit():
        return int(answer)
    s = answer.translate(DASHES).translate(_SPACES).strip()
    if "\\" in s:
        s = _latex(s)
    s = s.strip().strip("*_`").strip()
    if "=" in s:
        s = s.rsplit("=", 1)[1].strip()
    t = s.translate(_CURRENCY)
    if "," in t:
        t = _THOUSANDS.sub("", t)
    t = t.strip().rstrip(".").rstrip()
    if t.endswith("%"):
        t = t[:-1].rstrip()
    if t[:1] in "+-" and t[1:2] == " ":
        t = t[0] + t[1:].lstrip()  # "- 3" is -3
    value = _number(t) if t else None
    if value is not None:
        return value
    if _DIGIT.search(t):
        found = _NUMBER_IN_TEXT.findall(t)
        if len(found) == 1 and len(_DIGIT.findall(t)) == sum(c.isdigit() for c in found[0]):
            value = _number(found[0].lstrip("+"))
            if value is not None:
                return value
    return _text(s)


def is_plain_int(s: str) -> bool:
    """``123`` or ``-123`` in ASCII digits: the common case, compared without ``Fraction``."""
    return (s.isdigit() or (s[:1] == "-" and s[1:].isdigit())) and s.isascii()


def same_answer(got: str, expected: str) -> bool:
    """Whether two answers are equal after normalisation (numbers exactly, text case-insensitively)."""
    if is_plain_int(got) and is_plain_int(expected):
        return int(got) == int(expected)
    a, b = canonical(got), canonical(expected)
    if isinstance(a, str) is not isinstance(b, str):
        return False
    return a == b
