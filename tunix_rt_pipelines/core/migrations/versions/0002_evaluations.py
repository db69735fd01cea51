"""Evaluations and their per-item scores.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("judge", sa.String(64), nullable=False),
        sa.Column("predictions_sha256", sa.String(64), nullable=False),
        sa.Column("evalset_sha256", sa.String(64), nullable=False),
        sa.Column("model_digest", sa.String(64), nullable=False),
        sa.Column("config_name", sa.String(128), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("dataset_digest", sa.String(64), nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("primary_score", sa.Float),
        sa.Column("n_items", sa.Integer, nullable=False),
        sa.Column("n_scored", sa.Integer, nullable=False),
        sa.Column("n_invalid", sa.Integer, nullable=False),
        sa.Column("scorecard", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
    )
    op.create_index("ix_evaluations_evalset_sha256_primary_score", "evaluations", ["evalset_sha256", "primary_score"])
    op.create_index("ix_evaluations_config_name", "evaluations", ["config_name"])
    op.create_table(
        "item_scores",
        sa.Column("evaluation_id", sa.String(64), nullable=False),
        sa.Column("item_id", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("extracted", sa.Text),
        sa.Column("extractor", sa.String(32), nullable=False),
        sa.Column("strict_match", sa.Boolean, nullable=False),
        sa.Column("flexible_match", sa.Boolean, nullable=False),
        sa.Column("section", sa.String(32), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluations.id"],
                                name="fk_item_scores_evaluation_id_evaluations"),
        sa.PrimaryKeyConstraint("evaluation_id", "item_id", name="pk_item_scores"),
    )


def downgrade() -> None:
    op.drop_table("item_scores")
    op.drop_table("evaluations")
