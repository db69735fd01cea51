"""Stream raw records out of a trace file without trusting it.

Two layouts are read: JSON Lines (one record per line) and a top-level JSON array. The
layout is chosen by the first non-blank byte after an optional UTF-8 BOM (``[`` means an
array). Both are streamed with bounded memory: a record larger than ``max_record_bytes``
is skipped while it is read (only its first ``keep_bytes`` are kept for the reject row), so
a 50 MB line never sits in memory, not even once.

What the reader settles itself, before any JSON parsing:

* ``too_large``: the record exceeds the size limit;
* ``truncated``: the file ends inside a record (no final newline and the text does not
  parse, or an array that is never closed: a cut between two elements is one empty record);
* ``after_array``: a line after the closing bracket of the file's array.

Blank lines are not records and are not counted. CRLF line ends are accepted.
Every record carries its 1-based starting line and the byte offset just past it, which is
the resume point that ingestion commits.

A JSON Lines file can also be cut into ``LineRange``s (``iter_line_ranges``) by counting
newlines alone: the process that prepares a range reads its records itself, with the same
rules, so the ingesting process never builds or sends a record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

BOM = b"\xef\xbb\xbf"
KEEP_BYTES = 64 * 1024  # how much of a rejected record is stored verbatim
_READ_CHUNK = 1 << 20
_BULK_BYTES = 8 << 20  # a line range up to this size may be read at once (``LineRange.plain_lines``)
_ASCII_SPACE = frozenset(b" \t\n\r\x0b\x0c")


class RawRecord(NamedTuple):
    """One record as read. A named tuple: chunks of them are sent to the processes that prepare
    them, and a named tuple pickles in half the time of a slotted dataclass and unpickles in a
    fifth."""

    line: int  # 1-based line where the record starts
    end_offset: int  # byte offset just past the record: where a resumed read starts
    data: bytes  # the record's bytes, line end removed (only a prefix when too large)
    size: int  # the record's full size in bytes
    problem: str | None = None  # "too_large" | "truncated" when the reader rejects it
    detail: str = ""  # human-readable explanation of the problem


class LineRange(NamedTuple):
    """Whole lines of a JSON Lines file, bytes ``[start_offset, end_offset)``."""

    path: str
    start_offset: int
    end_offset: int
    first_line: int  # line number at start_offset
    end_line: int  # line number just past the range: the resume line once it is committed
    max_record_bytes: int

    def records(self) -> list[RawRecord]:
        """The range's records, read as ``iter_records`` reads them."""
        return list(
            _iter_jsonl(Path(self.path), self.max_record_bytes, self.start_offset, self.first_line, self.end_offset)
        )

    def plain_lines(self) -> list[bytes] | None:
        """The bytes of the range's records when every line is one, as it is in most files: line
        ``first_line + i`` is record ``i``, and ``records()`` would find nothing to remove or reject.

        That is a range of at most ``_BULK_BYTES`` whose lines each end with a newline, none over
        the record limit, none blank, with no carriage return and no BOM. Otherwise None: read
        ``records()``, which applies every rule line by line. A worker reads its chunk here, in
        one read: the rules, line by line, were a tenth of preparing a chunk.
        """
        size = self.end_offset - self.start_offset
        if size > _BULK_BYTES:
            return None
        with open(self.path, "rb") as f:
            f.seek(self.start_offset)
            buf = f.read(size)
        if len(buf) != size or not buf.endswith(b"\n") or b"\r" in buf or (self.first_line == 1 and buf.startswith(BOM)):
            return None
        lines = buf.split(b"\n")
        lines.pop()  # the empty piece after the last newline
        # A blank line (whitespace only, as bytes.strip sees it) is empty or starts with whitespace.
        if max(map(len, lines)) > self.max_record_bytes or any(not ln or ln[0] in _ASCII_SPACE for ln in lines):
            return None
        return lines


def detect_layout(path: Path) -> str:
    """'jsonl' or 'json_array', from the first non-blank byte (BOM skipped)."""
    with path.open("rb") as f:
        head = f.read(4096)
    head = head.removeprefix(BOM).lstrip()
    return "json_array" if head.startswith(b"[") else "jsonl"


def iter_records(
    path: Path,
    *,
    max_record_bytes: int,
    start_offset: int = 0,
    start_line: int = 1,
) -> Iterator[RawRecord]:
    """All records of ``path`` from ``start_offset`` on (a committed resume point)."""
    if detect_layout(path) == "json_array":
        for record in _iter_array(path, max_record_bytes):
            if record.end_offset > start_offset:
                yield record
    else:
        yield from _iter_jsonl(path, max_record_bytes, start_offset, start_line)


def iter_line_ranges(
    path: Path, *, lines: int, max_record_bytes: int, start_offset: int = 0, start_line: int = 1
) -> Iterator[LineRange]:
    """A JSON Lines file from ``start_offset`` on, as ranges of ``lines`` lines (the last may be shorter).

    Only newlines are counted, in reads of 1 MiB: a line of any length costs no more memory than
    that. Blank lines count as lines (a range may hold fewer records than lines, or none); a last
    line without a newline is a line.
    """
    name = str(path.absolute())  # a worker process reads it, whatever its current directory
    with path.open("rb") as f:
        f.seek(start_offset)
        begin, begin_line = start_offset, start_line  # where the range being counted starts
        offset, counted = start_offset, 0  # file offset of buf[0]; newlines counted in this range
        last_byte = b"\n"
        while buf := f.read(_READ_CHUNK):
            pos, rest = 0, buf.count(b"\n")  # newlines in buf[pos:]
            while counted + rest >= lines:  # a range ends in this read, at its (lines - counted)-th newline
                pos = _nth_newline(buf, pos, lines - counted) + 1
                rest -= lines - counted
                yield LineRange(name, begin, offset + pos, begin_line, begin_line + lines, max_record_bytes)
                begin, begin_line, counted = offset + pos, begin_line + lines, 0
            counted += rest
            offset += len(buf)
            last_byte = buf[-1:]
        if offset > begin:
            end_line = begin_line + counted + (last_byte != b"\n")
            yield LineRange(name, begin, offset, begin_line, end_line, max_record_bytes)


def _nth_newline(buf: bytes, start: int, n: int) -> int:
    """Index of the ``n``-th newline (``n`` >= 1) of ``buf[start:]``, which has at least ``n``.

    Halving the span by counting, then a few finds: a find per line, in Python, cost the
    ingesting process 0.2 µs per line.
    """
    lo, hi = start, len(buf)  # the n-th newline from lo is in buf[lo:hi]
    while hi - lo > 4096:
        mid = (lo + hi) // 2
        k = buf.count(b"\n", lo, mid)
        if k >= n:
            hi = mid
        else:
            lo, n = mid, n - k
    for _ in range(n):
        lo = buf.index(b"\n", lo, hi) + 1
    return lo - 1


def _iter_jsonl(path: Path, limit: int, offset: int, line_no: int, end: int | None = None) -> Iterator[RawRecord]:
    with path.open("rb") as f:
        f.seek(offset)
        while end is None or offset < end:
            start_line = line_no
            chunk = f.readline(limit + 2)  # +2: room for the CRLF of a record exactly at the limit
            if not chunk:
                return
            line_no += 1
            offset += len(chunk)
            complete = chunk.endswith(b"\n")
            if not complete and len(chunk) == limit + 2:
                # Oversized: keep a prefix, read the rest in pieces and drop them.
                size = len(chunk)
                prefix = chunk[:KEEP_BYTES]
                tail = chunk[-2:]  # the line's last two bytes read so far
                while True:
                    piece = f.readline(_READ_CHUNK)
                    if not piece:
                        break
                    size += len(piece)
                    offset += len(piece)
                    tail = (tail + piece)[-2:]
                    if piece.endswith(b"\n"):
                        break
                # The line end (LF or CRLF; none at the end of the file) is not part of the record.
                size -= 2 if tail == b"\r\n" else 1 if tail.endswith(b"\n") else 0
                yield RawRecord(
                    start_line, offset, prefix, size, "too_large",
                    f"record is {size:,} bytes; the limit is {limit:,} bytes",
                )
                continue
            if start_line == 1 and chunk.startswith(BOM):
                chunk = chunk[len(BOM):]
            data = chunk.rstrip(b"\r\n") if complete else chunk
            if not data.strip():
                continue
            if len(data) > limit:
                yield RawRecord(
                    start_line, offset, data[:KEEP_BYTES], len(data), "too_large",
                    f"record is {len(data):,} bytes; the limit is {limit:,} bytes",
                )
            elif not complete and not _parses(data):
                yield RawRecord(
                    start_line, offset, data[:KEEP_BYTES], len(data), "truncated",
                    "file ends in the middle of this record (no final newline and the JSON is incomplete)",
                )
            else:
                yield RawRecord(start_line, offset, data, len(data))


def _parses(data: bytes) -> bool:
    try:
        json.loads(data)
        return True
    except (ValueError, UnicodeDecodeError):
        return False


# Structural tokens outside strings, and the characters that matter inside one.
_OUTSIDE = re.compile(rb'["\[\]{},]')
_INSIDE = re.compile(rb'["\\]')
_WHITESPACE = re.compile(rb"\s*")


def _iter_array(path: Path, limit: int) -> Iterator[RawRecord]:
    """Elements of a top-level JSON array, split structurally (strings and nesting respected).

    The split does not validate JSON: a malformed element still ends at the next ``,`` or
    ``]`` at depth one and is rejected when it is parsed.
    """
    with path.open("rb") as f:
        buf = f.read(_READ_CHUNK)
        if buf.startswith(BOM):
            buf = buf[len(BOM):]
            base = len(BOM)  # file offset of buf[0]
        else:
            base = 0
        eof = len(buf) == 0
        pos = buf.index(b"[") + 1  # detect_layout guarantees the bracket
        line = 1 + buf.count(b"\n", 0, pos)
        depth = 1
        in_string = False
        elem: list[bytes] = []  # pieces of the current element (bounded by the limit)
        elem_size = 0
        elem_line = 0  # 0: no element started yet
        piece_start = pos

        def flush_piece(end: int) -> None:
            nonlocal elem_size
            piece = buf[piece_start:end]
            if elem_size < limit + 1:
                elem.append(piece[: limit + 1 - elem_size])
            elem_size += len(piece)

        while True:
            if pos >= len(buf):
                if elem_line:
                    flush_piece(len(buf))
                if eof:
                    break
                base += len(buf)
                buf = f.read(_READ_CHUNK)
                eof = len(buf) == 0
                pos = piece_start = 0
                continue
            if elem_line == 0:
                # Skip whitespace between elements, noting line breaks.
                ws_end = _WHITESPACE.match(buf, pos).end()
                if ws_end > pos:
                    line += buf.count(b"\n", pos, ws_end)
                    pos = ws_end
                    continue
                if buf[pos : pos + 1] == b"]" and depth == 1:
                    yield from _after_array(path, limit, base + pos + 1, line)
                    return
                if buf[pos : pos + 1] == b",":
                    pos += 1
                    continue
                elem_line = line
                piece_start = pos
            pattern = _INSIDE if in_string else _OUTSIDE
            m = pattern.search(buf, pos)
            if m is None:
                line += buf.count(b"\n", pos)
                pos = len(buf)
                continue
            line += buf.count(b"\n", pos, m.start())
            tok = buf[m.start() : m.start() + 1]
            pos = m.end()
            if in_string:
                if tok == b"\\":
                    if pos >= len(buf) and not eof:
                        # escape split across reads: pull the next byte in now
                        more = f.read(_READ_CHUNK)
                        eof = len(more) == 0
                        buf += more
                    pos += 1
                else:
                    in_string = False
                continue
            if tok == b'"':
                in_string = True
            elif tok in (b"[", b"{"):
                depth += 1
            elif tok in (b"]", b"}"):
                depth -= 1
                if depth == 0:  # the array's closing bracket ends the last element
                    flush_piece(m.start())
                    yield _element(elem, elem_size, elem_line, base + m.start(), limit)
                    yield from _after_array(path, limit, base + pos, line)
                    return
            elif tok == b"," and depth == 1:
                flush_piece(m.start())
                # An element ends where its delimiter starts: delimiters are distinct bytes, so end
                # offsets strictly increase, and a resume (which keeps records that end after the
                # committed offset) never drops one, not even the empty record of a cut after a comma.
                yield _element(elem, elem_size, elem_line, base + m.start(), limit)
                elem, elem_size, elem_line = [], 0, 0
        if elem_line:
            data = b"".join(elem).strip()
            yield RawRecord(
                elem_line, base, data[:KEEP_BYTES], elem_size, "truncated",
                "file ends inside this array element (the JSON array is never closed)",
            )
        else:  # cut off between elements: nothing to keep, but the loss must show
            yield RawRecord(
                line, base, b"", 0, "truncated",
                "file ends before the JSON array is closed; whatever followed is missing",
            )


def _after_array(path: Path, limit: int, offset: int, line: int) -> Iterator[RawRecord]:
    """Whatever follows the array's closing bracket, line by line, each rejected as ``after_array``.

    A file is one JSON array or JSON Lines; lines after an array are most likely JSON Lines
    whose first record happens to be an array, and dropping them would lose them silently.
    """
    for record in _iter_jsonl(path, limit, offset, line):
        if record.problem != "too_large":  # also a last line that does not parse: it is not an element
            record = record._replace(
                problem="after_array",
                detail="content after the closing bracket of the file's JSON array (a file is one JSON "
                "array or JSON Lines; the layout is chosen by its first character)",
            )
        yield record


def _element(pieces: list[bytes], size: int, line: int, end: int, limit: int) -> RawRecord:
    data = b"".join(pieces).strip()
    if size > limit:
        return RawRecord(
            line, end, data[:KEEP_BYTES], size, "too_large",
            f"record is {size:,} bytes; the limit is {limit:,} bytes",
        )
    return RawRecord(line, end, data, len(data))
