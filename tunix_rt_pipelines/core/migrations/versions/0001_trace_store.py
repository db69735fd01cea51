"""Trace store: ingest batches, traces, rejects, dataset snapshots.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "ingest_batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("file_name", sa.String(512), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("file_bytes", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("byte_offset", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("next_line", sa.BigInteger, nullable=False, server_default="1"),
        sa.Column("n_read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("n_accepted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("n_duplicate", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("n_rejected", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("run_id", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_batches"),
    )
    op.create_index("ix_ingest_batches_file_name_file_sha256", "ingest_batches", ["file_name", "file_sha256"])
    op.create_table(
        "traces",
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("trace_id", sa.String(128), nullable=False),
        sa.Column("schema_version", sa.String(8), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("final_answer", sa.Text, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("difficulty", sa.String(16), nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("n_steps", sa.Integer, nullable=False),
        sa.Column("n_chars", sa.Integer, nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("content_hash", name="pk_traces"),
        sa.UniqueConstraint("trace_id", name="uq_traces_trace_id"),
        sa.ForeignKeyConstraint(["batch_id"], ["ingest_batches.id"], name="fk_traces_batch_id_ingest_batches"),
    )
    op.create_index("ix_traces_source_category", "traces", ["source", "category"])
    op.create_index("ix_traces_batch_id", "traces", ["batch_id"])
    op.create_table(
        "rejects",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("file_name", sa.String(512), nullable=False),
        sa.Column("line_no", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("field", sa.String(256), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("raw_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejects"),
        sa.UniqueConstraint("batch_id", "line_no", name="uq_rejects_batch_id_line_no"),
        sa.ForeignKeyConstraint(["batch_id"], ["ingest_batches.id"], name="fk_rejects_batch_id_ingest_batches"),
    )
    op.create_index("ix_rejects_reason", "rejects", ["reason"])
    op.create_table(
        "datasets",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("trace_ids_digest", sa.String(64), nullable=False),
        sa.Column("n_train", sa.Integer, nullable=False),
        sa.Column("n_validation", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_datasets"),
    )
    op.create_index("ix_datasets_name", "datasets", ["name"])


def downgrade() -> None:
    op.drop_table("datasets")
    op.drop_table("rejects")
    op.drop_table("traces")
    op.drop_table("ingest_batches")
