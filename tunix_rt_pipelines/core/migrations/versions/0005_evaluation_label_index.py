"""Evaluations by label: resolving a label (compare, gates) was a full scan (bench/eval).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_evaluations_label_created_at", "evaluations", ["label", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_evaluations_label_created_at", table_name="evaluations")
