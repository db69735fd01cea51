"""Sweeps and their trials.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("best_trial_key", sa.String(16)),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sweeps"),
    )
    op.create_table(
        "sweep_trials",
        sa.Column("sweep", sa.String(64), nullable=False),
        sa.Column("trial_key", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("val_loss", sa.Float),
        sa.Column("final_loss", sa.Float),
        sa.Column("steps_done", sa.Integer, nullable=False),
        sa.Column("run_dir", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("dagster_run_id", sa.String(64)),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(["sweep"], ["sweeps.name"], name="fk_sweep_trials_sweep_sweeps"),
        sa.PrimaryKeyConstraint("sweep", "trial_key", name="pk_sweep_trials"),
    )


def downgrade() -> None:
    op.drop_table("sweep_trials")
    op.drop_table("sweeps")
