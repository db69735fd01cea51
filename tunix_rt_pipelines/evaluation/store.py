"""Evaluations and per-item scores in our database; the leaderboard is a query over them.

An evaluation's id is sha256 of (predictions sha256, judge): scoring the same stored
predictions with the same judge again is the same evaluation, so ``save_evaluation`` is
idempotent and re-materialising an evaluation asset never duplicates a leaderboard row.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa

from tunix_rt_pipelines.core.db import evaluations, item_scores
from tunix_rt_pipelines.traces.store import utcnow


def evaluation_id(predictions_sha256: str, judge: str) -> str:
    return hashlib.sha256(f"{predictions_sha256}:{judge}".encode()).hexdigest()


def save_evaluation(engine: sa.Engine, record: dict, items: list[dict]) -> bool:
    """Store one evaluation and its item rows in one transaction; False when it was already stored."""
    with engine.begin() as conn:
        if conn.execute(sa.select(evaluations.c.id).where(evaluations.c.id == record["id"])).first():
            return False
        conn.execute(evaluations.insert().values({**record, "created_at": record.get("created_at") or utcnow()}))
        if items:
            conn.execute(item_scores.insert(), [{"evaluation_id": record["id"], **row} for row in items])
    return True


def leaderboard(
    engine: sa.Engine,
    *,
    evalset_sha256: str | None = None,
    dataset_digest: str | None = None,
    model_digest: str | None = None,
    config_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict]:
    """Evaluations ranked by primary score (unscorable ones last), newest first among equals."""
    q = sa.select(evaluations).order_by(
        evaluations.c.primary_score.is_(None), evaluations.c.primary_score.desc(), evaluations.c.created_at.desc()
    ).limit(limit)
    filters = {
        evaluations.c.evalset_sha256: evalset_sha256, evaluations.c.dataset_digest: dataset_digest,
        evaluations.c.config_name: config_name,
    }
    for column, value in filters.items():
        if value:
            q = q.where(column == value)
    if model_digest:
        q = q.where(evaluations.c.model_digest.like(f"{model_digest}%"))
    if since:
        q = q.where(evaluations.c.created_at >= since)
    if until:
        q = q.where(evaluations.c.created_at <= until)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def item_outcomes(engine: sa.Engine, evaluation: str) -> dict[str, dict]:
    """Per-item rows of one evaluation (an id or a unique id prefix), keyed by item id."""
    with engine.connect() as conn:
        ids = conn.execute(sa.select(evaluations.c.id).where(evaluations.c.id.like(f"{evaluation}%"))).scalars().all()
        if len(ids) != 1:
            raise LookupError(f"evaluation {evaluation!r} matches {len(ids)} evaluations; give a unique id prefix")
        rows = conn.execute(sa.select(item_scores).where(item_scores.c.evaluation_id == ids[0])).mappings()
        return {r["item_id"]: dict(r) for r in rows}
