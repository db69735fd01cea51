"""Alembic environment: runs against the connection handed over by ``core.migrate``."""

from alembic import context

from tunix_rt_pipelines.core.db import metadata
from tunix_rt_pipelines.core.migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,  # not alembic_version: Dagster's own storage may share the database
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch ALTERs
)
with context.begin_transaction():
    context.run_migrations()
