"""The eval item schema and the sections with their target shares (the seeds' 60/25/15)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from tunix_rt_pipelines.traces.schema import ID_PATTERN, text_type

SECTIONS = ("core", "trace_sensitive", "edge_case")
# core: the task families as trained; trace_sensitive: only right if every step is followed
# (long chains, five-round duels); edge_case: formats answer extraction gets wrong.
TARGET_SHARES = {"core": 0.60, "trace_sensitive": 0.25, "edge_case": 0.15}


class EvalItem(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    item_id: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=ID_PATTERN)]
    prompt: text_type(32_000)
    expected_answer: text_type(4_000)
    section: Literal["core", "trace_sensitive", "edge_case"]
    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    difficulty: Literal["easy", "medium", "hard"]
    tags: list[str] = []
