"""``trace_structure@v1``: does a generated output look like a worked answer? Four 0/1 checks and their mean.

It reads the same text ``answer_correctness@v1`` reads (think blocks removed, see
:mod:`~tunix_rt_pipelines.evaluation.extraction`) and the answer that metric extracts:

``steps_present``
    At least two non-empty lines before the answer: the lines above the answer's line, plus
    the part of that line before its marker when there is one (``12 + 5 = 17. Answer: 17``).
    With no answer at all, every non-empty line counts.
``final_answer_stated``
    The answer was found by an explicit marker (``####``, ``Answer:``, ``\\boxed{}``), not
    guessed as the last number.
``answer_consistent_with_last_step``
    The answer is the result of the last step: for a numeric answer, the last number of the
    last step line equals it (after the metric's normalisation); for a text answer (a name,
    ``yes``), the last step mentions it as a word. With no marker the answer *is* the last
    number, so its line is the last step and the check holds trivially;
    ``final_answer_stated`` is what marks that output down. No answer: false.
``no_repetition_loop``
    Read on the whole output, think blocks included (a model looping inside an unclosed
    ``<think>`` is exactly what this is for). No non-empty line occurs three or more times,
    and the output does not end in a loop: its last ``max(3n, 6)`` or more whitespace-separated
    tokens do not repeat with a period of ``n`` tokens for any ``n`` up to 16. A loop cut off
    by the token limit counts, mid-copy or mid-word: the check is also made without the last
    token.

``score`` is the mean of the four, rounded to 4 places.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from tunix_rt_pipelines.evaluation.extraction import LAST_NUMBER, NONE, extract_answer, last_number
from tunix_rt_pipelines.evaluation.normalize import canonical, same_answer

METRIC = "trace_structure@v1"
MAX_LOOP_PERIOD = 16  # longest repeating n-gram looked for at the end of the output
MIN_LOOP_TOKENS = 6  # a loop must cover at least this many tokens (and three periods)
MAX_LINE_REPEATS = 2  # a non-empty line may occur this often; one more is a loop


class TraceScore(NamedTuple):
    """One output's checks. A named tuple, as ``answers.ItemScore``: immutable and cheap to build."""

    steps_present: bool
    final_answer_stated: bool
    answer_consistent_with_last_step: bool
    no_repetition_loop: bool
    score: float  # mean of the four checks
    metric: str = METRIC


# A loop needs at most max(3 * MAX_LOOP_PERIOD, MIN_LOOP_TOKENS) tokens to be seen, and the check
# is made with and without the last token: more of the output than this many tokens at its end
# cannot change it.
_TAIL_TOKENS = max(3 * MAX_LOOP_PERIOD, MIN_LOOP_TOKENS) + 2


def ends_in_loop(tokens: list[str], *, max_period: int = MAX_LOOP_PERIOD, min_tokens: int = MIN_LOOP_TOKENS,
                 total: int | None = None) -> bool:
    """Whether ``tokens[:total]`` (all of them by default) end in a run that repeats with some
    period ``n`` <= ``max_period`` over at least ``max(3n, min_tokens)`` tokens (a trailing
    partial copy included)."""
    if total is None:
        total = len(tokens)
    if total < min_tokens:
        return False
    last = total - 1
    end = tokens[last]
    # A run of period n holds tokens[last - n] == end. Usually no token among the max_period
    # before the last equals it: one C-level scan then rules out every period.
    if end not in tokens[max(0, last - max_period):last]:
        return False
    for n in range(1, min(max_period, total // 3) + 1):  # the periods whose max(3n, min_tokens) fits
        if tokens[last - n] != end:
            continue
        need = max(3 * n, min_tokens)
        length = n  # the last n tokens trivially have period n; extend leftwards while it holds
        while length < need and tokens[last - length] == tokens[last - length + n]:
            length += 1
        if length >= need:
            return True
    return False


def has_repeated_lines(lines: Iterable[str], *, max_repeats: int = MAX_LINE_REPEATS) -> bool:
    stripped = [line for line in map(str.strip, lines) if line]
    if len(set(stripped)) == len(stripped):  # the usual case: no line occurs twice
        return False
    return max(Counter(stripped).values()) > max_repeats


def _mentions(line: str, answer: str) -> bool:
    words = " ".join(answer.lower().split())
    return bool(words) and re.search(rf"(?<!\w){re.escape(words)}(?!\w)", " ".join(line.lower().split())) is not None


def score_trace(output: str) -> TraceScore:
    """The ``trace_structure@v1`` checks on one generated ``output``."""
    found = extract_answer(output)
    text = found.text
    tokens = output.rsplit(None, _TAIL_TOKENS)[-_TAIL_TOKENS:]  # the end is what a loop check reads
    if found.extractor == NONE:
        steps = [line for line in text.splitlines() if line.strip()]
        consistent = False
    else:
        line_start = text.rfind("\n", 0, found.start) + 1
        steps = [line for line in text[:line_start].splitlines() if line.strip()]
        if found.extractor == LAST_NUMBER:
            line_end = text.find("\n", found.start)
            steps.append(text[line_start:] if line_end < 0 else text[line_start:line_end])
            consistent = True
        else:
            before_marker = text[line_start:found.start]
            if before_marker.strip():
                steps.append(before_marker)
            if not steps:
                consistent = False
            elif isinstance(canonical(found.answer), str):
                consistent = _mentions(steps[-1], canonical(found.answer))
            else:
                result, _, _ = last_number(steps[-1])
                consistent = result is not None and same_answer(result, found.answer)
    looping = (has_repeated_lines(output.splitlines()) or ends_in_loop(tokens)
               or ends_in_loop(tokens, total=len(tokens) - 1))  # also cut off mid-copy: without the last token
    checks = (len(steps) >= 2, found.extractor not in (LAST_NUMBER, NONE), consistent, not looping)
    return TraceScore(*checks, score=sum(checks) / 4)  # 0, 0.25, 0.5, 0.75 or 1: exact, no rounding


def score_traces(outputs: Iterable[str]) -> list[TraceScore]:
    """``score_trace`` of each output, in order."""
    return [score_trace(output) for output in outputs]
