"""The dev set with the seeds' composition: 550 traces, 70% reasoning / 20% game / 10% edge.

Deterministic for a seed: same seed, same traces in the same order, same content hashes.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunix_rt_pipelines.synthetic.arithmetic import generate_arithmetic
from tunix_rt_pipelines.synthetic.card_game import generate_card_games
from tunix_rt_pipelines.synthetic.edge_cases import generate_edge_cases
from tunix_rt_pipelines.synthetic.held_out import draw_without
from tunix_rt_pipelines.traces.schema import ReasoningTrace


@dataclass(frozen=True)
class DevSetSpec:
    size: int = 550  # total traces
    reasoning_share: float = 0.70  # multi-step arithmetic word problems
    game_share: float = 0.20  # High Card Duel episodes; the rest are edge cases
    seed: int = 42

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"dev set size must be at least 1, not {self.size}")

    def counts(self) -> dict[str, int]:
        reasoning = round(self.size * self.reasoning_share)
        game = round(self.size * self.game_share)
        return {"reasoning": reasoning, "game": game, "edge": self.size - reasoning - game}


def build_dev_set(spec: DevSetSpec = DevSetSpec(), *, held_out: frozenset[str] = frozenset()) -> list[ReasoningTrace]:
    """The dev set of ``spec``. Traces whose prompt is ``held_out`` (an eval set's) are replaced by
    the next ones drawn, so each kind keeps its count whatever the seed."""
    c = spec.counts()
    src = "dev_reasoning"
    return (
        draw_without(lambda n: generate_arithmetic(n, spec.seed, id_prefix="dev:arith", source=src),
                     c["reasoning"], held_out)
        + draw_without(lambda n: generate_card_games(n, spec.seed, id_prefix="dev:card", source=src),
                       c["game"], held_out)
        + draw_without(lambda n: generate_edge_cases(n, spec.seed, id_prefix="dev:edge", source=src),
                       c["edge"], held_out)
    )
