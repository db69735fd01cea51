import json
import random
import tracemalloc

import pytest

from tunix_rt_pipelines.traces import reader
from tunix_rt_pipelines.traces.reader import iter_line_ranges, iter_records
from tunix_rt_pipelines_tests.conftest import trace_dict, write_jsonl

LIMIT = 1 << 20


def records(path, **kw):
    return list(iter_records(path, max_record_bytes=kw.pop("limit", LIMIT), **kw))


def test_bom_and_crlf_are_removed(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(trace_dict(1)).encode() + b"\r\n" + json.dumps(trace_dict(2)).encode() + b"\r\n")
    recs = records(path)
    assert [json.loads(r.data)["id"] for r in recs] == ["t:1", "t:2"]
    assert all(r.problem is None for r in recs)


def test_blank_lines_are_not_records_but_keep_line_numbers(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [trace_dict(1), "", "  ", trace_dict(2)])
    assert [r.line for r in records(path)] == [1, 4]


def test_oversized_line_is_rejected_without_holding_it(tmp_path):
    path = tmp_path / "big.jsonl"
    big = 50 * 1024 * 1024
    with path.open("wb") as f:
        f.write(b'{"id": "big", "prompt": "' + b"x" * big + b'"}\n')
        f.write(json.dumps(trace_dict(2)).encode() + b"\n")
    tracemalloc.start()
    recs = records(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert recs[0].problem == "too_large" and recs[0].size > big
    assert recs[1].problem is None and recs[1].line == 2
    assert peak < 8 * 1024 * 1024  # never the 50 MB line, not even once


def test_file_cut_mid_record_is_truncated(tmp_path):
    path = tmp_path / "cut.jsonl"
    path.write_bytes(json.dumps(trace_dict(1)).encode() + b'\n{"id": "t:2", "prom')
    recs = records(path)
    assert recs[0].problem is None
    assert recs[1].problem == "truncated" and recs[1].line == 2


def test_last_line_without_newline_is_fine_when_complete(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(json.dumps(trace_dict(1)).encode())
    assert records(path)[0].problem is None


def test_resume_offset_skips_committed_records(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [trace_dict(i) for i in range(5)])
    first = records(path)
    rest = records(path, start_offset=first[1].end_offset, start_line=3)
    assert [r.line for r in rest] == [3, 4, 5]
    assert [r.data for r in rest] == [r.data for r in first[2:]]


def test_json_array_elements_with_brackets_inside_strings(tmp_path):
    items = [trace_dict(1, prompt="a ] tricky, {string} \"quoted\" \\"), trace_dict(2)]
    path = tmp_path / "a.json"
    path.write_text("[\n" + ",\n".join(json.dumps(i) for i in items) + "\n]\n")
    recs = records(path)
    assert [json.loads(r.data) for r in recs] == items
    assert [r.line for r in recs] == [2, 3]


def test_json_array_never_closed_is_truncated(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("[" + json.dumps(trace_dict(1)) + ", {\"id\": \"t:2\"")
    recs = records(path)
    assert recs[0].problem is None
    assert recs[1].problem == "truncated"


def test_json_array_cut_between_elements_is_truncated(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("[" + json.dumps(trace_dict(1)) + ",\n")
    assert [(r.problem, r.line) for r in records(path)] == [(None, 1), ("truncated", 2)]


def test_an_opening_bracket_alone_is_truncated(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("[")
    assert [r.problem for r in records(path)] == ["truncated"]


def test_lines_after_the_array_are_each_kept_as_rejects(tmp_path):
    """JSON Lines whose first record is an array: the lines after it are not dropped."""
    path = tmp_path / "a.jsonl"
    path.write_text("[1, 2]\n" + json.dumps(trace_dict(3)) + "\n\n" + json.dumps(trace_dict(4)) + "\n")
    recs = records(path)
    assert [(r.line, r.problem) for r in recs] == [(1, None), (1, None), (2, "after_array"), (4, "after_array")]
    assert json.loads(recs[3].data) == trace_dict(4)


def test_an_empty_array_followed_by_text_keeps_the_text(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("[] trailing")
    assert [(r.problem, r.data) for r in records(path)] == [("after_array", b" trailing")]


@pytest.mark.parametrize("text", [
    '[{"a": 1}, {"b": 2},', '[1,}]', '[{"a": 1}] {"x": 1}\n{"y": 2}\n', '[1, [2, "]"], 3]', "[", "[1,",
    "[ ]", "[1,,2]", '\ufeff[\r\n1,\r\n2\r\n]\r\nx\r\n',
])
def test_an_array_resumed_after_any_record_reads_exactly_the_records_after_it(tmp_path, text):
    path = tmp_path / "a.json"
    path.write_text(text)
    recs = records(path)
    assert [r.end_offset for r in recs] == sorted({r.end_offset for r in recs})  # strictly increasing
    for k in range(1, len(recs)):
        assert records(path, start_offset=recs[k - 1].end_offset) == recs[k:]


def test_json_array_oversized_element(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("[" + json.dumps(trace_dict(1, prompt="y" * 5000)) + "," + json.dumps(trace_dict(2)) + "]")
    recs = records(path, limit=1000)
    assert [r.problem for r in recs] == ["too_large", None]


def test_line_ranges_read_exactly_the_records_of_the_file(tmp_path):
    path = tmp_path / "a.jsonl"
    lines = [b"\xef\xbb\xbf" + json.dumps(trace_dict(1)).encode(), b"", b"  ", b'{"x": "' + b"y" * 300 + b'"}',
             json.dumps(trace_dict(2)).encode(), b"{not json"]
    path.write_bytes(b"\r\n".join(lines) + b'\n{"cut')  # CRLF, blank lines, too large, last line cut off
    want = records(path, limit=200)
    for n in (1, 2, 3, 100):
        ranges = list(iter_line_ranges(path, lines=n, max_record_bytes=200))
        assert [rec for r in ranges for rec in r.records()] == want
        assert [r.end_line - r.first_line for r in ranges][:-1] == [n] * (len(ranges) - 1)
        assert (ranges[0].start_offset, ranges[-1].end_offset, ranges[-1].end_line) == (0, path.stat().st_size, 8)


def test_line_ranges_resume_at_a_committed_offset(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [trace_dict(i) for i in range(5)])
    first = records(path)
    (rest,) = iter_line_ranges(path, lines=10, max_record_bytes=LIMIT, start_offset=first[1].end_offset, start_line=3)
    assert [r.line for r in rest.records()] == [3, 4, 5] and rest.end_line == 6


def test_line_ranges_count_a_50_mb_line_without_holding_it(tmp_path):
    path = tmp_path / "big.jsonl"
    with path.open("wb") as f:
        f.write(b'{"id": "big", "prompt": "' + b"x" * (50 << 20) + b'"}\n{}\n{}\n')
    tracemalloc.start()
    ranges = list(iter_line_ranges(path, lines=2, max_record_bytes=LIMIT))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [(r.first_line, r.end_line) for r in ranges] == [(1, 3), (3, 4)]
    assert peak < 4 << 20


def test_too_large_record_size_excludes_its_line_end(tmp_path):
    body = b'{"prompt": "' + b"x" * 300 + b'"}'
    for end in (b"\n", b"\r\n", b""):  # LF, CRLF, and none at the end of the file
        path = tmp_path / "big.jsonl"
        path.write_bytes(body + end)
        (rec,) = records(path, limit=100)
        assert (rec.problem, rec.size) == ("too_large", len(body))


@pytest.mark.parametrize("seed", range(4))
def test_plain_lines_are_the_records_whenever_a_range_has_them(tmp_path, seed):
    # Lines of every awkward kind around a 20-byte limit: a BOM, CRs, blank and whitespace-led
    # lines, lines at, one over and two over the limit, a last line without its newline.
    r = random.Random(seed)
    kinds = [b"", b"  ", b"\tx", b"\x0bx", b"{}", b'"' + b"x" * 18 + b'"', b"x" * 21, b"x" * 22, b'{"a": 1}', b"{"]
    plain_seen = 0
    for _ in range(400):
        body = b"\n".join(r.choice(kinds) + r.choice([b"", b"", b"", b"\r"]) for _ in range(r.randint(1, 8)))
        path = tmp_path / "a.jsonl"
        path.write_bytes(r.choice([b"", b"", b"\xef\xbb\xbf"]) + body + r.choice([b"\n", b"\n", b""]))
        for rg in iter_line_ranges(path, lines=r.choice([1, 2, 8]), max_record_bytes=20):
            plain, recs = rg.plain_lines(), rg.records()
            if plain is not None:
                plain_seen += 1
                assert [(rec.line, rec.data, rec.problem) for rec in recs] == [
                    (rg.first_line + i, data, None) for i, data in enumerate(plain)
                ]
    assert plain_seen > 100  # the fast reading was exercised, not only refused


@pytest.mark.parametrize("seed", range(3))
def test_line_ranges_cut_after_every_nth_newline(tmp_path, seed, monkeypatch):
    monkeypatch.setattr(reader, "_READ_CHUNK", 64 << 10)  # many reads, and ranges across them
    r = random.Random(seed)
    data = b"".join(b"x" * r.choice([0, 1, 40, 3000, 9000, 70_000]) + b"\n" for _ in range(400))
    for tail in (b"", b"last line without a newline"):
        path = tmp_path / "a.jsonl"
        path.write_bytes(data + tail)
        ends = [i + 1 for i, byte in enumerate(data) if byte == 10]  # offset just past each newline
        for n in (1, 2, 7, 64, 1000):
            ranges = list(iter_line_ranges(path, lines=n, max_record_bytes=LIMIT))
            want = [(0 if i == 0 else ends[i - 1], ends[i + n - 1]) for i in range(0, len(ends) - n + 1, n)]
            assert [(rg.start_offset, rg.end_offset) for rg in ranges[: len(want)]] == want
            assert ranges[-1].end_offset == path.stat().st_size and ranges[-1].end_line == 401 + bool(tail)
            assert all(rg.end_line == rg.first_line + n for rg in ranges[: len(want)])
