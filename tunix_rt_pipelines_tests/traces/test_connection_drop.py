"""The PostgreSQL connection dropped mid-ingest: a clear error, then a re-run with no duplicate and no loss."""

import threading
import time

import pytest
import sqlalchemy as sa

from tunix_rt_pipelines.core.db import dispose_engines, ingest_batches, traces
from tunix_rt_pipelines.traces.ingest import ingest_file
from tunix_rt_pipelines.traces.store import StoreError, TraceStore
from tunix_rt_pipelines_tests.conftest import trace_dict, write_jsonl


def _kill_ingest_connections_once_progress_is_committed(url: str, stop: threading.Event) -> None:
    """From a separate connection: wait for a committed chunk, then keep terminating the ingest's backends.

    One kill between two chunks is invisible (the pool's pre-ping reconnects), so the killer
    keeps going until the ingest fails: some kill lands inside a chunk's transaction.
    """
    engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg2"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not stop.is_set():
            if conn.execute(sa.select(sa.func.max(ingest_batches.c.n_read))).scalar():
                conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'tunix-rt' AND pid <> pg_backend_pid() AND datname = current_database()"
                ))
            time.sleep(0.002)
    engine.dispose()


def test_connection_dropped_mid_ingest_then_rerun(pg_url, tmp_path):
    n = 20_000
    path = write_jsonl(tmp_path / "big.jsonl", [trace_dict(i) for i in range(n)] + ["{bad"])
    store = TraceStore(pg_url)
    stop = threading.Event()
    killer = threading.Thread(target=_kill_ingest_connections_once_progress_is_committed, args=(pg_url, stop))
    killer.start()
    try:
        with pytest.raises(StoreError) as err:
            ingest_file(store, path, chunk_size=500)
    finally:
        stop.set()
        killer.join()
    assert "re-run to resume" in str(err.value) and "big.jsonl" in str(err.value)

    dispose_engines()  # a new process would start with a fresh pool too
    store = TraceStore(pg_url)
    with store.engine.connect() as c:
        partial = c.execute(sa.select(sa.func.count()).select_from(traces)).scalar()
    assert 0 < partial < n
    report = ingest_file(store, path, chunk_size=500)
    assert report.resumed
    assert (report.read, report.accepted, report.duplicate, report.rejected) == (n + 1, n, 0, 1)
    with store.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(traces)).scalar() == n
        assert c.execute(sa.select(sa.func.count(sa.distinct(traces.c.trace_id)))).scalar() == n
