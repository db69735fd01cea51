"""Staging never clobbers another file's content; the scan ingests settled, changed, not yet ingested files."""

import os
import threading
import time

import pytest

from tunix_rt_pipelines.core.artifacts import file_sha256
from tunix_rt_pipelines.traces.inbox import scan, stage


def src(tmp_path, name, text, sub="src"):
    (tmp_path / sub).mkdir(exist_ok=True)
    path = tmp_path / sub / name
    path.write_text(text)
    return path


def settle(path, seconds=60):
    """Age the file's modification time as if it had been written ``seconds`` ago."""
    t = time.time() - seconds
    os.utime(path, (t, t))


@pytest.fixture
def inbox(tmp_path):
    return tmp_path / "inbox"


def test_same_content_staged_twice_gets_the_same_key(tmp_path, inbox):
    a = src(tmp_path, "t.jsonl", "one\n")
    assert stage(a, inbox, lambda k: None) == stage(a, inbox, lambda k: None) == "t.jsonl"
    assert [p.name for p in inbox.iterdir()] == ["t.jsonl"]  # no temporary file left


def test_other_content_under_a_taken_name_gets_its_hash_in_the_name(tmp_path, inbox):
    stage(src(tmp_path, "t.jsonl", "one\n"), inbox, lambda k: None)
    b = src(tmp_path, "t.jsonl", "two\n", sub="other")
    key = stage(b, inbox, lambda k: None)
    assert key == f"t-{file_sha256(b)[:12]}.jsonl"
    assert (inbox / "t.jsonl").read_text() == "one\n" and (inbox / key).read_text() == "two\n"


def test_two_files_with_one_name_staged_at_once_both_keep_their_content(tmp_path, inbox):
    files = [src(tmp_path, "t.jsonl", f"content {i}\n", sub=f"s{i}") for i in range(4)]
    keys, all_checked = {}, threading.Barrier(len(files), timeout=10)

    def run(i):
        first = [True]

        def register(key):  # every stager has found the name free before any publishes
            if first.pop() if first else False:
                all_checked.wait()
        keys[i] = stage(files[i], inbox, register)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys.values())) == len(files)
    assert all((inbox / keys[i]).read_bytes() == files[i].read_bytes() for i in range(len(files)))


def test_the_key_is_registered_before_its_file_appears(tmp_path, inbox):
    visible_at_registration = []
    stage(src(tmp_path, "t.jsonl", "one\n"), inbox, lambda k: visible_at_registration.append((inbox / k).exists()))
    assert visible_at_registration == [False]


def test_a_settled_new_file_is_ingested_once(inbox):
    inbox.mkdir()
    (inbox / "a.jsonl").write_text("x\n")
    settle(inbox / "a.jsonl")
    first = scan(inbox, {}, lambda name, sha: False)
    again = scan(inbox, first.seen, lambda name, sha: False)
    assert first.ingest == [("a.jsonl", file_sha256(inbox / "a.jsonl"))] and again.ingest == []


def test_a_file_still_being_written_waits(inbox):
    inbox.mkdir()
    (inbox / "a.jsonl").write_text("x\n")
    found = scan(inbox, {}, lambda name, sha: False)
    assert (found.ingest, found.seen) == ([], {})


def test_an_overwritten_file_is_ingested_again(inbox):
    inbox.mkdir()
    (inbox / "a.jsonl").write_text("x\n")
    settle(inbox / "a.jsonl", 120)
    first = scan(inbox, {}, lambda name, sha: False)
    (inbox / "a.jsonl").write_text("x\ny\n")
    settle(inbox / "a.jsonl")
    assert scan(inbox, first.seen, lambda name, sha: False).ingest == [("a.jsonl", file_sha256(inbox / "a.jsonl"))]


def test_content_already_ingested_under_its_name_is_not_requested(inbox):
    """The CLI's own ingests, or every file again after the sensor's cursor was lost."""
    inbox.mkdir()
    (inbox / "a.jsonl").write_text("x\n")
    settle(inbox / "a.jsonl")
    found = scan(inbox, {}, lambda name, sha: (name, sha) == ("a.jsonl", file_sha256(inbox / "a.jsonl")))
    assert found.ingest == [] and "a.jsonl" in found.seen


def test_a_name_that_is_no_partition_key_is_renamed_and_others_go_on(inbox):
    inbox.mkdir()
    for name in ("my data.jsonl", "b.jsonl"):
        (inbox / name).write_text(name)
        settle(inbox / name)
    found = scan(inbox, {}, lambda name, sha: False)
    assert found.renamed == [("my data.jsonl", "my_data.jsonl")]
    assert [name for name, _ in found.ingest] == ["b.jsonl"]
    assert [n for n, _ in scan(inbox, found.seen, lambda name, sha: False).ingest] == ["my_data.jsonl"]


def test_a_long_name_taken_by_other_content_gets_a_hashed_name_that_fits(tmp_path, inbox):
    long = "x" * 240 + ".jsonl"
    first = stage(src(tmp_path, long, "one\n"), inbox, lambda k: None)
    second = stage(src(tmp_path, long, "two\n", sub="other"), inbox, lambda k: None)
    assert first != second and all(len(k) <= 255 and k.endswith(".jsonl") for k in (first, second))


def test_an_unreadable_file_is_reported_and_the_others_go_on(inbox, monkeypatch):
    inbox.mkdir()
    for name in ("a.jsonl", "b.jsonl"):
        (inbox / name).write_text(name)
        settle(inbox / name)
    real = file_sha256

    def refuse_a(path):
        if path.name == "a.jsonl":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr("tunix_rt_pipelines.traces.inbox.file_sha256", refuse_a)
    found = scan(inbox, {}, lambda name, sha: False)
    assert [n for n, _ in found.ingest] == ["b.jsonl"] and [n for n, _ in found.problems] == ["a.jsonl"]
    assert "a.jsonl" not in found.seen  # tried again next time


def test_hashing_stops_at_the_budget_and_the_rest_waits_for_the_next_scan(inbox):
    inbox.mkdir()
    for name in ("a.jsonl", "b.jsonl", "c.jsonl"):
        (inbox / name).write_text("x" * 100)
        settle(inbox / name)
    first = scan(inbox, {}, lambda name, sha: False, max_hash_bytes=250)
    second = scan(inbox, first.seen, lambda name, sha: False, max_hash_bytes=250)
    assert [n for n, _ in first.ingest] == ["a.jsonl", "b.jsonl"] and [n for n, _ in second.ingest] == ["c.jsonl"]


def test_a_file_being_ingested_waits_unhashed_for_a_later_scan(inbox):
    inbox.mkdir()
    (inbox / "a.jsonl").write_text("x\n")
    settle(inbox / "a.jsonl")
    found = scan(inbox, {}, lambda name, sha: False, busy=frozenset({"a.jsonl"}))
    assert (found.ingest, found.seen) == ([], {})
