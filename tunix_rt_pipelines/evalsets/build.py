"""Build the shipped eval set ``evalsets/eval_v1.jsonl`` from the generators' task families.

Deterministic: ``python -m tunix_rt_pipelines.evalsets.build`` rewrites the same bytes (a
test checks the shipped file against it). Items never repeat a dev-set prompt, so a model
trained on ``dev_reasoning`` is evaluated on unseen problems of the same families.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tunix_rt_pipelines.core.settings import REPO_ROOT
from tunix_rt_pipelines.evalsets.schema import EvalItem
from tunix_rt_pipelines.synthetic.arithmetic import generate_arithmetic
from tunix_rt_pipelines.synthetic.card_game import generate_card_games
from tunix_rt_pipelines.synthetic.dev_set import build_dev_set
from tunix_rt_pipelines.synthetic.edge_cases import generate_edge_cases
from tunix_rt_pipelines.traces.schema import ReasoningTrace

EVAL_SEED = 2026
SHIPPED = REPO_ROOT / "evalsets" / "eval_v1.jsonl"


def _item(t: ReasoningTrace, section: str, n: int) -> EvalItem:
    return EvalItem(
        item_id=f"eval_v1:{section}:{n:03d}",
        prompt=t.prompt,
        expected_answer=t.final_answer,
        section=section,
        category=t.metadata.category,
        difficulty=t.metadata.difficulty,
        tags=list(t.metadata.tags),
    )


def build_eval_v1() -> list[EvalItem]:
    seen = {t.prompt for t in build_dev_set()}

    def fresh(traces: list[ReasoningTrace], k: int, keep=lambda t: True) -> list[ReasoningTrace]:  # noqa: ANN001
        out = []
        for t in traces:
            if t.prompt not in seen and keep(t):
                seen.add(t.prompt)
                out.append(t)
                if len(out) == k:
                    return out
        raise RuntimeError(f"not enough fresh items (wanted {k}, got {len(out)})")

    arith = generate_arithmetic(400, EVAL_SEED, id_prefix="eval:arith")
    cards = generate_card_games(200, EVAL_SEED, id_prefix="eval:card")
    edges = generate_edge_cases(60, EVAL_SEED, id_prefix="eval:edge")
    core = fresh(arith, 45, lambda t: t.metadata.difficulty != "hard") + fresh(cards, 15, lambda t: t.metadata.difficulty != "hard")
    sensitive = fresh(arith, 15, lambda t: t.metadata.difficulty == "hard") + fresh(cards, 10, lambda t: t.metadata.difficulty == "hard")
    edge = fresh(edges, 15)
    items = [_item(t, "core", i) for i, t in enumerate(core)]
    items += [_item(t, "trace_sensitive", i) for i, t in enumerate(sensitive)]
    items += [_item(t, "edge_case", i) for i, t in enumerate(edge)]
    return items


def render(items: list[EvalItem]) -> str:
    return "".join(json.dumps(i.model_dump(mode="json"), ensure_ascii=False) + "\n" for i in items)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else SHIPPED
    out.write_text(render(build_eval_v1()), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
