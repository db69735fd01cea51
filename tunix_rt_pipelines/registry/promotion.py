"""Promotion: an alias moves to a version only with a passing gate record.

``promote(engine, "smoke_tiny:3", alias="champion")`` looks for a stored gate decision that
passed for that version's evaluation *against the version that holds champion now* (a
decision taken against an earlier champion says nothing about the current one). Without one
it refuses, naming the command that takes the decision. With one, it moves the alias and
records the move with the gate's id, in one transaction that re-reads the holder, so two
promotions racing cannot both win against a stale champion.

Idempotent: promoting the version that already holds the alias changes nothing and says so.
``candidate`` is not gated (every registration moves it); use ``register_version`` for that.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from tunix_rt_pipelines.registry.gates import passing_gate
from tunix_rt_pipelines.registry.names import validate_name
from tunix_rt_pipelines.registry.versions import CANDIDATE, ModelVersion, alias_holder, get_version, move_alias


class PromotionRefused(RuntimeError):
    """No passing gate record allows this move."""


@dataclass(frozen=True)
class Promotion:
    version: ModelVersion
    alias: str
    changed: bool  # False when the version already held the alias
    previous_version_id: str | None
    gate_id: str | None


def promote(engine: sa.Engine, ref: str, *, alias: str = "champion", actor: str) -> Promotion:
    validate_name(alias, what="alias")
    if alias == CANDIDATE:
        raise PromotionRefused("'candidate' follows registrations; it is not promoted to")
    version = get_version(engine, ref)
    with engine.begin() as conn:
        holder = alias_holder(conn, version.name, alias)
        if holder == version.id:
            return Promotion(version, alias, False, holder, None)
        if version.evaluation_id is None:
            raise PromotionRefused(f"{version.label} has no evaluation, so no gate can pass for it")
        # The gate compares with `champion`; moving any other gated alias still needs that evidence.
        champion = holder if alias == "champion" else alias_holder(conn, version.name, "champion")
        gate_id = passing_gate(conn, version.name, version.evaluation_id, champion)
        if gate_id is None:
            against = f"champion {champion[:12]}" if champion else "an empty champion slot"
            raise PromotionRefused(
                f"no passing gate record for {version.label} (evaluation {version.evaluation_id[:12]}) against "
                f"{against}: run `tunix-rt registry gate {version.label}` and see which check fails")
        if conn.dialect.name == "postgresql":
            # Serialise promotions of one model: the holder read above must still hold when we move it.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"promote:{version.name}"})
            if alias_holder(conn, version.name, alias) != holder:
                raise PromotionRefused(f"{version.name}@{alias} moved while promoting; try again")
        previous = move_alias(conn, version.name, alias, version.id, gate_id=gate_id, actor=actor)
    return Promotion(version, alias, True, previous, gate_id)
