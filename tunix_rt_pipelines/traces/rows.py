"""A trace as a stored row, and the prepared chunk that carries a chunk's rows to the store.

PostgreSQL rows are COPY text, SQLite rows are value tuples, both exactly as SQLAlchemy would
store the trace (reads go through SQLAlchemy). Nothing here touches a database or imports
SQLAlchemy at import time: the worker processes that prepare chunks (:mod:`.prepare`) import this
module, and a fork server that imported SQLAlchemy took 0.2 s longer to start its first worker.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from tunix_rt_pipelines.traces.parse import Rejection
from tunix_rt_pipelines.traces.reader import LineRange, RawRecord
from tunix_rt_pipelines.traces.schema import ReasoningTrace, json_quote, json_string_list


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RejectRow:
    line: int
    rejection: Rejection
    raw: bytes
    raw_bytes: int


@dataclass
class PreparedChunk:
    """One chunk ready for ``write_chunk``: everything but the database work is done (see :mod:`.prepare`)."""

    # The chunk's candidates (the first record of each content hash in it), in row order, packed:
    # a worker pickles the chunk and the ingesting process unpickles it, and a dict of 2,000
    # hashes and tuples cost each of them 0.3 µs a record. A chunk COPYed straight into PostgreSQL
    # unpacks nothing; otherwise (SQLite, a re-ingest) ``hashes()`` is unpacked, and
    # ``candidates()`` only when some candidate was not inserted.
    candidate_hashes: str  # the content hashes, 64 hex digits each, concatenated
    candidate_positions: array  # ('q') each one's position in the chunk
    candidate_lines: array  # ('q') each one's line
    candidate_ids: str  # the trace ids, joined by newlines (an id holds none)
    chunk_duplicates: int  # later records of a hash already in this chunk
    rejected: list[RejectRow]
    created_at: datetime
    n_read: int  # records in the chunk: candidates + chunk duplicates + rejected
    end_offset: int  # the batch's resume point once this chunk is committed: byte offset ...
    next_line: int  # ... and line number just past the chunk's last record
    rows: list[tuple] | None = None  # SQLite: one insert row per candidate, values as stored, in candidates' order
    # PostgreSQL: the COPY text rows of the candidates, in candidates' order, as UTF-8 bytes: one
    # object to send back from a worker and on to the server, neither joined nor encoded here.
    copy_payload: bytes | None = None
    # What the chunk was prepared from (a range of lines, raw records, or (line, trace) pairs), set
    # by the ingesting process when the chunk comes back; never sent to or from a worker.
    source: LineRange | list | None = None

    @property
    def n_candidates(self) -> int:
        return len(self.candidate_hashes) // 64

    def hashes(self) -> list[str]:
        """The candidates' content hashes, in row order."""
        packed = self.candidate_hashes
        return [packed[i:i + 64] for i in range(0, len(packed), 64)]

    def candidates(self) -> dict[str, tuple[int, int, str]]:
        """Content hash -> (position in the chunk, line, trace id) of each candidate, in row order."""
        if not self.candidate_hashes:
            return {}
        ids = self.candidate_ids.split("\n")
        return dict(zip(self.hashes(), zip(self.candidate_positions, self.candidate_lines, ids, strict=True),
                        strict=True))

    def raw_record(self, position: int) -> bytes:
        """The raw form of the chunk's record at ``position`` (only an id conflict needs it): a read
        record's bytes, or a built trace's JSON. By position, not line: the records of a JSON array
        written on one line share their line number."""
        if isinstance(self.source, LineRange):  # read again, once: only the preparing process read it
            self.source = self.source.records()
        item = self.source[position]
        return item.data if isinstance(item, RawRecord) else item[1].model_dump_json().encode()


# -- SQLite rows ----------------------------------------------------------------------------

@cache
def _sqlite_processors() -> tuple[Callable, Callable]:
    """How SQLAlchemy stores a timestamp and a JSON value on SQLite; rows written by hand must match
    the rows SQLAlchemy writes, because reads and range filters go through SQLAlchemy. Imported on
    first use: a worker that prepares PostgreSQL rows never loads SQLAlchemy."""
    from sqlalchemy.dialects import sqlite

    from tunix_rt_pipelines.core.db import traces

    dialect = sqlite.dialect()
    return tuple(traces.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in ("created_at", "extra"))


def sqlite_timestamp(now: datetime) -> str:
    """``now`` as SQLAlchemy stores a timestamp on SQLite."""
    return _sqlite_processors()[0](now)


_quote_ascii = json.encoder.c_encode_basestring_ascii or json.encoder.py_encode_basestring_ascii


def _sqlite_json_list(items: list[str]) -> str:
    """What SQLAlchemy's JSON type writes on SQLite (``json.dumps`` defaults) for a list of strings."""
    return f"[{', '.join(map(_quote_ascii, items))}]"


def _n_chars(t: ReasoningTrace) -> int:
    """The ``n_chars`` column: characters of prompt, steps and answer."""
    return len(t.prompt) + sum(map(len, t.steps)) + len(t.final_answer)


def sqlite_row(h: str, t: ReasoningTrace, batch_id: str, stamp: str) -> tuple:
    """One trace as the values SQLAlchemy would store on SQLite, columns in table order."""
    m = t.metadata
    return (h, t.id, t.schema_version, t.prompt, _sqlite_json_list(t.steps), t.final_answer, m.source, m.category,
            m.difficulty, _sqlite_json_list(m.tags), _sqlite_processors()[1](m.extra), len(t.steps), _n_chars(t), batch_id,
            stamp)


# -- PostgreSQL COPY rows -------------------------------------------------------------------

def _esc(text: str) -> str:
    """COPY text-format escaping; most fields need none, and ``in`` checks are far cheaper than translate."""
    if "\\" in text or "\n" in text or "\t" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return text


# A bound encoder skips json.dumps' per-call argument handling; only a non-empty ``extra`` uses it.
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_copy_line(h: str, t: ReasoningTrace, batch_id: str, created_iso: str) -> str:
    """One trace as a COPY text-format line, columns in table order (``traces`` in :mod:`tunix_rt_pipelines.core.db`).

    One f-string straight from the trace, lists of strings quoted by ``json_string_list``:
    encoding was the largest client-side cost of ingestion.
    """
    return _copy_line(h, t, _esc(t.prompt), _esc(json_string_list(t.steps)), _esc(t.final_answer), _n_chars(t),
                      batch_id, created_iso)


def _copy_line(h: str, t: ReasoningTrace, prompt: str, steps_json: str, answer: str, n_chars: int, batch_id: str,
               created_iso: str) -> str:
    """The COPY line of ``t`` whose prompt, steps (as JSON) and answer are given, already escaped.

    The id needs no escaping (``ID_PATTERN`` admits no character that COPY escapes); the labels
    and tags are checked together, and rarely need it.
    """
    m = t.metadata
    source, category, tags = m.source, m.category, json_string_list(m.tags)
    labels = source + category + tags
    if "\\" in labels or "\n" in labels or "\t" in labels or "\r" in labels:
        source, category, tags = _esc(source), _esc(category), _esc(tags)
    return (
        f"{h}\t{t.id}\t{t.schema_version}\t{prompt}\t{steps_json}\t{answer}\t{source}\t{category}\t{m.difficulty}\t"
        f"{tags}\t{_esc(_json(m.extra)) if m.extra else '{}'}\t{len(t.steps)}\t{n_chars}\t{batch_id}\t{created_iso}\n"
    )


def hash_and_copy_line(t: ReasoningTrace, batch_id: str, created_iso: str) -> tuple[str, str]:
    """``(t.content_hash, encode_copy_line(t.content_hash, t, ...))``, sharing their work.

    Both quote the texts as JSON: the hash over ``[prompt, [steps...], final_answer]`` with
    whitespace runs collapsed, the row for its ``steps`` column. When no text has whitespace to
    collapse and none holds a character that JSON or COPY escapes, the hashed JSON is built
    once, straight from the texts, and the texts go into the row as they are. The JSON says so
    itself, with five scans and no call per text: no backslash means no text holds a quote, a
    backslash or a control character (JSON escapes each with one); then every quote delimits a
    text, so a space beside one is a text's first or last character; every other ASCII
    whitespace character is a control character, and ``isprintable`` rules out the others
    (``isascii`` answers at once; ``isprintable`` reads every character). Otherwise both are
    built by their definitions. A test checks the pair against them for every whitespace and
    escaped character.
    """
    prompt, steps, answer = t.prompt, t.steps, t.final_answer
    steps_json = f"[{','.join(map(json_quote, steps))}]"
    canonical = f"[{json_quote(prompt)},{steps_json},{json_quote(answer)}]"
    if ("\\" in canonical or "  " in canonical or '" ' in canonical or ' "' in canonical
            or not (canonical.isascii() or canonical.isprintable())):
        h = t.content_hash
        return h, encode_copy_line(h, t, batch_id, created_iso)
    h = hashlib.sha256(canonical.encode()).hexdigest()
    # With nothing escaped, the JSON adds 9 characters and 3 per step (quotes, commas, brackets)
    # to the texts' own: their count (``n_chars``) without a length per text.
    n_chars = len(canonical) - 3 * len(steps) - 9
    return h, _copy_line(h, t, prompt, steps_json, answer, n_chars, batch_id, created_iso)
