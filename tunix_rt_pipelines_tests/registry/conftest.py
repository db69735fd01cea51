"""Evaluations with chosen per-item outcomes, a checkpoint folder in the artefact store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunix_rt_pipelines.core.artifacts import ArtifactStore, put_tree
from tunix_rt_pipelines.evaluation.scorecard import scorecard
from tunix_rt_pipelines.evaluation.store import evaluation_id, save_evaluation

EVALSET = "e" * 64


def store_evaluation(engine, tag: str, outcomes: str, *, evalset: str = EVALSET,  # noqa: ANN001
                     model_digest: str = "m" * 64) -> str:
    """Save an evaluation whose item i is correct where ``outcomes[i] == "1"``; returns its id."""
    rows = [{"item_id": f"item{i:03d}", "outcome": "correct" if o == "1" else "wrong", "extracted": o,
             "extractor": "marker_hash", "strict_match": o == "1", "flexible_match": o == "1",
             "section": "core" if i % 2 else "edge_case", "category": "arithmetic"} for i, o in enumerate(outcomes)]
    card = scorecard([r["outcome"] for r in rows], [{"section": r["section"]} for r in rows])
    card["trace_structure"] = {"mean": 0.5}
    eid = evaluation_id(tag.ljust(64, "0")[:64], "answer_correctness@v1")
    save_evaluation(engine, {
        "id": eid, "label": tag, "judge": "answer_correctness@v1", "predictions_sha256": tag.ljust(64, "0")[:64],
        "evalset_sha256": evalset, "model_digest": model_digest, "config_name": "smoke", "config_hash": "c" * 64,
        "dataset_digest": "d" * 64, "backend": "torch", "primary_score": card["primary_score"],
        "n_items": card["n_items"], "n_scored": card["n_scored"], "n_invalid": 0, "scorecard": card, "run_id": None,
    }, rows)
    return eid


@pytest.fixture
def engine(store):  # noqa: ANN001
    return store.engine


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def checkpoint(tmp_path: Path, artifacts: ArtifactStore):  # noqa: ANN201
    """A factory: a stored model folder whose weights file holds ``content``; returns its digest."""
    def make(content: bytes) -> str:
        folder = tmp_path / f"model-{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "config.json").write_text('{"model_type": "qwen3"}')
        (folder / "model.safetensors").write_bytes(content)
        return put_tree(artifacts, folder)[0]
    return make
