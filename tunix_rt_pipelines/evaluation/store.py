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


def resolve_evaluation(engine: sa.Engine, ref: str) -> str:
    """The evaluation id named by ``ref``: a unique id prefix, or a label (its newest evaluation)."""
    ids: list[str] = []
    with engine.connect() as conn:
        # Only hex can start an id: a label (e.g. smoke_tiny/trained) skips the prefix scan.
        if ref and all(c in "0123456789abcdef" for c in ref):
            ids = conn.execute(sa.select(evaluations.c.id).where(evaluations.c.id.startswith(ref))).scalars().all()
            if len(ids) == 1:
                return ids[0]
        newest = conn.execute(sa.select(evaluations.c.id).where(evaluations.c.label == ref)
                              .order_by(evaluations.c.created_at.desc()).limit(1)).scalar()
    if newest is None:
        raise LookupError(f"no evaluation with id prefix or label {ref!r}" if not ids else
                          f"id prefix {ref!r} matches {len(ids)} evaluations; give more characters")
    return newest


def item_outcomes(engine: sa.Engine, ref: str) -> dict[str, dict]:
    """Per-item rows of one evaluation (id prefix or label, see ``resolve_evaluation``), keyed by item id."""
    evaluation = resolve_evaluation(engine, ref)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(item_scores).where(item_scores.c.evaluation_id == evaluation)).mappings()
        return {r["item_id"]: dict(r) for r in rows}
