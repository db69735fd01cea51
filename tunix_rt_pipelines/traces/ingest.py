"""Ingest one trace file: read, validate, hash, deduplicate, store; resumable and idempotent.

Plain functions, no Dagster: the ingest asset and the benchmark call ``ingest_file``.

Counting contract, checked after every run: ``read = accepted + duplicate + rejected``,
where ``read`` counts records (blank lines are not records), ``accepted`` are traces
stored for the first time, ``duplicate`` were already stored (by content hash) and
``rejected`` are kept in the rejects table with their reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tunix_rt_pipelines.core.artifacts import file_sha256
from tunix_rt_pipelines.traces.parse import Rejection, parse_record
from tunix_rt_pipelines.traces.reader import RawRecord, iter_records
from tunix_rt_pipelines.traces.schema import MAX_RECORD_BYTES, ReasoningTrace
from tunix_rt_pipelines.traces.store import Batch, RejectRow, TraceStore

DEFAULT_CHUNK = 2_000  # records per transaction: large enough for COPY, small enough to lose little

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
    reasons: Counter = field(default_factory=Counter)  # this attempt's reject reasons

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
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest ``path`` (JSONL, JSON array or reasoning-gym entries) into ``store``.

    An interrupted earlier attempt on the same content is resumed from its last commit,
    so the final counts equal those of an uninterrupted run.
    """
    name = file_name or path.name
    sha = file_sha256(path)
    size = path.stat().st_size
    batch = store.open_batch(name, sha, size, run_id)
    records = iter_records(
        path, max_record_bytes=max_record_bytes, start_offset=batch.byte_offset, start_line=batch.next_line
    )
    return _ingest(store, batch, records, size=size, chunk_size=chunk_size, progress=progress)


def ingest_traces(
    store: TraceStore,
    traces: Iterable[ReasoningTrace],
    *,
    name: str,
    content_sha256: str,
    run_id: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> IngestReport:
    """Store already-built traces (generators) through the same batch and dedupe path."""
    items = list(traces)
    batch = store.open_batch(name, content_sha256, 0, run_id)
    pending = ((i + 1, t) for i, t in enumerate(items) if i + 1 >= batch.next_line)
    return _ingest(store, batch, pending, size=0, chunk_size=chunk_size, progress=None)


def _ingest(
    store: TraceStore,
    batch: Batch,
    records: Iterator[RawRecord] | Iterator[tuple[int, ReasoningTrace]],
    *,
    size: int,
    chunk_size: int,
    progress: Progress | None,
) -> IngestReport:
    resumed = batch.resumed
    reasons: Counter = Counter()
    accepted: list[tuple[int, ReasoningTrace]] = []
    rejected: list[RejectRow] = []
    n_read = 0
    end_offset, next_line = batch.byte_offset, batch.next_line
    # One writer thread that only talks to the database: while it stores chunk k (the driver
    # releases the GIL, and the server works on the other core), this thread parses, hashes and
    # encodes chunk k+1. At most one chunk is in flight and chunks commit in order, so the
    # batch's resume point still only moves forward.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
    pending: Future | None = None

    def settle() -> None:
        """Wait for the chunk in flight; its failure surfaces here, in order."""
        nonlocal pending
        if pending is not None:
            done, pending = pending, None
            result, offset = done.result()
            reasons.update(result.reasons)
            if progress is not None:
                progress(batch, offset)

    def flush() -> None:
        nonlocal n_read, accepted, rejected, pending
        chunk = store.prepare_chunk(batch, accepted, rejected)  # overlaps the chunk in flight
        settle()
        pending = writer.submit(
            lambda c, n, off, nl: (store.write_chunk(batch, c, n_read=n, end_offset=off, next_line=nl), off),
            chunk, n_read, end_offset, next_line,
        )
        accepted, rejected, n_read = [], [], 0

    try:
        for item in records:
            n_read += 1
            if isinstance(item, RawRecord):
                parsed = parse_record(item)
                end_offset, next_line = item.end_offset, item.line + 1
                if isinstance(parsed, Rejection):
                    rejected.append(RejectRow(item.line, parsed, item.data, item.size))
                else:
                    accepted.append((item.line, parsed))
            else:
                line, trace = item
                accepted.append((line, trace))
                next_line = line + 1
            if n_read >= chunk_size:
                flush()
        if n_read:
            flush()
        settle()
    except Exception as e:
        if pending is not None:  # let the chunk in flight finish or fail before recording the failure
            try:
                pending.result()
            except Exception:  # noqa: BLE001  the first error is the one reported
                pass
        store.fail_batch(batch, f"{type(e).__name__}: {e}")
        raise
    finally:
        writer.shutdown(wait=True)
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
