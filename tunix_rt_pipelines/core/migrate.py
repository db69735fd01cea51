"""Bring a database to the newest schema with Alembic (idempotent, safe to race).

``alembic upgrade head`` runs on every store open. Concurrent openers (two ingests
starting together) take turns: on PostgreSQL through an advisory lock, on a SQLite file
through a lock file beside it.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tunix_rt_pipelines.core.filelock import file_lock

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Our revision table. Dagster's storage (dagster-postgres) keeps its own Alembic revision in
# `alembic_version`; the shared deployment puts both in one database, so ours has its own name.
VERSION_TABLE = "tunix_rt_alembic_version"
_ADVISORY_LOCK_KEY = 0x7475_6E69  # "tuni"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def _adopt_legacy_version_table(conn: sa.Connection) -> None:
    """Homes made before VERSION_TABLE recorded our revision in ``alembic_version``: carry it over."""
    inspector = sa.inspect(conn)
    if inspector.has_table(VERSION_TABLE) or not inspector.has_table("alembic_version"):
        return
    revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    ours = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if revision in ours:  # not Dagster's (its revisions are hex hashes)
        conn.execute(sa.text(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(sa.text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:r)"), {"r": revision})
        conn.execute(sa.text("DROP TABLE alembic_version"))


def migrate(engine: sa.Engine) -> None:
    if current_revision(engine) == head_revision():
        return
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        # Two processes opening a new SQLite store at once would both create its tables.
        with file_lock(Path(f"{database}.migrate.lock")):
            _upgrade(engine)
    else:
        _upgrade(engine)


def _upgrade(engine: sa.Engine) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
        _adopt_legacy_version_table(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
