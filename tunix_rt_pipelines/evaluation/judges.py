"""Judges by name: ``get_judge(name, **options)`` returns an object with ``.metric`` and
``.score_records(records) -> (item rows, scorecard)``.

``metric`` is what an evaluation stores as its ``judge`` (and hashes into its id):
``answer_correctness@v1``, or ``llm_judge@<hash>`` whose hash covers the rubric and model
(see :mod:`~tunix_rt_pipelines.evaluation.llm_judge`). Both judges give rows with the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tunix_rt_pipelines.evaluation import evaluate
from tunix_rt_pipelines.evaluation.answers import METRIC as ANSWER_CORRECTNESS
from tunix_rt_pipelines.evaluation.llm_judge import LLMJudge, LLMJudgeConfig

JUDGES = ("answer_correctness", "llm_judge")


class Judge(Protocol):
    metric: str

    def score_records(self, records: list[dict]) -> tuple[list[dict], dict]: ...


@dataclass(frozen=True)
class AnswerCorrectness:
    """``answer_correctness@v1``: extraction and exact comparison, never unscored. Its one option,
    ``workers``, is how many processes score a large batch (the scores do not depend on it)."""

    metric: str = ANSWER_CORRECTNESS
    workers: int = 1

    def score_records(self, records: list[dict]) -> tuple[list[dict], dict]:
        return evaluate.score_records(records, workers=self.workers)


def get_judge(name: str, **options) -> Judge:  # noqa: ANN003
    """The judge called ``name``; ``options`` are ``LLMJudgeConfig`` fields for ``llm_judge`` (``base_url`` and
    ``model`` required, ``rubric`` a ``Rubric``), and only ``workers`` for ``answer_correctness``."""
    if name == "answer_correctness":
        unknown = sorted(set(options) - {"workers"})
        if unknown:
            raise ValueError(f"answer_correctness takes only the workers option, got {', '.join(unknown)}")
        return AnswerCorrectness(**options)
    if name == "llm_judge":
        missing = [k for k in ("base_url", "model") if not options.get(k)]
        if missing:
            raise ValueError(f"llm_judge needs {' and '.join(missing)}")
        return LLMJudge(LLMJudgeConfig(**options))
    raise ValueError(f"unknown judge {name!r}; known: {', '.join(JUDGES)}")
