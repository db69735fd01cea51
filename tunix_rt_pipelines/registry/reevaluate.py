"""Evaluate a registered version on an eval set it has not been scored on (e.g. a changed one).

The version's own records say how to run it: the backend, device and precision of its config,
and the prompt template of the dataset it was trained on (from the dataset manifest its
provenance names). Predictions and evaluation are stored like any other, labelled
``<name>:<N>``, so the leaderboard, ``compare`` and the champion gate find them. A version
already evaluated on that eval set (by the same judge) is not generated for again: the stored
evaluation is returned. Generation uses the sampling settings of the predictions the version
was registered with, so the new scores compare with the old ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from tunix_rt_pipelines.core.artifacts import ArtifactStore, get_tree
from tunix_rt_pipelines.core.db import evaluations
from tunix_rt_pipelines.evaluation.answers import METRIC
from tunix_rt_pipelines.evalsets.validate import load_evalset
from tunix_rt_pipelines.evaluation.evaluate import evaluate_blob
from tunix_rt_pipelines.evaluation.store import save_evaluation
from tunix_rt_pipelines.inference.predict import SamplingSettings, from_jsonl, predict, to_jsonl
from tunix_rt_pipelines.registry.versions import ModelVersion


def registered_sampling(artifacts: ArtifactStore, version: ModelVersion) -> SamplingSettings:
    """The sampling settings of the predictions the version was registered with (defaults without)."""
    sha = version.provenance.get("predictions_sha256")
    if not sha:
        return SamplingSettings()
    _, run = from_jsonl(artifacts.get_bytes(sha))
    known = SamplingSettings.__dataclass_fields__
    return SamplingSettings(**{k: v for k, v in run.get("sampling", {}).items() if k in known})


def evaluate_version(engine: sa.Engine, artifacts: ArtifactStore, version: ModelVersion, evalset_sha256: str,
                     models_dir: Path, *, sampling: SamplingSettings | None = None,
                     run_id: str | None = None) -> tuple[dict, bool]:
    """(evaluation record, newly stored) of ``version`` on the eval set stored as ``evalset_sha256``,
    generated with the sampling it was registered with unless ``sampling`` says otherwise."""
    with engine.connect() as conn:
        existing = conn.execute(sa.select(evaluations).where(
            evaluations.c.model_digest == version.checkpoint_digest, evaluations.c.evalset_sha256 == evalset_sha256,
            evaluations.c.judge == METRIC).order_by(evaluations.c.created_at.desc()).limit(1)).mappings().first()
    if existing is not None:
        return dict(existing), False
    cfg, prov = version.config, version.provenance
    sampling = sampling or registered_sampling(artifacts, version)
    manifest = json.loads(artifacts.get_bytes(prov["dataset_manifest_sha256"]))
    model_dir = get_tree(artifacts, version.checkpoint_digest, Path(models_dir) / version.checkpoint_digest)
    items = load_evalset(artifacts.path_for(evalset_sha256))
    records, run = predict(items, model_dir, backend=cfg["backend"], template_key=manifest["template"]["key"],
                           sampling=sampling, device=cfg.get("device", "auto"), dtype=cfg.get("precision", "fp32"))
    run.update({"model_digest": version.checkpoint_digest, "evalset_sha256": evalset_sha256,
                "config_hash": prov["config_hash"]})
    blob = to_jsonl(records, run)
    sha = artifacts.put_bytes(blob)
    record, rows = evaluate_blob(blob, sha, label=version.label, config_name=version.name,
                                 dataset_digest=prov["dataset_digest"], run_id=run_id)
    return record, save_evaluation(engine, record, rows)
