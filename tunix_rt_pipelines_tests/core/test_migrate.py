import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tunix_rt_pipelines.core.db import make_engine, metadata
from tunix_rt_pipelines.core.migrate import VERSION_TABLE, current_revision, head_revision, migrate


# Migration 0006: PostgreSQL-only indexes for the leaderboard (SQLite's planner misuses them), so
# they are not in the dialect-neutral metadata.
POSTGRES_ONLY_INDEXES = {"ix_evaluations_rank", "ix_evaluations_id_prefix", "ix_evaluations_model_digest_prefix",
                         "ix_evaluations_dataset_digest", "ix_evaluations_created_at"}


def test_migrations_build_exactly_the_declared_tables(store_url):
    engine = make_engine(store_url)
    migrate(engine)
    migrate(engine)  # idempotent
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata)
    assert [d for d in diff if not (d[0] == "remove_index" and d[1].name in POSTGRES_ONLY_INDEXES)] == []


def test_leaderboard_indexes_exist_on_postgresql_only(store_url):
    engine = make_engine(store_url)
    migrate(engine)
    with engine.connect() as conn:
        names = {ix["name"] for ix in sa.inspect(conn).get_indexes("evaluations")}
    expected = POSTGRES_ONLY_INDEXES if engine.dialect.name == "postgresql" else set()
    assert names & POSTGRES_ONLY_INDEXES == expected


def test_another_tools_alembic_version_in_the_same_database_is_left_alone(store_url):
    """Dagster's storage keeps its own revision in alembic_version when it shares our database."""
    engine = make_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('29b539ebc72a')"))
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "29b539ebc72a"
    assert current_revision(engine) == head_revision()


def test_a_home_migrated_before_the_own_version_table_is_carried_over(store_url):
    engine = make_engine(store_url)
    migrate(engine)
    with engine.begin() as conn:  # what an older home looks like: our revision in alembic_version
        conn.execute(sa.text(f"ALTER TABLE {VERSION_TABLE} RENAME TO alembic_version"))
    migrate(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("alembic_version")


def test_open_batches_an_earlier_race_left_beside_a_newer_one_are_abandoned(store_url):
    """Migration 0007 allows one open batch per content; older ones become `abandoned`, not lost."""
    from alembic import command

    from tunix_rt_pipelines.core.migrate import alembic_config

    engine = make_engine(store_url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
        for i, status in enumerate(["failed", "running", "running", "completed"]):
            conn.execute(sa.text(
                "INSERT INTO ingest_batches (id, file_name, file_sha256, file_bytes, status, started_at, updated_at) "
                f"VALUES ('b{i}', 'a.jsonl', 'x', 1, '{status}', :t, :t)"), {"t": f"2026-11-2{i} 00:00:00+00:00"})
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, status FROM ingest_batches ORDER BY id")).all()
    assert rows == [("b0", "abandoned"), ("b1", "abandoned"), ("b2", "running"), ("b3", "completed")]
