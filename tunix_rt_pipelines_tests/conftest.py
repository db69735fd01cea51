"""Shared fixtures: a fresh trace store on SQLite and on the real PostgreSQL server.

PostgreSQL tests take the server from ``TUNIX_RT_TEST_POSTGRES_URL`` (CI sets it). Each test
gets its own schema, dropped afterwards. Without the variable they are skipped, saying so; with
it set and the server down they fail, because CI promised a server.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tunix_rt_pipelines.core.db import dispose_engines
from tunix_rt_pipelines.traces.store import TraceStore

PG_ENV = "TUNIX_RT_TEST_POSTGRES_URL"


def _pg_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server for this test (CI sets it)")
    return url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty schema on the test server (search_path set through libpq options)."""
    base = _pg_base_url()
    admin = sa.create_engine(sa.make_url(base).set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'store.db'}"
    dispose_engines()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once per backend."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def store(store_url: str) -> TraceStore:
    return TraceStore(store_url)


def trace_dict(i: int, **overrides) -> dict:
    rec = {
        "id": f"t:{i}",
        "prompt": f"What is {i} + {i}?",
        "steps": [f"{i} + {i} = {2 * i}."],
        "final_answer": str(2 * i),
        "metadata": {"source": "test", "category": "arithmetic", "difficulty": "easy", "tags": ["add"]},
    }
    rec.update(overrides)
    return rec


def write_jsonl(path: Path, records: list[dict | bytes | str], newline: bytes = b"\n") -> Path:
    with path.open("wb") as f:
        for rec in records:
            if isinstance(rec, dict):
                rec = json.dumps(rec, ensure_ascii=False)
            if isinstance(rec, str):
                rec = rec.encode("utf-8")
            f.write(rec + newline)
    return path


@pytest.fixture
def pg_dagster_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh PostgreSQL database for a Dagster instance, exported as the TUNIX_RT_PG_* variables
    that the repository's dagster.yaml (the shared deployment) reads. Yields the database name."""
    base = sa.make_url(_pg_base_url()).set(drivername="postgresql+psycopg2")
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    db = f"dagster_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {db}"))
    for name, value in {
        "TUNIX_RT_PG_HOST": base.host or "127.0.0.1", "TUNIX_RT_PG_PORT": str(base.port or 5432),
        "TUNIX_RT_PG_USER": base.username or "postgres", "TUNIX_RT_PG_PASSWORD": base.password or "",
        "TUNIX_RT_PG_DB": db,
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield db
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        admin.dispose()
