"""Graded judge columns on item scores; regression baselines, gate decisions, the model registry.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("item_scores") as batch:
        batch.add_column(sa.Column("score", sa.Float))
        batch.add_column(sa.Column("detail", sa.JSON))
    op.create_table(
        "regression_baselines",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("lower_is_better", sa.Boolean, nullable=False),
        sa.Column("evalset_sha256", sa.String(64), nullable=False),
        sa.Column("evaluation_id", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("max_drop", sa.Float, nullable=False),
        sa.Column("max_right_to_wrong", sa.Integer, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluations.id"],
                                name="fk_regression_baselines_evaluation_id_evaluations"),
        sa.PrimaryKeyConstraint("name", name="pk_regression_baselines"),
    )
    op.create_index("ix_regression_baselines_evalset_sha256", "regression_baselines", ["evalset_sha256"])
    op.create_table(
        "gate_decisions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(64), nullable=False),
        sa.Column("evaluation_id", sa.String(64), nullable=False),
        sa.Column("champion_version_id", sa.String(64)),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("checks", sa.JSON, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluations.id"],
                                name="fk_gate_decisions_evaluation_id_evaluations"),
        sa.PrimaryKeyConstraint("id", name="pk_gate_decisions"),
    )
    op.create_index("ix_gate_decisions_evaluation_id", "gate_decisions", ["evaluation_id"])
    op.create_table(
        "model_versions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("checkpoint_digest", sa.String(64), nullable=False),
        sa.Column("evaluation_id", sa.String(64)),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("provenance", sa.JSON, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluations.id"],
                                name="fk_model_versions_evaluation_id_evaluations"),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
        sa.UniqueConstraint("name", "checkpoint_digest", name="uq_model_versions_name_checkpoint_digest"),
    )
    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name="fk_model_aliases_version_id_model_versions"),
        sa.PrimaryKeyConstraint("name", "alias", name="pk_model_aliases"),
    )
    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("previous_version_id", sa.String(64)),
        sa.Column("gate_id", sa.String(64)),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"],
                                name="fk_alias_events_version_id_model_versions"),
        sa.ForeignKeyConstraint(["gate_id"], ["gate_decisions.id"], name="fk_alias_events_gate_id_gate_decisions"),
        sa.PrimaryKeyConstraint("id", name="pk_alias_events"),
    )
    op.create_index("ix_alias_events_name_alias", "alias_events", ["name", "alias"])


def downgrade() -> None:
    op.drop_table("alias_events")
    op.drop_table("model_aliases")
    op.drop_table("model_versions")
    op.drop_table("gate_decisions")
    op.drop_table("regression_baselines")
    with op.batch_alter_table("item_scores") as batch:
        batch.drop_column("detail")
        batch.drop_column("score")
