"""Immutable model versions and the aliases that point at them.

A version is a row naming a folder manifest in the content-addressed artefact store
(``checkpoint_digest``, see ``core.artifacts.put_tree``) plus what it was measured to do
(``metrics``), how it was made (``config``) and where everything came from (``provenance``).
Its id is sha256(name, checkpoint digest): registering the same checkpoint under the same name
again returns the existing version, so re-running the registration asset never adds a row.
Version numbers count up per name in registration order; two registrations racing for the
same number are resolved by the unique constraint and a retry.

Aliases (``candidate``, ``champion``, ...) replace lifecycle stages: an alias points at one
version, moving it is one row update plus one ``alias_events`` row, in one transaction.
``candidate`` moves on every registration; every other alias moves only through
``registry.promotion.promote`` with a passing gate record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from tunix_rt_pipelines.core.artifacts import TREE_FORMAT, ArtifactStore
from tunix_rt_pipelines.core.db import alias_events, model_aliases, model_versions
from tunix_rt_pipelines.registry.names import parse_ref, validate_name
from tunix_rt_pipelines.traces.store import utcnow

CANDIDATE = "candidate"
CHAMPION = "champion"


@dataclass(frozen=True)
class ModelVersion:
    id: str  # sha256(name, checkpoint digest)
    name: str
    version: int
    checkpoint_digest: str  # folder manifest in the artefact store
    evaluation_id: str | None  # the evaluation its metrics come from
    metrics: dict
    config: dict
    provenance: dict
    created_at: datetime

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def as_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "name": self.name, "version": self.version,
                "checkpoint_digest": self.checkpoint_digest, "evaluation_id": self.evaluation_id,
                "metrics": self.metrics, "config": self.config, "provenance": self.provenance,
                "created_at": self.created_at.isoformat(timespec="seconds")}


def version_id(name: str, checkpoint_digest: str) -> str:
    return hashlib.sha256(f"{name}:{checkpoint_digest}".encode()).hexdigest()


def _row_to_version(row: sa.RowMapping) -> ModelVersion:
    return ModelVersion(**{f: row[f] for f in ModelVersion.__dataclass_fields__})


def _check_checkpoint(artifacts: ArtifactStore, digest: str) -> None:
    """The checkpoint must be a complete folder manifest in the store, every file present and intact."""
    import json

    manifest = json.loads(artifacts.get_bytes(digest))
    if manifest.get("format") != TREE_FORMAT:
        raise ValueError(f"checkpoint {digest} is not a folder manifest ({TREE_FORMAT})")
    for entry in manifest["files"].values():
        artifacts.verify(entry["sha256"])


def register_version(
    engine: sa.Engine,
    artifacts: ArtifactStore,
    *,
    name: str,
    checkpoint_digest: str,
    evaluation_id: str | None,
    metrics: dict,
    config: dict,
    provenance: dict,
    actor: str,
) -> tuple[ModelVersion, bool]:
    """(version, created). Points ``candidate`` at a newly created version."""
    validate_name(name)
    _check_checkpoint(artifacts, checkpoint_digest)
    vid = version_id(name, checkpoint_digest)
    for _attempt in range(5):
        try:
            with engine.begin() as conn:
                existing = conn.execute(sa.select(model_versions).where(model_versions.c.id == vid)).mappings().first()
                if existing:
                    return _row_to_version(existing), False
                number = (conn.execute(sa.select(sa.func.max(model_versions.c.version))
                                       .where(model_versions.c.name == name)).scalar() or 0) + 1
                now = utcnow()
                conn.execute(model_versions.insert().values(
                    id=vid, name=name, version=number, checkpoint_digest=checkpoint_digest,
                    evaluation_id=evaluation_id, metrics=metrics, config=config, provenance=provenance, created_at=now))
                move_alias(conn, name, CANDIDATE, vid, gate_id=None, actor=actor)
                row = conn.execute(sa.select(model_versions).where(model_versions.c.id == vid)).mappings().one()
                return _row_to_version(row), True
        except sa.exc.IntegrityError:
            continue  # another registration took this number (or this very version) first: look again
    raise RuntimeError(f"could not register {name}: version numbers kept colliding")


def move_alias(conn: sa.Connection, name: str, alias: str, version: str, *, gate_id: str | None, actor: str) -> str | None:
    """Point ``name@alias`` at ``version`` inside the caller's transaction; returns the previous holder."""
    validate_name(alias, what="alias")
    previous = conn.execute(sa.select(model_aliases.c.version_id).where(
        model_aliases.c.name == name, model_aliases.c.alias == alias)).scalar()
    now = utcnow()
    if previous is None:
        conn.execute(model_aliases.insert().values(name=name, alias=alias, version_id=version, updated_at=now))
    else:
        conn.execute(model_aliases.update().where(model_aliases.c.name == name, model_aliases.c.alias == alias)
                     .values(version_id=version, updated_at=now))
    conn.execute(alias_events.insert().values(name=name, alias=alias, version_id=version, previous_version_id=previous,
                                              gate_id=gate_id, actor=actor, created_at=now))
    return previous


def get_version(engine: sa.Engine, ref: str) -> ModelVersion:
    """The version named by ``ref`` (``NAME:N``, ``NAME@ALIAS`` or an id prefix); LookupError if none."""
    r = parse_ref(ref)
    q = sa.select(model_versions)
    if r.id_prefix:
        q = q.where(model_versions.c.id.like(f"{r.id_prefix}%"))
    elif r.number is not None:
        q = q.where(model_versions.c.name == r.name, model_versions.c.version == r.number)
    else:
        q = q.join(model_aliases, model_aliases.c.version_id == model_versions.c.id).where(
            model_aliases.c.name == r.name, model_aliases.c.alias == r.alias)
    with engine.connect() as conn:
        rows = conn.execute(q.limit(2)).mappings().all()
    if not rows:
        raise LookupError(f"no model version {ref!r}")
    if len(rows) > 1:
        raise LookupError(f"version id prefix {ref!r} is ambiguous; give more characters")
    return _row_to_version(rows[0])


def alias_holder(engine_or_conn: sa.Engine | sa.Connection, name: str, alias: str) -> str | None:
    """The version id ``name@alias`` points at, or None."""
    q = sa.select(model_aliases.c.version_id).where(model_aliases.c.name == name, model_aliases.c.alias == alias)
    if isinstance(engine_or_conn, sa.Engine):
        with engine_or_conn.connect() as conn:
            return conn.execute(q).scalar()
    return engine_or_conn.execute(q).scalar()


def list_versions(engine: sa.Engine, name: str | None = None) -> list[dict]:
    """Versions (newest first) as dicts with an ``aliases`` list each."""
    q = sa.select(model_versions).order_by(model_versions.c.name, model_versions.c.version.desc())
    if name:
        q = q.where(model_versions.c.name == validate_name(name))
    with engine.connect() as conn:
        rows = [_row_to_version(r) for r in conn.execute(q).mappings()]
        aliases: dict[str, list[str]] = {}
        for a in conn.execute(sa.select(model_aliases).order_by(model_aliases.c.alias)).mappings():
            aliases.setdefault(a["version_id"], []).append(a["alias"])
    return [{**v.as_dict(), "aliases": aliases.get(v.id, [])} for v in rows]


def alias_history(engine: sa.Engine, name: str, alias: str | None = None) -> list[dict]:
    """Every move of ``name``'s aliases, oldest first."""
    q = sa.select(alias_events).where(alias_events.c.name == name).order_by(alias_events.c.id)
    if alias:
        q = q.where(alias_events.c.alias == alias)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]
