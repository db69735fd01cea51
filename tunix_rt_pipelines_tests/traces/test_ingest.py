"""Ingestion survives bad input on both backends; counts always add up; re-runs are idempotent."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tunix_rt_pipelines.core.db import rejects, traces
from tunix_rt_pipelines.traces.ingest import ingest_file
from tunix_rt_pipelines_tests.conftest import trace_dict, write_jsonl


def ingest(store, path, **kw):
    report = ingest_file(store, path, **kw)
    assert report.read == report.accepted + report.duplicate + report.rejected
    stored = store.count_rows(report.batch_id)
    assert stored == {"traces": report.accepted, "rejects": report.rejected}
    return report


def ingest_crashing_at_chunk(k, store, path, monkeypatch, **kw):
    """Ingest ``path`` with the ``k``-th chunk's write raising, as a crash would; real writes after."""
    real = type(store).write_chunk
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == k:
            raise RuntimeError("simulated crash")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(store), "write_chunk", flaky)
    with pytest.raises(RuntimeError):
        ingest_file(store, path, **kw)
    monkeypatch.setattr(type(store), "write_chunk", real)


def reject_of(store, batch_id):
    return [(r["line_no"], r["reason"], r["field"]) for r in reversed(store.list_rejects(batch_id=batch_id))]


def test_valid_file_is_stored(store, tmp_path):
    r = ingest(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(i) for i in range(10)]))
    assert (r.read, r.accepted, r.duplicate, r.rejected) == (10, 10, 0, 0)


def test_invalid_json_is_rejected_with_its_line(store, tmp_path):
    r = ingest(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1), "{not json", trace_dict(2)]))
    assert (r.accepted, r.rejected) == (2, 1)
    assert reject_of(store, r.batch_id) == [(2, "invalid_json", "<record>")]


def test_wrong_types_name_the_field(store, tmp_path):
    r = ingest(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1, final_answer=5), trace_dict(2, steps="one")]))
    assert reject_of(store, r.batch_id) == [(1, "schema", "final_answer"), (2, "schema", "steps")]


def test_missing_fields_name_the_field(store, tmp_path):
    rec = trace_dict(1)
    del rec["prompt"]
    r = ingest(store, write_jsonl(tmp_path / "a.jsonl", [rec]))
    (row,) = store.list_rejects(batch_id=r.batch_id)
    assert (row["field"], row["message"]) == ("prompt", "required field is missing")


def test_empty_steps_are_rejected(store, tmp_path):
    r = ingest(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1, steps=[])]))
    assert reject_of(store, r.batch_id) == [(1, "schema", "steps")]


def test_non_utf8_bytes_are_rejected_and_kept_visible(store, tmp_path):
    r = ingest(store, write_jsonl(tmp_path / "a.jsonl", [b'{"id": "t:1", "prompt": "caf\xe9"}', trace_dict(2)]))
    (row,) = store.list_rejects(batch_id=r.batch_id)
    assert row["reason"] == "encoding" and "\\xe9" in row["raw_head"]
    assert r.accepted == 1


def test_file_cut_off_mid_line(store, tmp_path):
    path = tmp_path / "cut.jsonl"
    path.write_bytes(json.dumps(trace_dict(1)).encode() + b"\n" + json.dumps(trace_dict(2)).encode()[:30])
    r = ingest(store, path)
    assert (r.accepted, r.rejected) == (1, 1)
    assert reject_of(store, r.batch_id) == [(2, "truncated", "<record>")]


def test_bom_and_crlf_files_ingest_cleanly(store, tmp_path):
    path = tmp_path / "win.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(json.dumps(trace_dict(i)).encode() for i in range(3)) + b"\r\n")
    r = ingest(store, path)
    assert (r.accepted, r.rejected) == (3, 0)


def test_large_line_is_rejected_for_size(store, tmp_path):
    path = write_jsonl(tmp_path / "big.jsonl", [trace_dict(1, prompt="z" * 5000), trace_dict(2)])
    r = ingest(store, path, max_record_bytes=2000)
    (row,) = store.list_rejects(batch_id=r.batch_id)
    assert row["reason"] == "too_large" and row["raw_bytes"] > 5000


def test_same_file_twice_is_all_duplicates_the_second_time(store, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [trace_dict(i) for i in range(20)] + ["{bad"])
    first = ingest(store, path)
    second = ingest(store, path)
    assert (first.accepted, first.duplicate, first.rejected) == (20, 0, 1)
    assert (second.accepted, second.duplicate, second.rejected) == (0, 20, 1)
    assert store.stats()["traces"] == 20


def test_a_nul_character_is_rejected_on_both_backends_and_the_rest_is_stored(store, tmp_path):
    # PostgreSQL's text cannot hold U+0000: before it was rejected, such a trace failed its whole
    # chunk's COPY on every re-run.
    r = ingest(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1), trace_dict(2, prompt="a\x00b"), trace_dict(3)]))
    assert (r.accepted, r.rejected) == (2, 1)
    assert reject_of(store, r.batch_id) == [(2, "schema", "prompt")]


def test_an_escaped_lone_surrogate_is_rejected_and_the_rest_is_stored(store, tmp_path):
    # Python's json decodes "\ud800" into a str that UTF-8 cannot encode: it failed the whole ingest.
    gym = ('{"question": "q \\ud800", "answer": "4", '
           '"metadata": {"source_dataset": "toy", "source_index": 1, "answer_cot": "a"}}')
    native = json.dumps(trace_dict(2)).replace('"steps": ["', '"steps": ["\\udc00')
    r = ingest(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1), gym, native, trace_dict(3)]))
    assert (r.accepted, r.rejected) == (2, 2)
    assert reject_of(store, r.batch_id) == [(2, "encoding", "question"), (3, "encoding", "steps.0")]


def test_json_beyond_the_parsers_limits_is_rejected_and_the_rest_is_stored(store, tmp_path):
    deep = "[" * 100_000 + "]" * 100_000  # Python's json raised RecursionError: the whole ingest failed
    big = json.dumps(trace_dict(2, final_answer=0)).replace('"final_answer": 0', '"final_answer": ' + "9" * 5000)
    r = ingest(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1), deep, big, trace_dict(3)]))
    assert (r.accepted, r.rejected) == (2, 2)
    assert reject_of(store, r.batch_id) == [(2, "invalid_json", "<record>"), (3, "invalid_json", "<record>")]


def test_duplicates_within_one_file_count_once(store, tmp_path):
    r = ingest(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1), trace_dict(1), trace_dict(1, id="copy")]))
    assert (r.accepted, r.duplicate) == (1, 2)


def test_reused_id_for_other_content_is_an_id_conflict(store, tmp_path):
    ingest(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1)]))
    r = ingest(store, write_jsonl(tmp_path / "b.jsonl", [trace_dict(1, final_answer="99")]))
    assert reject_of(store, r.batch_id) == [(1, "id_conflict", "id")]
    (row,) = store.list_rejects(batch_id=r.batch_id)
    assert row["raw_head"] == json.dumps(trace_dict(1, final_answer="99"))[:200]  # the line as it was written


def test_an_id_conflict_after_blank_and_bad_lines_keeps_its_own_line(store, tmp_path):
    ingest(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1)]))
    r = ingest(store, write_jsonl(tmp_path / "b.jsonl", [trace_dict(5), "", "{not json", trace_dict(1, final_answer="99")]))
    row = store.list_rejects(batch_id=r.batch_id, reason="id_conflict")[0]
    assert row["line_no"] == 4
    assert row["raw_head"] == json.dumps(trace_dict(1, final_answer="99"))[:200]


def test_an_id_conflict_in_a_one_line_json_array_keeps_its_own_record(store, tmp_path):
    ingest(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1)]))
    path = tmp_path / "b.json"
    path.write_text(json.dumps([trace_dict(2), trace_dict(1, final_answer="99")]))  # both records on line 1
    r = ingest(store, path)
    (row,) = store.list_rejects(batch_id=r.batch_id)
    assert (row["reason"], row["line_no"]) == ("id_conflict", 1)
    assert row["raw_head"] == json.dumps(trace_dict(1, final_answer="99"))[:200]


def test_reasoning_gym_entries_become_traces(store, tmp_path):
    entry = {"question": "2+3?", "answer": "5",
             "metadata": {"source_dataset": "toy", "source_index": 7, "answer_cot": "2 + 3 = 5\n#### 5", "difficulty": 1.0}}
    no_cot = {"question": "1+1?", "answer": "2", "metadata": {"source_dataset": "basic_arithmetic", "source_index": 0}}
    r = ingest(store, write_jsonl(tmp_path / "gym.jsonl", [entry, no_cot]))
    assert (r.accepted, r.rejected) == (1, 1)
    with store.engine.connect() as c:
        row = c.execute(sa.select(traces.c.trace_id, traces.c.steps, traces.c.final_answer)).one()
    assert row.trace_id.startswith("rg:toy:7:") and tuple(row)[1:] == (["2 + 3 = 5"], "5")
    assert reject_of(store, r.batch_id) == [(2, "schema", "metadata.answer_cot")]


def test_reasoning_gym_entries_of_another_draw_with_the_same_indices_are_not_id_conflicts(store, tmp_path):
    def entry(a, b, i):
        return {"question": f"{a}+{b}?", "answer": str(a + b),
                "metadata": {"source_dataset": "toy", "source_index": i, "answer_cot": f"{a} + {b} = {a + b}"}}

    ingest(store, write_jsonl(tmp_path / "seed0.jsonl", [entry(1, 2, 0), entry(3, 4, 1)]))
    r = ingest(store, write_jsonl(tmp_path / "seed1.jsonl", [entry(5, 6, 0), entry(3, 4, 1)]))
    assert (r.accepted, r.duplicate, r.rejected) == (1, 1, 0)


def test_json_array_file(store, tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([trace_dict(1), trace_dict(2), {"id": "x"}], indent=2))
    r = ingest(store, path)
    assert (r.accepted, r.rejected) == (2, 1)


def test_two_files_at_once_store_each_trace_once(store, tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [trace_dict(i) for i in range(0, 600)])
    b = write_jsonl(tmp_path / "b.jsonl", [trace_dict(i) for i in range(300, 900)])
    reports, errors = {}, []

    def run(path):
        try:
            reports[path.name] = ingest(store, path, chunk_size=50)
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(p,)) for p in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert reports["a.jsonl"].accepted + reports["b.jsonl"].accepted == 900
    assert reports["a.jsonl"].duplicate + reports["b.jsonl"].duplicate == 300
    assert store.stats()["traces"] == 900


def test_failure_mid_ingest_resumes_without_duplicates_or_loss(store, tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "a.jsonl", [trace_dict(i) for i in range(100)] + ["{bad"] * 3)
    ingest_crashing_at_chunk(3, store, path, monkeypatch, chunk_size=20)
    r = ingest(store, path, chunk_size=20)
    assert r.resumed
    assert (r.read, r.accepted, r.duplicate, r.rejected) == (103, 100, 0, 3)
    with store.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(traces)).scalar() == 100
        assert c.execute(sa.select(sa.func.count()).select_from(rejects)).scalar() == 3


def test_text_with_escapes_round_trips_exactly(store, tmp_path):
    meta = {"source": "test", "category": "arithmetic", "difficulty": "easy", "tags": ["a\\b", "𝄞 \"q\""],
            "extra": {"note": "tab\there\nline", "n": 3, "x": 0.5, "ok": True, "none": None}}
    tricky = trace_dict(1, prompt="tab\there \\ back\\slash\nnew line, quote \" and ünï€ode 𝄞",
                        steps=["a\\nb is not a newline", "real\nnewline\twith tab"], metadata=meta)
    plain = trace_dict(2)  # empty extra: written without the JSON encoder
    ingest(store, write_jsonl(tmp_path / "a.jsonl", [tricky, plain]))
    with store.engine.connect() as c:
        rows = c.execute(sa.select(traces.c.prompt, traces.c.steps, traces.c.tags, traces.c.extra)
                         .order_by(traces.c.trace_id)).all()
    assert (rows[0].prompt, rows[0].steps) == (tricky["prompt"], tricky["steps"])
    assert (rows[0].tags, rows[0].extra) == (meta["tags"], meta["extra"])
    assert (rows[1].tags, rows[1].extra) == (["add"], {})



def test_sqlite_rows_written_by_hand_are_the_rows_sqlalchemy_writes(sqlite_url, tmp_path):
    import sqlite3

    from tunix_rt_pipelines.core.db import ingest_batches
    from tunix_rt_pipelines.traces.store import TraceStore

    rec = trace_dict(1, steps=['é "q" \\ 𝄞', "b"],
                     metadata={"source": "s", "tags": ["ünï", "x"], "extra": {"k": "v", "n": 1.5}})
    ours = TraceStore(sqlite_url)
    ingest(ours, write_jsonl(tmp_path / "a.jsonl", [rec, trace_dict(2)]))
    # The same rows, read back through SQLAlchemy and written again by it into a second database.
    theirs = TraceStore(f"sqlite:///{tmp_path / 'theirs.db'}")
    with ours.engine.connect() as c:
        batch_rows = [dict(r) for r in c.execute(sa.select(ingest_batches)).mappings()]
        trace_rows = [dict(r) for r in c.execute(sa.select(traces)).mappings()]
    with theirs.engine.begin() as c:
        c.execute(sa.insert(ingest_batches), batch_rows)
        c.execute(sa.insert(traces), trace_rows)

    def raw(url):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            return db.execute("SELECT * FROM traces ORDER BY trace_id").fetchall()

    assert raw(sqlite_url) == raw(f"sqlite:///{tmp_path / 'theirs.db'}")


def _mixed_file(path):
    """65 records: 40 new traces, 10 repeats (5 under another id), 7 of bad JSON, 3 schema errors, 5 reusing an id."""
    recs = []
    for i in range(40):
        recs.append(trace_dict(i))
        if i % 4 == 0:
            recs.append(trace_dict(i, id=f"again:{i}") if i % 8 else "{not json" if i % 16 else {"id": "x"})
        if i % 8 == 4:
            recs += [trace_dict(i), "[1, 2"]
        if i % 8 == 0:
            recs.append(trace_dict(i, final_answer="other"))
    return write_jsonl(path, recs)


def test_worker_processes_store_exactly_what_one_thread_stores(tmp_path):
    from tunix_rt_pipelines.traces.store import TraceStore

    path = _mixed_file(tmp_path / "a.jsonl")
    one, two = TraceStore(f"sqlite:///{tmp_path / 'one.db'}"), TraceStore(f"sqlite:///{tmp_path / 'two.db'}")
    r1, r2 = ingest(one, path, chunk_size=7, workers=0), ingest(two, path, chunk_size=7, workers=2)
    assert (r1.read, r1.accepted, r1.duplicate, r1.rejected) == (r2.read, r2.accepted, r2.duplicate, r2.rejected)
    assert r1.accepted == 40 and r1.rejected > 0 and r1.duplicate > 0

    def rows(store):
        drop = {"batch_id", "created_at", "id"}
        with store.engine.connect() as c:
            t = [{k: v for k, v in r.items() if k not in drop} for r in c.execute(sa.select(traces)).mappings()]
            j = [{k: v for k, v in r.items() if k not in drop} for r in c.execute(sa.select(rejects)).mappings()]
        return sorted(t, key=lambda r: r["content_hash"]), sorted(j, key=lambda r: r["line_no"])

    assert rows(one) == rows(two)


def test_worker_processes_on_both_backends_count_every_record(store, tmp_path):
    r = ingest(store, _mixed_file(tmp_path / "a.jsonl"), chunk_size=7, workers=2)
    assert (r.read, r.accepted, r.duplicate, r.rejected) == (65, 40, 10, 15)
    assert r.reasons == {"invalid_json": 7, "schema": 3, "id_conflict": 5}


def test_failure_with_worker_processes_resumes_without_duplicates_or_loss(store, tmp_path, monkeypatch):
    path = _mixed_file(tmp_path / "a.jsonl")
    ingest_crashing_at_chunk(4, store, path, monkeypatch, chunk_size=7, workers=2)
    r = ingest(store, path, chunk_size=7, workers=2)
    assert r.resumed and (r.read, r.accepted, r.duplicate, r.rejected) == (65, 40, 10, 15)


def test_a_failure_preparing_the_first_chunk_fails_the_batch_and_a_rerun_completes(store, tmp_path, monkeypatch):
    from tunix_rt_pipelines.traces.reader import LineRange

    def unreadable(self):
        raise OSError("simulated read error")

    # Patched in this process only: the first chunk is prepared here, the rest in a worker process.
    path = _mixed_file(tmp_path / "a.jsonl")
    monkeypatch.setattr(LineRange, "plain_lines", unreadable)
    with pytest.raises(OSError, match="simulated read error"):
        ingest_file(store, path, chunk_size=7, workers=1)
    monkeypatch.undo()
    assert store.stats()["batches"] == {"failed": 1}
    r = ingest(store, path, chunk_size=7, workers=1)
    assert r.resumed and (r.read, r.accepted, r.duplicate, r.rejected) == (65, 40, 10, 15)


def test_chunk_size_below_one_is_refused_before_a_batch_opens(store, tmp_path):
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        ingest_file(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1)]), chunk_size=0)
    assert store.stats()["batches"] == {}


def test_negative_workers_are_refused_before_a_batch_opens(store, tmp_path):
    with pytest.raises(ValueError, match="workers must be 0"):
        ingest_file(store, write_jsonl(tmp_path / "a.jsonl", [trace_dict(1)]), workers=-1)
    assert store.stats()["batches"] == {}


def test_one_worker_process_stores_what_a_thread_stores(store, tmp_path):
    r = ingest(store, _mixed_file(tmp_path / "a.jsonl"), chunk_size=7, workers=1)
    assert (r.read, r.accepted, r.duplicate, r.rejected) == (65, 40, 10, 15)


def test_lines_after_a_json_array_are_rejected_not_dropped(store, tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps([trace_dict(1)]) + "\n" + json.dumps(trace_dict(2)) + "\n")
    r = ingest(store, path)
    assert (r.read, r.accepted, r.rejected) == (2, 1, 1)
    assert reject_of(store, r.batch_id) == [(2, "after_array", "<record>")]


def _children(pid):
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


_HELD_INGEST = """
if __name__ == "__main__":
    import sys, time
    from pathlib import Path
    from tunix_rt_pipelines.traces.ingest import ingest_file
    from tunix_rt_pipelines.traces.store import TraceStore

    def hold(batch, offset):
        print("committed", flush=True)
        time.sleep(600)

    ingest_file(TraceStore(sys.argv[1]), Path(sys.argv[2]), workers=2, chunk_size=100, progress=hold)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc (Linux)")
def test_worker_processes_exit_when_the_ingest_is_killed(sqlite_url, tmp_path):
    script = tmp_path / "held.py"
    script.write_text(_HELD_INGEST)
    path = write_jsonl(tmp_path / "a.jsonl", [trace_dict(i) for i in range(1000)])
    proc = subprocess.Popen([sys.executable, str(script), sqlite_url, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "committed"
    workers = [w for server in _children(proc.pid) for w in _children(server)]
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _running(w)]


def _running(pid):
    """Not exited: a zombie waiting for a parent to reap it counts as exited."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def test_reject_reasons_of_a_resumed_batch_cover_every_attempt(store, tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "a.jsonl", ["{bad"] * 3 + [trace_dict(i) for i in range(100)] + [trace_dict(1, steps=[])])
    ingest_crashing_at_chunk(3, store, path, monkeypatch, chunk_size=20)
    r = ingest(store, path, chunk_size=20)
    assert r.reasons == {"schema": 1}  # this attempt's own
    assert store.reject_reasons(r.batch_id) == {"invalid_json": 3, "schema": 1}
