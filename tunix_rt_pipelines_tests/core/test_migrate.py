from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tunix_rt_pipelines.core.db import make_engine, metadata
from tunix_rt_pipelines.core.migrate import current_revision, head_revision, migrate


def test_migrations_build_exactly_the_declared_tables(store_url):
    engine = make_engine(store_url)
    migrate(engine)
    migrate(engine)  # idempotent
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
