"""Find the final answer in reasoning output: think blocks out, the last explicit marker, else the last number.

The rules (part of ``answer_correctness@v1``; changing them is a new metric version):

Think blocks
    ``<think>…</think>`` is hidden reasoning and is removed before anything is searched, so a
    number that only appears while the model is thinking is never its answer. Two unbalanced
    cases:

    * a ``</think>`` with no opener (chat templates such as Qwen3's put ``<think>`` in the
      prompt, so the output starts inside the block): everything up to the last such closer is
      reasoning and is dropped;
    * an unclosed ``<think>`` (the model was still thinking when generation stopped): everything
      from it to the end is dropped. The model never answered, so unless an answer was stated
      *before* the block opened, nothing is extracted and the item is ``invalid``.

Markers, the last one by position wins
    ``#### X`` (GSM8K's marker and our training template's), ``Answer: X`` (spelled ``Answer``,
    ``answer`` or ``ANSWER``, optionally bold, also ``Final answer:``; a full-width colon counts)
    and ``\\boxed{X}`` (braces may nest: ``\\boxed{\\frac{1}{2}}``; a box whose braces never close,
    as in truncated output, is ignored). All markers compete by where they start, so a marker
    recited in the reasoning is overridden by the final one whichever kind each is.

    The answer after ``####`` or ``Answer:`` is the rest of that line up to the end of its
    first sentence (``.``, ``!``, ``?`` or ``;`` followed by a space: ``Answer: 72. Check:
    72 - 70 = 2`` answers ``72.``); if the marker ends its line, the next non-empty line. A
    marker with nothing after it is skipped. Caveat: a markdown level-4 heading (``#### Step
    2``) is indistinguishable from the marker; only the last one matters, and a trace that
    ends in an answer marker is unaffected.

Last number
    With no marker, the last number in the (think-stripped) text: an optional minus (not a
    hyphen between two terms, so ``5-3`` gives ``3`` and ``-3`` gives ``-3``), digits with
    optional ``1,234`` grouping, an optional decimal part and an optional ``/denominator``.

Nothing found: ``(None, "none")``; the metric calls that ``invalid``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER_HASH = "marker_hash"
MARKER_ANSWER = "marker_answer"
BOXED = "boxed"
LAST_NUMBER = "last_number"
NONE = "none"
EXTRACTORS = (MARKER_HASH, MARKER_ANSWER, BOXED, LAST_NUMBER, NONE)

_THINK_OPEN = re.compile(r"<think\b[^>]*>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think\s*>", re.IGNORECASE)
_LAST_THINK_CLOSE = re.compile(r".*</think\s*>", re.DOTALL | re.IGNORECASE)  # backtracks from the end
_ANSWER = re.compile(r"(?:\b[Aa]nswer|\bANSWER)\**\s*\**[:：]")
_SENTENCE_END = re.compile(r"[.!?;](?=\s)")
_BOXED = re.compile(r"\\boxed\s*\{")
_LAST_DIGIT = re.compile(r".*\d", re.DOTALL)  # \d as in _NUMBER: Unicode decimal digits, str.isdecimal()
# Unicode minus and dashes read as a minus sign (folded to '-' in the extracted number).
_DASH_CHARS = "-\u2212\u2010\u2011\u2012\u2013\u2014\u2015\ufe63\uff0d"
DASHES = str.maketrans({c: "-" for c in _DASH_CHARS[1:]})
# A minus is any of the dashes: matching them in place gives the same numbers, at the same
# positions, as folding the text first (no character the look-behind tests is a dash), without
# translating a whole long output; only the match is folded.
_NUMBER = re.compile(
    rf"(?:(?<![0-9A-Za-z)\]])[{_DASH_CHARS}])?(?:\d{{1,3}}(?:,\d{{3}})+(?![\d])|\d+)(?:\.\d+)?(?:/\d+)?"
)
_NUMBER_CHARS = frozenset(_DASH_CHARS + ",./")  # with the digits: every character a _NUMBER match can hold


@dataclass(frozen=True, slots=True)
class Extraction:
    answer: str | None  # the answer as written (trimmed, bold markers removed); None when nothing was found
    extractor: str  # marker_hash | marker_answer | boxed | last_number | none
    start: int  # where the marker (or the number) starts in ``text``; -1 when nothing was found
    text: str  # the output with think blocks removed: what was searched


def strip_think(output: str) -> str:
    """``output`` without its think blocks (see the module docstring for unbalanced tags)."""
    if "<" not in output or "think" not in output.lower():
        return output
    # Each block (an opener, then the first closer after it) becomes a newline. Found opener by
    # opener: a lazy ".*?" between the tags would step through the block one character at a time.
    # An opener with no closer after it ends the search: no later opener can have one either.
    pieces: list[str] = []
    pos = 0
    while (opener := _THINK_OPEN.search(output, pos)) is not None:
        closer = _THINK_CLOSE.search(output, opener.end())
        if closer is None:
            break
        pieces += (output[pos:opener.start()], "\n")
        pos = closer.end()
    text = "".join(pieces) + output[pos:] if pieces else output
    last_close = _LAST_THINK_CLOSE.match(text)  # closers never overlap: the last one starts rightmost
    if last_close is not None:
        text = text[last_close.end():]
    opener = _THINK_OPEN.search(text)
    return text[: opener.start()] if opener else text


def _rest_of_line(text: str, i: int) -> str:
    """The text after position ``i`` up to the end of its line, or the next non-empty line; '' if none."""
    n = len(text)
    while i < n:
        nl = text.find("\n", i)
        line = text[i:nl] if nl >= 0 else text[i:]
        line = line.strip().strip("*").strip()
        if line:
            end = _SENTENCE_END.search(line)
            return (line[: end.start() + 1] if end else line).rstrip().strip("*").strip()
        if nl < 0:
            break
        i = nl + 1
    return ""


def _last_hash(text: str, i: int) -> tuple[int, str]:
    """(start, answer) of the last ``####`` marker with something after it; (-1, '') when none.

    ``i``: ``text.rfind("####")``, the last occurrence, which the caller has already found."""
    while i >= 0:
        k = i
        while k > 0 and text[k - 1] == "#":
            k -= 1
        answer = _rest_of_line(text, i + 4)
        if answer:
            return k, answer
        i = text.rfind("####", 0, k + 3)  # look further left, past this run of '#'
    return -1, ""


def _boxed_content(text: str, open_end: int) -> str | None:
    depth, i, n = 1, open_end, len(text)
    while i < n:
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[open_end:i]
        i += 1
    return None  # unbalanced: truncated output


def locate(text: str) -> tuple[str | None, str, int]:
    """(answer, extractor, start) in think-stripped ``text``: the last marker by position, else the last number."""
    best_start, best_answer, best_extractor = -1, "", NONE
    i = text.rfind("####")
    if i >= 0:
        best_start, best_answer = _last_hash(text, i)
        if best_start >= 0:
            best_extractor = MARKER_HASH
    # _ANSWER has no literal prefix, so finditer would try it at every position of a long output:
    # anchor it instead one character before each "nswer"/"NSWER", last first.
    j = max(text.rfind("nswer", 1), text.rfind("NSWER", 1))
    while j - 1 > best_start:  # also false when neither is left (j = -1)
        m = _ANSWER.match(text, j - 1)
        if m is not None:
            answer = _rest_of_line(text, m.end())
            if answer:
                best_start, best_answer, best_extractor = j - 1, answer, MARKER_ANSWER
                break
        j = max(text.rfind("nswer", 1, j + 4), text.rfind("NSWER", 1, j + 4))  # those that start before j
    if "boxed" in text:
        # Matches never overlap, so those that start after best_start are found from there on.
        for m in _BOXED.finditer(text, best_start + 1):
            content = _boxed_content(text, m.end())
            if content is not None and content.strip():
                best_start, best_answer, best_extractor = m.start(), content.strip(), BOXED
    if best_start >= 0:
        return best_answer, best_extractor, best_start
    return last_number(text)


def last_number(text: str) -> tuple[str | None, str, int]:
    """(number, "last_number", start) of the last number in ``text``; (None, "none", -1) when there is none."""
    # Every number ends in a digit, so the last number ends at the last digit; and it lies inside
    # the run of characters a number is made of that holds that digit (a character outside
    # _NUMBER_CHARS ends any match). _NUMBER is searched over that run only: it has no literal
    # prefix, so each other position of the text would cost a full attempt. Its look-behind
    # still sees the character before the run.
    last = _LAST_DIGIT.match(text)  # backtracks from the end to the last digit, in C
    if last is None:
        return None, NONE, -1
    end = last.end()
    start = end - 1
    while start and (text[start - 1] in _NUMBER_CHARS or text[start - 1].isdecimal()):
        start -= 1
    m = _NUMBER.search(text, start, end)  # found: the last digit starts a match if no earlier one covers it
    while m.end() < end:  # usually one match: the run is one number
        m = _NUMBER.search(text, m.end(), end)
    number = m.group()
    return (number if number.isascii() else number.translate(DASHES)), LAST_NUMBER, m.start()


def extract_answer(output: str) -> Extraction:
    """The answer in ``output`` and how it was found, with the searched text (for trace checks)."""
    text = strip_think(output)
    answer, extractor, start = locate(text)
    return Extraction(answer, extractor, start, text)


def extract(output: str) -> tuple[str | None, str]:
    """(answer, extractor) of ``output``; (None, "none") when nothing can be found."""
    answer, extractor, _ = locate(strip_think(output))
    return answer, extractor
