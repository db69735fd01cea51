"""One open batch per file content, with its holder: concurrent ingests of one file take turns.

Two ingests of the same file used to resume the same unfinished batch at once and add both
their counts to it. Now a batch records who holds it (``traces.holder``), at most one batch per
(file_name, file_sha256) is running or failed (a partial unique index, so two ingests that
start together cannot both open one), and the holder fences every commit.

Open batches that an earlier race left beside a newer one become ``abandoned``: their traces
and rejects stay, their counts stay right for what they read, and nothing resumes them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OPEN = "status IN ('running', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("ingest_batches") as batch:
        batch.add_column(sa.Column("holder", sa.String(300)))
    op.execute(sa.text(f"""
        UPDATE ingest_batches SET status = 'abandoned'
        WHERE {_OPEN} AND EXISTS (
            SELECT 1 FROM ingest_batches newer
            WHERE newer.file_name = ingest_batches.file_name
              AND newer.file_sha256 = ingest_batches.file_sha256
              AND newer.status IN ('running', 'failed')
              AND (newer.started_at, newer.id) > (ingest_batches.started_at, ingest_batches.id))
    """))
    op.create_index(
        "uq_ingest_batches_open", "ingest_batches", ["file_name", "file_sha256"], unique=True,
        sqlite_where=sa.text(_OPEN), postgresql_where=sa.text(_OPEN),
    )


def downgrade() -> None:
    op.drop_index("uq_ingest_batches_open", table_name="ingest_batches")
    with op.batch_alter_table("ingest_batches") as batch:
        batch.drop_column("holder")
