"""Ingest one trace file: read, validate, hash, deduplicate, store; resumable and idempotent.

Plain functions, no Dagster: the ingest asset and the benchmark call ``ingest_file``.

Counting contract, checked after every run: ``read = accepted + duplicate + rejected``,
where ``read`` counts records (blank lines are not records), ``accepted`` are traces
stored for the first time, ``duplicate`` were already stored (by content hash) and
``rejected`` are kept in the rejects table with their reason.

One pipeline: this thread cuts the file into chunks and hands them to an executor that prepares
them (:mod:`.prepare`: read, parse, validate, hash, encode), then writes the prepared chunks to
the database in file order, one transaction each. A JSON Lines chunk is a range of lines, found
by counting newlines, that the executor reads itself; a JSON array's chunk is its records, read
here. While the database stores chunk k, the executor prepares the chunks after it. A large file
is prepared in worker processes (``default_workers``), its first chunk in this thread while they
start; anything smaller is prepared in one thread, which still overlaps the database (the
driver releases the GIL while it waits).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path

from tunix_rt_pipelines.core.artifacts import file_sha256
from tunix_rt_pipelines.core.cpus import usable_cpus
from tunix_rt_pipelines.traces.prepare import init_worker, prepare_lines, prepare_records, prepare_traces
from tunix_rt_pipelines.traces.reader import detect_layout, iter_line_ranges, iter_records
from tunix_rt_pipelines.traces.schema import MAX_RECORD_BYTES, ReasoningTrace
from tunix_rt_pipelines.traces.rows import PreparedChunk
from tunix_rt_pipelines.traces.store import Batch, TraceStore

# Lines (JSON Lines) or records (JSON array) per transaction: large enough for COPY, small enough
# to lose little. 1,000, 5,000 and 10,000 were no faster.
DEFAULT_CHUNK = 2_000
# Files from this size on are prepared in worker processes (``workers=None``). Below it, starting
# them (a fork server that imports the schema: 0.1 s here, once per process) costs about what it
# saves: on 2 CPUs, 8.6 MB (20k traces) took 0.40 s either way, 4.3 MB 0.20 s in a thread and
# 0.27 s in processes, 17 MB 0.79 s and 0.72 s.
PROCESS_MIN_BYTES = 8 << 20

Progress = Callable[[Batch, int], None]  # (batch so far, bytes read) -> None


@dataclass
class IngestReport:
    batch_id: str
    file_name: str
    file_sha256: str
    file_bytes: int
    read: int
    accepted: int
    duplicate: int
    rejected: int
    resumed: bool
    reasons: Counter = field(default_factory=Counter)  # this attempt's reject reasons (the batch's: store.reject_reasons)

    @property
    def adds_up(self) -> bool:
        return self.read == self.accepted + self.duplicate + self.rejected

    def as_dict(self) -> dict:
        return {
            "batch_id": self.batch_id,
            "file": self.file_name,
            "sha256": self.file_sha256,
            "bytes": self.file_bytes,
            "read": self.read,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "resumed": self.resumed,
        }


def ingest_file(
    store: TraceStore,
    path: Path,
    *,
    file_name: str | None = None,
    run_id: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    max_record_bytes: int = MAX_RECORD_BYTES,
    workers: int | None = None,
    progress: Progress | None = None,
    on_wait: Callable[[dict], None] | None = None,
) -> IngestReport:
    """Ingest ``path`` (JSONL, JSON array or reasoning-gym entries) into ``store``.

    An interrupted earlier attempt on the same content is resumed from its last commit,
    so the final counts equal those of an uninterrupted run. ``workers``: processes that
    prepare chunks; 0 prepares them in a thread of this process; ``None`` picks
    ``default_workers()`` for a file of ``PROCESS_MIN_BYTES`` or more, else 0. The stored result
    is the same.
    With processes, a calling script needs the ``if __name__ == "__main__":`` guard: each
    worker imports the main module, as Python's multiprocessing does outside ``fork``.
    While another process ingests the same content, this waits for it (``on_wait`` is called
    once with its batch row) and then counts every record as a duplicate.
    """
    _check_chunk_size(chunk_size)
    if workers is not None and workers < 0:  # before a batch is opened, as for chunk_size
        raise ValueError(f"workers must be 0 (a thread) or more (processes), not {workers}")
    name = file_name or path.name
    size = path.stat().st_size
    if (workers is None and size >= PROCESS_MIN_BYTES) or (workers or 0) > 0:
        _start_fork_server()  # its imports (0.1 s) overlap hashing the file and opening the batch
    sha = file_sha256(path)
    layout = detect_layout(path)
    batch = store.open_batch(name, sha, size, run_id, on_wait=on_wait)
    # From here on every failure ends in ``_ingest``'s handler, which lets go of the batch.
    if workers is None:  # what is left to read: a resumed batch may be nearly done
        workers = default_workers() if size - batch.byte_offset >= PROCESS_MIN_BYTES else 0
    start = {"max_record_bytes": max_record_bytes, "start_offset": batch.byte_offset, "start_line": batch.next_line}
    if layout == "jsonl":
        chunks = iter_line_ranges(path, lines=chunk_size, **start)
        prepare = partial(prepare_lines, dialect=store.dialect, batch_id=batch.id)
    else:
        chunks = _chunks(iter_records(path, **start), chunk_size)
        prepare = partial(prepare_records, dialect=store.dialect, batch_id=batch.id)
    return _ingest(store, batch, chunks, prepare, workers=workers, size=size, progress=progress)


def ingest_traces(
    store: TraceStore,
    traces: Iterable[ReasoningTrace],
    *,
    name: str,
    content_sha256: str,
    run_id: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> IngestReport:
    """Store already-built traces (generators) through the same batch and dedupe path, prepared in a thread."""
    _check_chunk_size(chunk_size)
    items = list(traces)
    batch = store.open_batch(name, content_sha256, 0, run_id)
    pending = ((i + 1, t) for i, t in enumerate(items) if i + 1 >= batch.next_line)
    prepare = partial(prepare_traces, dialect=store.dialect, batch_id=batch.id, end_offset=batch.byte_offset)
    return _ingest(store, batch, _chunks(pending, chunk_size), prepare, workers=0, size=0, progress=None)


def _check_chunk_size(chunk_size: int) -> None:
    if chunk_size < 1:  # before a batch is opened: nothing to resume from a refused call
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _start_fork_server() -> multiprocessing.context.BaseContext:
    """The context whose fork server makes the worker processes; the server is started if it is not running.

    A fork server, not a fork of this process: ingestion runs inside Dagster's run process, whose
    other threads may hold locks at the moment of a fork. The server imports the preparing code
    once and lives as long as this process; each worker is forked from it. Python 3.11's server
    does not take the parent's sys.path: it imports from the current directory first, then
    PYTHONPATH and site.
    """
    context = multiprocessing.get_context("forkserver")
    # Everything a worker is sent (the initializer, the preparing functions) lives in that module:
    # a function from another module would make every worker import it (``ingest`` pulls in
    # SQLAlchemy and Alembic: 0.2 s more before the first chunk, and 0.18 s more to exit).
    context.set_forkserver_preload(["tunix_rt_pipelines.traces.prepare"])
    multiprocessing.forkserver.ensure_running()  # returns at once; the server imports on its own
    return context


def default_workers() -> int:
    """Worker processes for a large file: one per usable CPU but one, at least one.

    The CPU left over is for this process, which writes every chunk (and, on SQLite, is the
    database), and for a PostgreSQL server on the same machine. On 2 CPUs one worker ingested
    200k traces 5% faster into a local PostgreSQL than two, with 2 µs less CPU per trace
    (three busy processes on two CPUs slowed one another), and as fast into SQLite with 40 MB
    less memory. A thread of this process would take the GIL from the writing.
    """
    return max(1, usable_cpus() - 1)


def _executor(workers: int) -> Executor:
    if workers == 0:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-prepare")
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=_start_fork_server(), initializer=init_worker, initargs=(os.getpid(),)
    )


def _prepared_here(prepare: Callable[[object], PreparedChunk], items: object) -> Future:
    """``prepare(items)`` in this thread, as a finished future: a failure surfaces when it is written, as a worker's would."""
    future: Future = Future()
    try:
        future.set_result(prepare(items))
    except Exception as e:  # noqa: BLE001  re-raised by future.result(), in file order
        future.set_exception(e)
    return future


def _ingest(
    store: TraceStore,
    batch: Batch,
    chunks: Iterator,  # line ranges, or lists of records or of (line, trace)
    prepare: Callable[[object], PreparedChunk],
    *,
    workers: int,
    size: int,
    progress: Progress | None,
) -> IngestReport:
    resumed = batch.resumed
    reasons: Counter = Counter()
    # Chunks are written in submission order, so the batch's resume point only moves forward.
    # Up to four chunks per worker are prepared ahead of the one being written: a worker that
    # finishes early starts on its next chunk instead of waiting for this thread's commit, and
    # memory holds a bounded number of chunks (about 1 MB each) whatever the file's size. One
    # worker ingested 200k traces 3% faster four chunks ahead than two; six were no faster.
    executor: Executor | None = None
    in_flight: deque[tuple[Future, object]] = deque()

    def write_next() -> None:
        future, source = in_flight.popleft()
        chunk = future.result()  # a failure in preparing surfaces here, in order
        chunk.source = source
        result = store.write_chunk(batch, chunk)
        reasons.update(result.reasons)
        if progress is not None:
            progress(batch, chunk.end_offset)

    try:
        chunks = iter(chunks)
        if workers > 0:
            # The first chunk is prepared here, while the fork server still imports (0.1 s): the
            # database starts on it that much sooner. The first submit starts the workers and
            # blocks until the server is ready, so it comes after this chunk.
            for items in islice(chunks, 1):
                in_flight.append((_prepared_here(prepare, items), items))
        executor = _executor(workers)
        for items in chunks:
            in_flight.append((executor.submit(prepare, items), items))
            if len(in_flight) > 4 * max(workers, 1):
                write_next()
        while in_flight:
            write_next()
    except BaseException as e:  # Ctrl-C too: a later ingest in this process must not wait for this one
        store.fail_batch(batch, f"{type(e).__name__}: {e}")
        raise
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    store.finish_batch(batch)
    return IngestReport(
        batch_id=batch.id,
        file_name=batch.file_name,
        file_sha256=batch.file_sha256,
        file_bytes=size,
        read=batch.n_read,
        accepted=batch.n_accepted,
        duplicate=batch.n_duplicate,
        rejected=batch.n_rejected,
        resumed=resumed,
        reasons=reasons,
    )
