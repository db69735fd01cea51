"""`tunix-rt` as a person uses it, in its own process: ingest through Dagster, then read stats and rejects.

A subprocess rather than click's CliRunner: the runner swaps sys.stderr for a buffer it closes
afterwards, and logging handlers that JAX/absl or Dagster bound to it in the same pytest
process then write to a closed file.
"""

import json
import os
import subprocess
import sys

import pytest
from dagster import DagsterInstance

from tunix_rt_pipelines.evaluation.parallel import MIN_ITEMS_PER_WORKER
from tunix_rt_pipelines_tests.conftest import trace_dict, write_jsonl


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("TUNIX_RT_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.delenv("TUNIX_RT_DATABASE_URL", raising=False)
    return home


def cli(*args):
    result = subprocess.run([sys.executable, "-m", "tunix_rt_pipelines.cli", *args], capture_output=True, text=True,
                            env=os.environ.copy(), timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_ingest_prints_counts_and_records_a_dagster_run(home, tmp_path):
    path = write_jsonl(tmp_path / "traces.jsonl", [trace_dict(1), trace_dict(2), "{bad"])
    result = cli("ingest", str(path), "--json")
    assert result.returncode == 0
    (row,) = json.loads(result.stdout)
    assert (row["read"], row["accepted"], row["duplicate"], row["rejected"]) == (3, 2, 0, 1)
    runs = DagsterInstance.get().get_run_records()
    assert [r.dagster_run.run_id for r in runs] == [row["run_id"]]


def test_stats_and_rejects_read_back_what_was_ingested(home, tmp_path):
    cli("ingest", str(write_jsonl(tmp_path / "t.jsonl", [trace_dict(1), trace_dict(2, steps=[])])))
    stats = json.loads(cli("traces", "stats", "--json").stdout)
    (reject,) = json.loads(cli("rejects", "--json").stdout)
    assert (stats["traces"], stats["rejects"]) == (1, 1)
    assert (reject["file_name"], reject["line_no"], reject["reason"], reject["field"]) == ("t.jsonl", 2, "schema", "steps")


def test_same_file_twice_reports_all_duplicates(home, tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [trace_dict(i) for i in range(4)])
    cli("ingest", str(path))
    (second,) = json.loads(cli("ingest", str(path), "--json").stdout)
    assert (second["accepted"], second["duplicate"]) == (0, 4)


def test_two_files_with_the_same_name_but_other_content_both_ingest(home, tmp_path):
    (tmp_path / "x").mkdir()
    a = write_jsonl(tmp_path / "t.jsonl", [trace_dict(1)])
    b = write_jsonl(tmp_path / "x" / "t.jsonl", [trace_dict(2)])
    rows = json.loads(cli("ingest", str(a), str(b), "--json").stdout)
    assert [r["accepted"] for r in rows] == [1, 1]
    assert rows[0]["file"] != rows[1]["file"]


def test_a_failed_ingest_prints_the_cause_not_dagsters_step_summary(home, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNIX_RT_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")  # nothing listens
    path = write_jsonl(tmp_path / "t.jsonl", [trace_dict(1)])
    result = subprocess.run([sys.executable, "-m", "tunix_rt_pipelines.cli", "ingest", str(path), "--json"],
                            capture_output=True, text=True, env=os.environ.copy(), timeout=300, check=False)
    (row,) = json.loads(result.stdout)
    assert result.returncode == 1 and row["success"] is False
    assert "Connection refused" in row["error"] and "Execution of step" not in row["error"]


def test_rescore_scores_predictions_made_elsewhere(home, tmp_path):
    path = write_jsonl(tmp_path / "preds.jsonl", [
        {"item_id": "a", "expected_answer": "12", "output": "3 x 4 = 12\n#### 12"},
        {"item_id": "b", "expected_answer": "5", "output": "no idea"},
    ])
    out = json.loads(cli("rescore", str(path), "--json").stdout)
    assert [(i["item_id"], i["outcome"], i["extractor"]) for i in out["items"]] == [
        ("a", "correct", "marker_hash"), ("b", "invalid", "none")]
    assert (out["scorecard"]["n_items"], out["scorecard"]["primary_score"]) == (2, 0.5)


def test_rescore_with_workers_gives_the_same_records(home, tmp_path):
    n = 2 * MIN_ITEMS_PER_WORKER  # large enough for a forked worker to take half
    path = write_jsonl(tmp_path / "preds.jsonl", [
        {"item_id": f"i{k}", "expected_answer": str(k), "section": ("core", "edge_case")[k % 2],
         "output": f"{k} + 1 = {k + 1}\n" + ("#### ", "Answer: ", "so ")[k % 3] + str(k + k % 4)}
        for k in range(n)])
    assert cli("rescore", str(path), "--json", "--workers", "2").stdout == cli("rescore", str(path), "--json",
                                                                                 "--workers", "1").stdout


def test_rescore_refuses_workers_for_the_llm_judge(home, tmp_path):
    path = write_jsonl(tmp_path / "preds.jsonl", [{"item_id": "a", "expected_answer": "1", "output": "#### 1"}])
    result = subprocess.run([sys.executable, "-m", "tunix_rt_pipelines.cli", "rescore", str(path), "--judge",
                             "llm_judge", "--judge-url", "http://127.0.0.1:9", "--judge-model", "m", "--workers", "2"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "--workers: only for --judge answer_correctness" in result.stderr


def test_rescore_names_the_file_line_and_field_of_a_bad_record(home, tmp_path):
    path = write_jsonl(tmp_path / "preds.jsonl", [{"item_id": "a", "expected_answer": "1", "output": "#### 1"},
                                                   {"item_id": "b", "output": "#### 2"}])
    result = subprocess.run([sys.executable, "-m", "tunix_rt_pipelines.cli", "rescore", str(path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "preds.jsonl:2: expected_answer" in result.stderr
