"""``answer_correctness@v1``: extract the final answer from reasoning output and compare it to the expected one.

Locked: any change to extraction or normalisation is a new version, so scores stored under
``@v1`` stay comparable with each other. The rules live in three small modules:

* :mod:`~tunix_rt_pipelines.evaluation.extraction`: think blocks removed (an unclosed
  ``<think>`` means the model never answered), then the last marker by position (``####``,
  ``Answer:``, ``\\boxed{}``), else the last number;
* :mod:`~tunix_rt_pipelines.evaluation.normalize`: numbers compared exactly as rationals
  (``0.5 == 1/2``, ``1,234 == 1234``, ``$7.00 == 7``, ``−3 == -3``, ``25% == 25``), text
  case- and whitespace-insensitively;
* :mod:`~tunix_rt_pipelines.evaluation.lm_eval`: lm-eval-harness's GSM8K strict and flexible
  matches, reported beside ours on every item so our figures compare with the field's.

Outcomes: ``correct``, ``wrong``, or ``invalid`` when nothing could be extracted (no answer
is not a wrong answer; the scorecard counts it as not correct but reports it apart). This
judge never returns ``unscored``: that is for judges that can fail (an unreachable LLM).

Throughput: the common shape (steps, then ``#### N`` with an integer) takes a path with no
``Fraction`` and no regex beyond lm-eval's two; ``score_items`` is the batch entry point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

from tunix_rt_pipelines.evaluation.extraction import MARKER_HASH, NONE, extract, locate, strip_think
from tunix_rt_pipelines.evaluation.lm_eval import INVALID, clean_reference, flexible_key, strict_key
from tunix_rt_pipelines.evaluation.normalize import is_plain_int, same_answer
from tunix_rt_pipelines.evaluation.parallel import map_slices

METRIC = "answer_correctness@v1"
OUTCOMES = ("correct", "wrong", "invalid")

__all__ = ["METRIC", "OUTCOMES", "ItemScore", "extract", "score_item", "score_items"]


class ItemScore(NamedTuple):
    """One item's score. A named tuple: immutable, and made several times faster than a frozen
    dataclass, which sets each field through ``object.__setattr__``."""

    outcome: str  # correct | wrong | invalid
    extracted: str | None  # the answer as written (trimmed); None when invalid
    extractor: str  # marker_hash | marker_answer | boxed | last_number | none
    strict_match: bool  # lm-eval-harness GSM8K strict-match
    flexible_match: bool  # lm-eval-harness GSM8K flexible-extract
    metric: str = METRIC


_INTERNED: dict[tuple, ItemScore] = {}
_INTERN_LIMIT = 1 << 16


def _new_score(key: tuple) -> ItemScore:
    """The shared ``ItemScore`` for ``key`` (its fields in order), made on first use.

    Equal scores share one object: it is immutable, and building one costs several times the
    dict lookup that finds it (``score_item`` looks it up inline and calls this only on a
    miss). The table is emptied when it reaches ``_INTERN_LIMIT``."""
    if len(_INTERNED) >= _INTERN_LIMIT:
        _INTERNED.clear()
    score = _INTERNED[key] = ItemScore(*key)
    return score


@lru_cache(maxsize=1 << 16)
def _reference(expected: str) -> tuple[int | None, str]:
    """(the expected answer as an int when it is a plain integer, its lm-eval cleaned form)."""
    return (int(expected) if is_plain_int(expected) else None), clean_reference(expected)


def score_item(output: str, expected: str) -> ItemScore:
    """Score one generated ``output`` against the item's ``expected`` answer."""
    if type(output) is not str:
        output = "" if output is None else str(output)
    if type(expected) is not str:
        expected = str(expected)
    expected_int, reference = _reference(expected)
    i = output.rfind("#### ")
    has_tag = "<" in output
    # Fast path, the shape our models are trained to produce: the output ends in "#### N" (N a
    # plain integer) and holds no think tag. That marker is then the last one by position, so
    # whatever markers come before it lose; our answer, lm-eval's flexible answer and (when it
    # is the first "#### ") its strict answer are all N, which lm-eval's cleanup leaves as it is.
    if i >= 0 and not has_tag:
        answer = output[i + 5:]
        if (answer.isdigit() or (answer[:1] == "-" and answer[1:].isdigit())) and answer.isascii():
            flexible = answer == reference
            first = output.find("#### ")
            strict = flexible if first == i else strict_key(output, first) == reference
            if answer == expected:
                correct = True
            elif expected_int is not None:
                correct = int(answer) == expected_int
            else:
                correct = same_answer(answer, expected)
            key = ("correct" if correct else "wrong", answer, MARKER_HASH, strict, flexible)
            return _INTERNED.get(key) or _new_score(key)
    # Without any "#### ", lm-eval's strict filter finds nothing: "[invalid]" (cleaning leaves it).
    strict = strict_key(output) == reference if i >= 0 else reference == INVALID
    flexible = flexible_key(output) == reference
    answer, extractor, _ = locate(strip_think(output) if has_tag else output)
    if answer is None:
        key = ("invalid", None, NONE, strict, flexible)
    else:
        if expected_int is not None and is_plain_int(answer):
            correct = int(answer) == expected_int
        else:
            correct = same_answer(answer, expected)
        key = ("correct" if correct else "wrong", answer, extractor, strict, flexible)
    return _INTERNED.get(key) or _new_score(key)


def _score_each(records: Iterable[Mapping]) -> list[ItemScore]:
    score = score_item
    return [score(r["output"], r["expected_answer"]) for r in records]


def score_items(records: Iterable[Mapping], *, workers: int = 1) -> list[ItemScore]:
    """Scores of prediction records (``output`` and ``expected_answer`` each), in order.

    ``workers`` > 1 scores slices in forked processes (see :mod:`.parallel`; small batches stay
    in this process); the scores are the same."""
    if workers > 1:
        return map_slices(_score_each, records if isinstance(records, Sequence) else list(records), workers=workers)
    return _score_each(records)
