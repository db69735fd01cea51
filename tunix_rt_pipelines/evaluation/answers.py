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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from tunix_rt_pipelines.evaluation.extraction import MARKER_HASH, NONE, extract, locate, strip_think
from tunix_rt_pipelines.evaluation.lm_eval import INVALID, clean, clean_reference, flexible_answer, strict_answer
from tunix_rt_pipelines.evaluation.normalize import is_plain_int, same_answer

METRIC = "answer_correctness@v1"
OUTCOMES = ("correct", "wrong", "invalid")

__all__ = ["METRIC", "OUTCOMES", "ItemScore", "extract", "score_item", "score_items"]


@dataclass(frozen=True, slots=True)
class ItemScore:
    outcome: str  # correct | wrong | invalid
    extracted: str | None  # the answer as written (trimmed); None when invalid
    extractor: str  # marker_hash | marker_answer | boxed | last_number | none
    strict_match: bool  # lm-eval-harness GSM8K strict-match
    flexible_match: bool  # lm-eval-harness GSM8K flexible-extract
    metric: str = METRIC


_STRICT_NOTHING = clean(INVALID)
_INTERNED: dict[tuple, ItemScore] = {}
_INTERN_LIMIT = 1 << 16


def _item_score(outcome: str, extracted: str | None, extractor: str, strict: bool, flexible: bool) -> ItemScore:
    """``ItemScore(...)``, shared between equal scores: immutable, and building a frozen dataclass
    costs five times a dict lookup. The table is emptied when it reaches ``_INTERN_LIMIT``."""
    key = (outcome, extracted, extractor, strict, flexible)
    score = _INTERNED.get(key)
    if score is None:
        if len(_INTERNED) >= _INTERN_LIMIT:
            _INTERNED.clear()
        score = _INTERNED[key] = ItemScore(outcome, extracted, extractor, strict, flexible)
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
    # Fast path, the shape our models are trained to produce: the output ends in "#### N" (N a
    # plain integer) and holds no think tag. That marker is then the last one by position, so
    # whatever markers come before it lose; our answer, lm-eval's flexible answer and (when it
    # is the first "#### ") its strict answer are all N, which lm-eval's cleanup leaves as it is.
    if i >= 0 and "<" not in output:
        answer = output[i + 5:]
        if (answer.isdigit() or (answer[:1] == "-" and answer[1:].isdigit())) and answer.isascii():
            flexible = answer == reference
            strict = flexible if output.find("#### ") == i else clean(strict_answer(output)) == reference
            if answer == expected:
                correct = True
            elif expected_int is not None:
                correct = int(answer) == expected_int
            else:
                correct = same_answer(answer, expected)
            return _item_score("correct" if correct else "wrong", answer, MARKER_HASH, strict, flexible)
    # Without any "#### ", lm-eval's strict filter finds nothing: "[invalid]", cleaned.
    strict = clean(strict_answer(output)) == reference if i >= 0 else reference == _STRICT_NOTHING
    flexible = clean(flexible_answer(output)) == reference
    answer, extractor, _ = locate(strip_think(output) if "<" in output else output)
    if answer is None:
        return _item_score("invalid", None, NONE, strict, flexible)
    if expected_int is not None and is_plain_int(answer):
        correct = int(answer) == expected_int
    else:
        correct = same_answer(answer, expected)
    return _item_score("correct" if correct else "wrong", answer, extractor, strict, flexible)


def score_items(records: Iterable[Mapping]) -> list[ItemScore]:
    """Scores of prediction records (``output`` and ``expected_answer`` each), in order."""
    score = score_item
    return [score(r["output"], r["expected_answer"]) for r in records]
