"""Leaderboard and prefix lookups on PostgreSQL without scanning every evaluation (bench/eval).

Measured on 10k evaluations × 100 items (``bench/eval/run.py --try-indexes``):

* leaderboard top-50: 21 → 6 ms. The ranking index matches the leaderboard's ORDER BY, so the
  top N is read from the index instead of sorting every evaluation.
* model-digest prefix: 7.5 → 1.7 ms; evaluation-id prefix: 5.1 → 2.6 ms. Under a non-C
  collation a plain btree cannot serve ``LIKE 'abc%'``; ``varchar_pattern_ops`` can.
* dataset and date-window filters: 16 → 8 ms and 9 → 5 ms.

PostgreSQL only. On SQLite the same ranking index made two filtered leaderboards slower
(model prefix 17 → 35 ms, dataset + config + since 5 → 16 ms) because its planner prefers it
over the filter, so SQLite keeps the indexes it had.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_evaluations_rank": "evaluations ((primary_score IS NULL), primary_score DESC, created_at DESC)",
    "ix_evaluations_id_prefix": "evaluations (id varchar_pattern_ops)",
    "ix_evaluations_model_digest_prefix": "evaluations (model_digest varchar_pattern_ops)",
    "ix_evaluations_dataset_digest": "evaluations (dataset_digest)",
    "ix_evaluations_created_at": "evaluations (created_at)",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, target in _INDEXES.items():
        op.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {name} ON {target}"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in _INDEXES:
        op.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
