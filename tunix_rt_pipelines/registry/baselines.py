"""Named regression baselines: one evaluation's value of one metric, scoped to its eval set.

A baseline says "on this eval set, ``metric`` must not get worse than it was in evaluation E
by more than ``max_drop``, and no more than ``max_right_to_wrong`` items that E got right may
be lost". ``lower_is_better`` flips the direction for metrics where smaller is better. The
value is copied from E when the baseline is set, so deleting nothing can move it later;
setting a baseline again under the same name replaces it (its history is in git or the
caller's hands, the gate decisions that used it keep the value they saw).

Metrics an evaluation has: ``primary_score``, ``trace_structure`` (the trace_structure@v1
mean) and ``score_<section>`` (the mean of one eval-set section, e.g. ``score_core``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa

from tunix_rt_pipelines.core.db import evaluations, regression_baselines
from tunix_rt_pipelines.registry.names import validate_name
from tunix_rt_pipelines.traces.store import utcnow

METRICS = ("primary_score", "trace_structure", "score_<section>")


@dataclass(frozen=True)
class Baseline:
    name: str
    metric: str  # one of METRICS
    lower_is_better: bool  # True for metrics where smaller is better
    evalset_sha256: str  # only evaluations on this eval set are checked against it
    evaluation_id: str  # the evaluation the value was taken from
    value: float
    max_drop: float  # a worsening by more than this fails the check
    max_right_to_wrong: int  # more items flipping right→wrong than this fails the check


def metric_value(evaluation: dict, metric: str) -> float | None:
    """``metric`` of an evaluation row; None when it has no value (nothing scored, no such section)."""
    card = evaluation["scorecard"]
    if metric == "primary_score":
        value = evaluation["primary_score"]
    elif metric == "trace_structure":
        value = (card.get("trace_structure") or {}).get("mean")
    elif metric.startswith("score_"):
        value = (card.get("by_section", {}).get(metric.removeprefix("score_")) or {}).get("mean")
    else:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def load_evaluation(conn: sa.Connection, evaluation_id: str) -> dict:
    row = conn.execute(sa.select(evaluations).where(evaluations.c.id == evaluation_id)).mappings().first()
    if row is None:
        raise LookupError(f"no evaluation {evaluation_id}")
    return dict(row)


def set_baseline(
    engine: sa.Engine,
    name: str,
    evaluation_id: str,
    *,
    metric: str = "primary_score",
    lower_is_better: bool = False,
    max_drop: float = 0.02,
    max_right_to_wrong: int = 5,
) -> Baseline:
    """Create or replace baseline ``name`` from an evaluation (its eval set becomes the scope)."""
    validate_name(name, what="baseline name")
    if max_drop < 0 or max_right_to_wrong < 0:
        raise ValueError("max_drop and max_right_to_wrong must be >= 0")
    with engine.begin() as conn:
        evaluation = load_evaluation(conn, evaluation_id)
        value = metric_value(evaluation, metric)
        if value is None:
            raise ValueError(f"evaluation {evaluation_id[:12]} has no value for {metric!r}: cannot be a baseline")
        baseline = Baseline(name=name, metric=metric, lower_is_better=lower_is_better,
                            evalset_sha256=evaluation["evalset_sha256"], evaluation_id=evaluation_id, value=value,
                            max_drop=max_drop, max_right_to_wrong=max_right_to_wrong)
        conn.execute(regression_baselines.delete().where(regression_baselines.c.name == name))
        conn.execute(regression_baselines.insert().values(**baseline.__dict__, created_at=utcnow()))
    return baseline


def baselines_for(conn: sa.Connection, evalset_sha256: str | None = None) -> list[Baseline]:
    """Baselines scoped to ``evalset_sha256`` (all when None), by name."""
    q = sa.select(regression_baselines).order_by(regression_baselines.c.name)
    if evalset_sha256:
        q = q.where(regression_baselines.c.evalset_sha256 == evalset_sha256)
    return [Baseline(**{f: r[f] for f in Baseline.__dataclass_fields__}) for r in conn.execute(q).mappings()]


def list_baselines(engine: sa.Engine) -> list[Baseline]:
    with engine.connect() as conn:
        return baselines_for(conn)


def delete_baseline(engine: sa.Engine, name: str) -> bool:
    with engine.begin() as conn:
        return conn.execute(regression_baselines.delete().where(regression_baselines.c.name == name)).rowcount > 0
