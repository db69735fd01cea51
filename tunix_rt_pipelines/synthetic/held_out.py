"""Generated training traces never repeat a prompt of a shipped eval set."""

from __future__ import annotations

from collections.abc import Callable

from tunix_rt_pipelines.core.settings import REPO_ROOT
from tunix_rt_pipelines.evalsets.validate import load_evalset
from tunix_rt_pipelines.traces.schema import ReasoningTrace


def shipped_eval_prompts() -> frozenset[str]:
    """The prompts of every eval set in the repository's ``evalsets/``."""
    return frozenset(item.prompt for path in sorted((REPO_ROOT / "evalsets").glob("*.jsonl"))
                     for item in load_evalset(path))


def draw_without(
    generate: Callable[[int], list[ReasoningTrace]], n: int, held_out: frozenset[str]
) -> list[ReasoningTrace]:
    """``n`` traces from ``generate(count)`` and none whose prompt is held out.

    Draws ``n + len(held_out)`` and keeps the first ``n`` others. The generators draw in sequence
    (the first ``n`` of a longer draw are ``generate(n)``), so where nothing is held out this is
    ``generate(n)`` exactly.
    """
    return [t for t in generate(n + len(held_out)) if t.prompt not in held_out][:n]
