import io
import json

import pyarrow.parquet as pq
import pytest

from tunix_rt_pipelines.core.artifacts import ArtifactStore
from tunix_rt_pipelines.datasets.export import export_split
from tunix_rt_pipelines.datasets.snapshot import DatasetSpec, build_snapshot, split_of, verify_snapshot
from tunix_rt_pipelines.datasets.templates import TEMPLATES, get_template
from tunix_rt_pipelines.traces.ingest import ingest_file
from tunix_rt_pipelines_tests.conftest import trace_dict, write_jsonl


@pytest.fixture
def filled(store, tmp_path):
    recs = [trace_dict(i, metadata={"source": "a" if i % 2 else "b", "category": "arithmetic"}) for i in range(200)]
    ingest_file(store, write_jsonl(tmp_path / "in.jsonl", recs))
    return store, ArtifactStore(tmp_path / "artifacts")


def test_same_spec_same_traces_same_digest(filled):
    store, art = filled
    spec = DatasetSpec(name="d", validation_fraction=0.2, seed=1)
    first, second = build_snapshot(store, art, spec), build_snapshot(store, art, spec)
    assert first.digest == second.digest and first.manifest_sha256 == second.manifest_sha256
    assert first.created and not second.created


def test_spec_changes_change_the_digest(filled):
    store, art = filled
    base = build_snapshot(store, art, DatasetSpec(name="d", seed=1)).digest
    assert build_snapshot(store, art, DatasetSpec(name="d", seed=2)).digest != base
    assert build_snapshot(store, art, DatasetSpec(name="d", seed=1, template="qwen@v1")).digest != base


def test_specs_selecting_the_same_traces_are_one_spec_with_one_digest(filled):
    store, art = filled
    base = DatasetSpec(name="d", sources=["a", "b"], categories=["arithmetic"], template="gemma@v1")
    same = DatasetSpec(name="d", sources=["B", "a", "b"], categories=[" Arithmetic"], template="gemma")
    assert same == base
    assert build_snapshot(store, art, same).digest == build_snapshot(store, art, base).digest
    with pytest.raises(ValueError, match="unknown SFT template"):
        DatasetSpec(name="d", template="llama")


def test_a_split_with_no_training_traces_is_a_clear_error(filled):
    store, art = filled
    with pytest.raises(ValueError, match="fell in the validation split"):
        build_snapshot(store, art, DatasetSpec(name="d", size=3, validation_fraction=0.999))


def test_filters_and_size_select(filled):
    store, art = filled
    snap = build_snapshot(store, art, DatasetSpec(name="d", sources=["a"], size=30, validation_fraction=0.0))
    assert snap.manifest["counts"]["train"] == 30
    assert snap.manifest["counts"]["by_source"] == {"a": 30}


def test_new_traces_do_not_move_existing_ones_across_the_split(filled, tmp_path):
    store, art = filled
    spec = DatasetSpec(name="d", validation_fraction=0.3, seed=5)
    before = build_snapshot(store, art, spec).manifest
    ingest_file(store, write_jsonl(tmp_path / "more.jsonl", [trace_dict(i) for i in range(200, 260)]))
    after = build_snapshot(store, art, spec).manifest
    assert after["digest"] != before["digest"]
    table = pq.read_table(io.BytesIO(art.get_bytes(before["files"]["validation.parquet"]["sha256"])))
    for h in table.column("content_hash").to_pylist():
        assert split_of(spec, h) == "validation"


def test_manifest_records_files_lineage_and_template(filled):
    store, art = filled
    m = build_snapshot(store, art, DatasetSpec(name="d", template="gemma@v1")).manifest
    assert m["template"] == {"key": "gemma@v1", "hash": TEMPLATES["gemma@v1"].hash}
    assert set(m["files"]) == {"train.parquet", "validation.parquet", "sft_train.jsonl", "sft_validation.jsonl"}
    assert m["lineage"]["parents"][0]["file"] == "in.jsonl"
    assert m["counts"]["train"] + m["counts"]["validation"] == 200
    assert verify_snapshot(m, art) == []


def test_empty_selection_is_a_clear_error(filled):
    store, art = filled
    with pytest.raises(ValueError, match="selects no traces"):
        build_snapshot(store, art, DatasetSpec(name="d", sources=["nowhere"]))


def test_chat_templates_wrap_turns_and_end_with_the_answer():
    t = get_template("qwen")
    assert t.render_prompt("Hi?") == "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
    assert t.render_completion(["a", "b"], "7") == "a\nb\n#### 7<|im_end|>"
    with pytest.raises(ValueError, match="unknown SFT template"):
        get_template("llama@v9")


@pytest.mark.parametrize("fmt", ["rendered", "conversational", "messages", "text"])
def test_export_shapes(filled, tmp_path, fmt):
    store, art = filled
    m = build_snapshot(store, art, DatasetSpec(name="d", template="gemma@v1")).manifest
    out = tmp_path / f"{fmt}.jsonl"
    n = export_split(m, art, "train", fmt, out)
    first = json.loads(out.read_text().splitlines()[0])
    assert n == m["counts"]["train"]
    if fmt == "rendered":
        assert first["prompt"].startswith("<start_of_turn>user\n") and first["completion"].endswith("<end_of_turn>")
    elif fmt == "conversational":
        assert first["prompt"][0]["role"] == "user" and first["completion"][0]["role"] == "assistant"
    elif fmt == "messages":
        assert [m["role"] for m in first["messages"]] == ["user", "assistant"]
    else:
        assert "####" in first["text"]
