"""Our tables (SQLAlchemy Core) and the engine that reaches them; Alembic creates the schema.

The same tables live in SQLite (embedded default) or PostgreSQL (``TUNIX_RT_DATABASE_URL``).
Writes are bulk statements, never one ORM object per row: see ``traces.store``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = sa.DateTime(timezone=True)

ingest_batches = sa.Table(
    "ingest_batches",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # uuid4 hex
    sa.Column("file_name", sa.String(512), nullable=False),  # inbox name or generator:<name>
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("file_bytes", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running | completed | failed | abandoned
    # Committed resume point: everything before byte_offset is stored (traces and rejects).
    sa.Column("byte_offset", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("next_line", sa.BigInteger, nullable=False, server_default="1"),
    sa.Column("n_read", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("n_accepted", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("n_duplicate", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("n_rejected", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("run_id", sa.String(64)),  # Dagster run that (last) worked on it
    sa.Column("holder", sa.String(300)),  # host:pid:start:nonce of the ingest working on it (traces.holder)
    sa.Column("error", sa.Text),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),  # every commit refreshes it
    sa.Column("finished_at", Timestamp),
    sa.Index(None, "file_name", "file_sha256"),
    # At most one open batch per content: two ingests starting together cannot both open one.
    sa.Index("uq_ingest_batches_open", "file_name", "file_sha256", unique=True,
             sqlite_where=sa.text("status IN ('running', 'failed')"),
             postgresql_where=sa.text("status IN ('running', 'failed')")),
)

traces = sa.Table(
    "traces",
    metadata,
    sa.Column("content_hash", sa.String(64), primary_key=True),
    sa.Column("trace_id", sa.String(128), nullable=False, unique=True),
    sa.Column("schema_version", sa.String(8), nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("steps", sa.JSON, nullable=False),  # list[str], ordered
    sa.Column("final_answer", sa.Text, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("difficulty", sa.String(16), nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("extra", sa.JSON, nullable=False),
    sa.Column("n_steps", sa.Integer, nullable=False),
    sa.Column("n_chars", sa.Integer, nullable=False),  # prompt + steps + answer, for length filters
    sa.Column("batch_id", sa.String(32), sa.ForeignKey("ingest_batches.id"), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "source", "category"),
    sa.Index(None, "batch_id"),
)

rejects = sa.Table(
    "rejects",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.String(32), sa.ForeignKey("ingest_batches.id"), nullable=False),
    sa.Column("file_name", sa.String(512), nullable=False),
    sa.Column("line_no", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),  # stable code, see traces.parse.Rejection
    sa.Column("field", sa.String(256), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    # The record as found, up to 64 KiB (the inbox keeps the whole file); raw_bytes is its full size.
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("raw_bytes", sa.BigInteger, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("batch_id", "line_no"),
    sa.Index(None, "reason"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),  # sha256 of spec + trace ids + template
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("manifest_sha256", sa.String(64), nullable=False),  # the manifest in the artefact store
    sa.Column("trace_ids_digest", sa.String(64), nullable=False),
    sa.Column("n_train", sa.Integer, nullable=False),
    sa.Column("n_validation", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "name"),
)

# One scoring of one predictions blob by one judge. Its id is sha256(predictions sha256, judge),
# so scoring the same predictions with the same judge again is the same evaluation.
evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("label", sa.String(256), nullable=False),  # what was evaluated, e.g. smoke_tiny/trained
    sa.Column("judge", sa.String(64), nullable=False),  # metric and version, e.g. answer_correctness@v1
    sa.Column("predictions_sha256", sa.String(64), nullable=False),
    sa.Column("evalset_sha256", sa.String(64), nullable=False),
    sa.Column("model_digest", sa.String(64), nullable=False),
    sa.Column("config_name", sa.String(128), nullable=False),
    sa.Column("config_hash", sa.String(64), nullable=False),
    sa.Column("dataset_digest", sa.String(64), nullable=False),
    sa.Column("backend", sa.String(16), nullable=False),
    sa.Column("primary_score", sa.Float),  # None when nothing could be scored
    sa.Column("n_items", sa.Integer, nullable=False),
    sa.Column("n_scored", sa.Integer, nullable=False),
    sa.Column("n_invalid", sa.Integer, nullable=False),
    sa.Column("scorecard", sa.JSON, nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "evalset_sha256", "primary_score"),
    sa.Index(None, "config_name"),
    sa.Index(None, "label", "created_at"),  # compare and rescore name evaluations by label (bench/eval)
)

item_scores = sa.Table(
    "item_scores",
    metadata,
    sa.Column("evaluation_id", sa.String(64), sa.ForeignKey("evaluations.id"), primary_key=True),
    sa.Column("item_id", sa.String(128), primary_key=True),
    sa.Column("outcome", sa.String(16), nullable=False),  # correct | wrong | invalid | unscored
    sa.Column("extracted", sa.Text),
    sa.Column("extractor", sa.String(32), nullable=False),
    sa.Column("strict_match", sa.Boolean, nullable=False),
    sa.Column("flexible_match", sa.Boolean, nullable=False),
    sa.Column("section", sa.String(32), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("score", sa.Float),  # a graded judge's score in [0, 1]; None for pass/fail judges and when unscored
    sa.Column("detail", sa.JSON),  # judge-specific: the unscored reason, a rubric judge's parsed reply
)

# A named regression baseline: one evaluation's value of one metric, scoped to its eval set.
# New evaluations on that eval set are checked against it (see ``registry.gates``).
regression_baselines = sa.Table(
    "regression_baselines",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("metric", sa.String(64), nullable=False),  # primary_score, trace_structure or score_<section>
    sa.Column("lower_is_better", sa.Boolean, nullable=False),
    sa.Column("evalset_sha256", sa.String(64), nullable=False),  # the scope
    sa.Column("evaluation_id", sa.String(64), sa.ForeignKey("evaluations.id"), nullable=False),
    sa.Column("value", sa.Float, nullable=False),  # the metric of that evaluation when the baseline was set
    sa.Column("max_drop", sa.Float, nullable=False),  # a worsening beyond this fails the check
    sa.Column("max_right_to_wrong", sa.Integer, nullable=False),  # more flips than this fail the check
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "evalset_sha256"),
)

# One gate decision: an evaluation checked against its baselines and the champion of the time.
# Its id hashes everything it was decided on, so deciding the same question again is the same row.
gate_decisions = sa.Table(
    "gate_decisions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("model_name", sa.String(64), nullable=False),
    sa.Column("evaluation_id", sa.String(64), sa.ForeignKey("evaluations.id"), nullable=False),
    sa.Column("champion_version_id", sa.String(64)),  # who held `champion` when decided; None: nobody
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("checks", sa.JSON, nullable=False),  # [{name, passed, value, reference, reason, ...}]
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "evaluation_id"),
)

# Immutable model versions. Files live content-addressed in the artefact store; a version
# names a folder manifest (``checkpoint_digest``) and never changes after it is written.
model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # sha256(name, checkpoint digest)
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # 1, 2, ... per name, in registration order
    sa.Column("checkpoint_digest", sa.String(64), nullable=False),
    sa.Column("evaluation_id", sa.String(64), sa.ForeignKey("evaluations.id")),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("provenance", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("name", "version"),
    sa.UniqueConstraint("name", "checkpoint_digest"),
)

# Where each alias points now; ``alias_events`` keeps every move with the gate that allowed it.
model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version_id", sa.String(64), sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

alias_events = sa.Table(
    "alias_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("version_id", sa.String(64), sa.ForeignKey("model_versions.id"), nullable=False),
    sa.Column("previous_version_id", sa.String(64)),
    sa.Column("gate_id", sa.String(64), sa.ForeignKey("gate_decisions.id")),  # None for `candidate`
    sa.Column("actor", sa.String(128), nullable=False),  # dagster run id or cli:<user>
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Index(None, "name", "alias"),
)


_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()


def make_engine(url: str) -> sa.Engine:
    """One engine per URL and process, with the settings each backend needs."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            _engines[url] = engine
        return engine


def _create_engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A long busy timeout lets two ingests (two processes) take turns writing.
        engine = sa.create_engine(url, connect_args={"timeout": 120})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg2")
        return sa.create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args={"application_name": "tunix-rt", "connect_timeout": 10},
        )
    return sa.create_engine(url)


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()

# One sweep (a validated spec) and every trial Ray Tune ran for it, whatever became of it.
sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),  # the validated spec, as run last
    sa.Column("status", sa.String(16), nullable=False),  # running | finished | failed
    sa.Column("best_trial_key", sa.String(16)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

sweep_trials = sa.Table(
    "sweep_trials",
    metadata,
    sa.Column("sweep", sa.String(64), sa.ForeignKey("sweeps.name"), primary_key=True),
    sa.Column("trial_key", sa.String(16), primary_key=True),  # config hash prefix: the dynamic partition key
    sa.Column("params", sa.JSON, nullable=False),  # the sampled values, by dotted field
    sa.Column("config_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # finished | stopped_early | failed | running
    sa.Column("val_loss", sa.Float),  # the last validation loss reported
    sa.Column("final_loss", sa.Float),
    sa.Column("steps_done", sa.Integer, nullable=False),
    sa.Column("run_dir", sa.Text, nullable=False),
    sa.Column("error", sa.Text),  # why it failed
    sa.Column("origin", sa.String(16), nullable=False),  # random | warm_start | rerun
    sa.Column("dagster_run_id", sa.String(64)),
    sa.Column("updated_at", Timestamp, nullable=False),
)

