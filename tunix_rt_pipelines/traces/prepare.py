"""Make one chunk of records ready to store: parse, validate, hash, dedupe within the chunk, encode.

No database access and plain data out (strings, bytes, tuples), so ingestion can run these in
worker processes while the database stores the chunk before (see :mod:`.ingest`). Everything a
chunk needs to be written and committed travels with it, including its resume point.
"""

from __future__ import annotations

import gc
import os
import select
import threading
import time
from array import array
from collections.abc import Iterable, Sequence

from tunix_rt_pipelines.traces.holder import pid_alive
from tunix_rt_pipelines.traces.parse import Rejection, parse_bytes, parse_record
from tunix_rt_pipelines.traces.reader import LineRange, RawRecord
from tunix_rt_pipelines.traces.schema import ReasoningTrace
from tunix_rt_pipelines.traces.rows import (
    PreparedChunk,
    RejectRow,
    hash_and_copy_line,
    sqlite_row,
    sqlite_timestamp,
    utcnow,
)


def prepare_lines(lines: LineRange, *, dialect: str, batch_id: str) -> PreparedChunk:
    """A range of JSON Lines, read here (in a worker process; the ingesting process counts lines, and reads only
    the first chunk itself, see :mod:`.ingest`)."""
    plain = lines.plain_lines()
    if plain is None:  # something for the reader's rules to remove or reject
        parsed = ((r.line, r.data, r.size, parse_record(r)) for r in lines.records())
    else:  # line first_line + i is record i
        first = lines.first_line
        parsed = ((first + i, data, len(data), parse_bytes(data)) for i, data in enumerate(plain))
    return _prepare(parsed, dialect=dialect, batch_id=batch_id, end_offset=lines.end_offset, next_line=lines.end_line)


def prepare_records(records: Sequence[RawRecord], *, dialect: str, batch_id: str) -> PreparedChunk:
    """A chunk of raw records (non-empty, in file order) as ``TraceStore.write_chunk`` takes it."""
    last = records[-1]
    return _prepare(((r.line, r.data, r.size, parse_record(r)) for r in records), dialect=dialect,
                    batch_id=batch_id, end_offset=last.end_offset, next_line=last.line + 1)


def prepare_traces(
    items: Sequence[tuple[int, ReasoningTrace]], *, dialect: str, batch_id: str, end_offset: int
) -> PreparedChunk:
    """A chunk of already-built traces (generators), numbered as lines, as ``write_chunk`` takes it."""
    return _prepare(((line, b"", 0, trace) for line, trace in items), dialect=dialect, batch_id=batch_id,
                    end_offset=end_offset, next_line=items[-1][0] + 1)


def _prepare(
    parsed: Iterable[tuple[int, bytes, int, ReasoningTrace | Rejection]],  # (line, raw bytes, size, parse result)
    *,
    dialect: str,
    batch_id: str,
    end_offset: int,
    next_line: int,
) -> PreparedChunk:
    """One pass over a chunk's records, each parsed only when the loop reaches it (``parsed`` is lazy).

    A trace is hashed and encoded right after it is validated, while it is still in the CPU's
    cache, and then dropped: validating the whole chunk first and encoding it in a second pass
    held 2,000 traces (a few MB) and read each back from memory. One pass prepared a chunk 9%
    faster in one process, and cut a worker's CPU per trace from 23 to 18.5 µs in an ingest
    (where the database's process shares the CPUs' caches).
    """
    now = utcnow()
    if dialect == "postgresql":
        created = now.isoformat()

        def hash_and_row(trace: ReasoningTrace) -> tuple[str, bytes]:
            h, line = hash_and_copy_line(trace, batch_id, created)  # the hash comes with the row
            # Encoded one by one, while in cache: a chunk's lines joined first made one string of
            # 2 bytes a character (any text beyond Latin-1 widens all of it) to encode at the end.
            return h, line.encode()
    else:
        stamp = sqlite_timestamp(now)

        def hash_and_row(trace: ReasoningTrace) -> tuple[str, tuple]:
            h = trace.content_hash
            return h, sqlite_row(h, trace, batch_id, stamp)

    # Within the chunk, the first record with a hash is the candidate; later ones are duplicates.
    seen: set[str] = set()
    hashes: list[str] = []  # the candidates', in row order
    positions: list[int] = []
    line_numbers: list[int] = []
    ids: list[str] = []
    rejected: list[RejectRow] = []
    rows: list = []
    chunk_dups = n_read = 0
    for position, (line, data, size, result) in enumerate(parsed):
        n_read += 1
        if isinstance(result, Rejection):
            rejected.append(RejectRow(line, result, data, size))
            continue
        h, row = hash_and_row(result)
        if h in seen:
            chunk_dups += 1
        else:
            seen.add(h)
            hashes.append(h)
            rows.append(row)
            positions.append(position)
            line_numbers.append(line)
            ids.append(result.id)
    chunk = PreparedChunk(
        "".join(hashes),
        array("q", positions), array("q", line_numbers), "\n".join(ids),
        chunk_dups, rejected, now, n_read, end_offset, next_line,
    )
    if dialect == "postgresql":
        chunk.copy_payload = b"".join(rows)
    else:
        chunk.rows = rows
    return chunk


def init_worker(ingest_pid: int) -> None:
    """A worker process's initializer: a quiet garbage collector, and an exit when the ingest dies."""
    quiet_gc()
    threading.Thread(target=_exit_with, args=(ingest_pid,), name="exit-with-ingest", daemon=True).start()


def quiet_gc() -> None:
    """Keep the cyclic garbage collector off a worker process's hot path.

    Frozen, the imported modules are never walked again; at 50,000 allocations a young
    collection runs about once per chunk. This paid most when a chunk held its thousands of
    validated traces until it was encoded (the collector took a third of a worker's CPU); since
    a chunk is prepared in one pass, each trace dropped once encoded, it measured the same as
    the default thresholds in one process (16 µs a trace either way). Traces hold no reference
    cycles, so nothing waits longer to be freed.
    """
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


def _exit_with(pid: int) -> None:
    """Exit once process ``pid`` has. A killed ingest (SIGKILL, OOM) cannot shut its pool down, and
    its workers, blocked reading their task queue, would live on, holding the fork server alive too."""
    try:
        fd = os.pidfd_open(pid)  # readable once the process has exited (Linux 5.3+)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])
    else:
        while pid_alive(pid):
            time.sleep(1.0)
    os._exit(1)

