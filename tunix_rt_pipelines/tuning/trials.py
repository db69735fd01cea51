"""Sweeps and trials in our database: every trial recorded, whatever became of it.

Statuses: ``finished`` (ran every step), ``stopped_early`` (ASHA stopped it, or the time budget
ran out, before its last step), ``failed`` (raised; ``error`` says why), ``running`` (recorded
when it started: a row still ``running`` after its sweep ended is a killed trial). ``origin``
says where its parameters came from: ``random`` (the seeded proposals of ``sweep run``),
``warm_start`` (``sweep extend``, proposed from earlier results) or ``rerun`` (``sweep resume``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sqlalchemy as sa

from tunix_rt_pipelines.core.db import sweep_trials, sweeps
from tunix_rt_pipelines.traces.store import utcnow

STATUSES = ("finished", "stopped_early", "failed", "running")


@dataclass(frozen=True)
class TrialRecord:
    trial_key: str  # config hash prefix; the trial's dynamic partition key
    params: dict  # sampled values by dotted field
    config_hash: str
    status: str  # one of STATUSES
    val_loss: float | None
    final_loss: float | None
    steps_done: int
    run_dir: str
    error: str | None = None
    origin: str = "random"
    dagster_run_id: str | None = None


def save_sweep(engine: sa.Engine, name: str, spec: dict, status: str) -> None:
    now = utcnow()
    with engine.begin() as conn:
        if conn.execute(sa.select(sweeps.c.name).where(sweeps.c.name == name)).first():
            conn.execute(sweeps.update().where(sweeps.c.name == name).values(spec=spec, status=status, updated_at=now))
        else:
            conn.execute(sweeps.insert().values(name=name, spec=spec, status=status, created_at=now, updated_at=now))


def set_sweep_status(engine: sa.Engine, name: str, status: str, best_trial_key: str | None = None) -> None:
    with engine.begin() as conn:
        values = {"status": status, "updated_at": utcnow()}
        if best_trial_key is not None:
            values["best_trial_key"] = best_trial_key
        conn.execute(sweeps.update().where(sweeps.c.name == name).values(**values))


def record_trials(engine: sa.Engine, sweep: str, records: list[TrialRecord]) -> None:
    """Insert or update each trial. A finished trial is never downgraded by a later reuse report."""
    with engine.begin() as conn:
        for r in records:
            if r.status not in STATUSES:
                raise ValueError(f"trial {r.trial_key}: status {r.status!r} is not one of {STATUSES}")
            where = (sweep_trials.c.sweep == sweep) & (sweep_trials.c.trial_key == r.trial_key)
            old = conn.execute(sa.select(sweep_trials.c.status, sweep_trials.c.origin).where(where)).first()
            values = {**asdict(r), "sweep": sweep, "updated_at": utcnow()}
            if old is None:
                conn.execute(sweep_trials.insert().values(**values))
            elif not (old.status == "finished" and r.status != "finished"):
                values["origin"] = old.origin if r.origin == "random" else r.origin
                conn.execute(sweep_trials.update().where(where).values(**values))


def trials_of(engine: sa.Engine, sweep: str) -> list[TrialRecord]:
    q = sa.select(sweep_trials).where(sweep_trials.c.sweep == sweep).order_by(sweep_trials.c.trial_key)
    with engine.connect() as conn:
        return [TrialRecord(**{f: row[f] for f in TrialRecord.__dataclass_fields__}) for row in conn.execute(q).mappings()]


def sweep_row(engine: sa.Engine, name: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(sweeps).where(sweeps.c.name == name)).mappings().first()
    return dict(row) if row else None
