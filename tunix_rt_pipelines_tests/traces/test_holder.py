"""Concurrent ingests of one file take turns; a dead holder's batch is taken over; commits are fenced."""

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tunix_rt_pipelines.core.db import ingest_batches
from tunix_rt_pipelines.core.artifacts import file_sha256
from tunix_rt_pipelines.traces.holder import (
    LEASE, LEGACY_LEASE, _start_ticks, holder_alive, new_holder, release, this_process,
)
from tunix_rt_pipelines.traces.ingest import ingest_file
from tunix_rt_pipelines.traces.rows import utcnow
from tunix_rt_pipelines.traces.store import StoreError
from tunix_rt_pipelines_tests.conftest import trace_dict, write_jsonl

HOST = socket.gethostname()


def open_row(store, path, holder, **values):
    """An open batch of ``path`` as another process left it."""
    now = utcnow()
    with store.engine.begin() as c:
        c.execute(ingest_batches.insert().values(
            id="left", file_name=path.name, file_sha256=file_sha256(path), file_bytes=path.stat().st_size,
            status="running", holder=holder, started_at=now, updated_at=now, **values))


def never_wait(row):
    raise AssertionError(f"waited for {row['holder']}")


def test_two_ingests_of_one_file_at_once_take_turns(store, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [trace_dict(i) for i in range(300)])
    first_chunk_done, second_waits = threading.Event(), threading.Event()
    reports = {}

    def first():
        def pause_after_first_chunk(batch, offset):
            first_chunk_done.set()
            second_waits.wait(timeout=10)
        reports["first"] = ingest_file(store, path, chunk_size=50, progress=pause_after_first_chunk)

    t = threading.Thread(target=first)
    t.start()
    first_chunk_done.wait(timeout=10)
    reports["second"] = ingest_file(store, path, chunk_size=50, on_wait=lambda row: second_waits.set())
    t.join()
    counts = {k: (r.read, r.accepted, r.duplicate, r.rejected) for k, r in reports.items()}
    assert counts == {"first": (300, 300, 0, 0), "second": (300, 0, 300, 0)}
    assert reports["first"].batch_id != reports["second"].batch_id


def test_a_batch_held_by_a_dead_process_is_resumed_at_once(store, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [trace_dict(i) for i in range(10)])
    open_row(store, path, holder=f"{HOST}:999999999:1")
    r = ingest_file(store, path, on_wait=never_wait)
    assert (r.batch_id, r.resumed, r.accepted) == ("left", True, 10)


def test_a_batch_this_process_left_running_is_resumed_at_once(store, tmp_path):
    """A failure that could not mark the batch failed (the database was down) must not block a re-run here."""
    path = write_jsonl(tmp_path / "a.jsonl", [trace_dict(i) for i in range(10)])
    open_row(store, path, holder=f"{this_process()}:0123456789ab")
    assert ingest_file(store, path, on_wait=never_wait).batch_id == "left"


def test_an_ingest_whose_batch_was_taken_over_cannot_commit(store, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [trace_dict(i) for i in range(100)])

    def taken_over_after_first_chunk(batch, offset):
        with store.engine.begin() as c:
            c.execute(ingest_batches.update().where(ingest_batches.c.id == batch.id).values(holder="elsewhere:1:1"))

    with pytest.raises(StoreError, match="taken over by another process"):
        ingest_file(store, path, chunk_size=20, progress=taken_over_after_first_chunk)
    with store.engine.connect() as c:
        row = c.execute(sa.select(ingest_batches)).mappings().one()
    assert (row["status"], row["holder"], row["n_read"], store.stats()["traces"]) == ("running", "elsewhere:1:1", 20, 20)


def test_a_holder_is_alive_while_its_process_is():
    now = utcnow()
    parent = os.getppid()
    start = open(f"/proc/{parent}/stat", "rb").read().rsplit(b")", 1)[1].split()[19].decode()
    assert holder_alive(f"{HOST}:{parent}:{start}", now, now)
    assert not holder_alive(f"{HOST}:{parent}:{int(start) + 1}", now, now)  # a reused pid
    assert not holder_alive(f"{HOST}:999999999:1", now, now)


def test_a_holder_on_another_host_is_alive_until_its_lease_runs_out():
    now = utcnow()
    assert holder_alive("elsewhere:1:1", now - LEASE + timedelta(seconds=5), now)
    assert not holder_alive("elsewhere:1:1", now - LEASE - timedelta(seconds=5), now)


def test_a_live_process_that_has_not_committed_for_the_lease_is_dead():
    now = utcnow()
    assert not holder_alive(f"{HOST}:{os.getppid()}:", now - LEASE - timedelta(seconds=5), now)


def test_a_batch_left_running_by_code_before_holders_is_taken_over_after_a_minute():
    now = utcnow()
    assert holder_alive(None, now - timedelta(seconds=5), now)
    assert not holder_alive(None, now - LEGACY_LEASE - timedelta(seconds=5), now)


def test_an_exited_holder_not_yet_reaped_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    start = _start_ticks(child.pid)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    now = utcnow()
    try:
        assert not holder_alive(f"{HOST}:{child.pid}:{start}", now, now)
        assert not holder_alive(f"{HOST}:{child.pid}:", now, now)
    finally:
        child.wait()


def test_each_hold_in_this_process_is_its_own_holder_until_released():
    """Two threads of one process are two holders, so the fencing tells them apart."""
    now = utcnow()
    first, second = new_holder(), new_holder()
    release(first)
    assert first != second
    assert (holder_alive(first, now, now), holder_alive(second, now, now)) == (False, True)
    release(second)


def test_a_hold_of_another_live_process_on_this_host_is_alive():
    now = utcnow()
    parent = os.getppid()
    assert holder_alive(f"{HOST}:{parent}:{_start_ticks(parent)}:0123456789ab", now, now)
