import dataclasses
import json
from datetime import UTC, datetime

import pytest

from tunix_rt_pipelines.traces import prepare
from tunix_rt_pipelines.traces.reader import iter_line_ranges
from tunix_rt_pipelines_tests.conftest import trace_dict, write_jsonl


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_plain_lines_are_prepared_as_their_records_are(tmp_path, monkeypatch, dialect):
    monkeypatch.setattr(prepare, "utcnow", lambda: datetime(2026, 1, 1, tzinfo=UTC))
    path = write_jsonl(tmp_path / "a.jsonl", [
        trace_dict(1), b"{bad", trace_dict(2, steps=[]), trace_dict(1, id="again"), trace_dict(3), b"[1]",
    ])
    (lines,) = iter_line_ranges(path, lines=100, max_record_bytes=1 << 20)
    assert lines.plain_lines() is not None
    plain = prepare.prepare_lines(lines, dialect=dialect, batch_id="b")
    read = prepare.prepare_records(lines.records(), dialect=dialect, batch_id="b")
    assert dataclasses.asdict(plain) == dataclasses.asdict(read)
    assert (plain.n_read, plain.n_candidates, plain.chunk_duplicates, len(plain.rejected)) == (6, 2, 1, 3)
    plain.source = lines  # as the ingesting process sets it
    assert json.loads(plain.raw_record(4))["id"] == "t:3"  # positions are the records' positions


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_candidates_unpack_to_each_first_record_of_a_hash_in_row_order(tmp_path, dialect):
    path = write_jsonl(tmp_path / "a.jsonl", [trace_dict(2), b"{bad", trace_dict(1), trace_dict(2, id="again")])
    (lines,) = iter_line_ranges(path, lines=100, max_record_bytes=1 << 20)
    chunk = prepare.prepare_lines(lines, dialect=dialect, batch_id="b")
    candidates = chunk.candidates()
    assert [trace_id for _, _, trace_id in candidates.values()] == ["t:2", "t:1"]
    assert [(position, line) for position, line, _ in candidates.values()] == [(0, 1), (2, 3)]
    assert list(candidates) == chunk.hashes() and chunk.n_candidates == 2
    assert all(len(h) == 64 for h in candidates)


def test_a_chunk_of_rejects_only_has_no_candidates(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [b"{bad", b"[1]"])
    (lines,) = iter_line_ranges(path, lines=100, max_record_bytes=1 << 20)
    chunk = prepare.prepare_lines(lines, dialect="postgresql", batch_id="b")
    assert (chunk.n_candidates, chunk.hashes(), chunk.candidates(), chunk.n_read) == (0, [], {}, 2)
