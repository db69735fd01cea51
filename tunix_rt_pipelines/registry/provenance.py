"""What a model version records about where it came from and what it measured.

The provenance chain runs by content hash from the version back to the traces:
checkpoint digest → base model digest, config hash, dataset digest → trace-id digest and
dataset manifest; and forward to its measurement: predictions sha256 → evaluation id (judge,
eval set sha256) → gate decision. ``code_version`` is the package version plus the git commit
the code ran from (``+dirty`` when the working tree had changes), or the version alone outside
a git checkout.
"""

from __future__ import annotations

import functools
import math
import subprocess

import sqlalchemy as sa

from tunix_rt_pipelines import __version__
from tunix_rt_pipelines.core.db import datasets
from tunix_rt_pipelines.core.settings import REPO_ROOT
from tunix_rt_pipelines.registry.baselines import load_evaluation, metric_value


@functools.cache
def code_version() -> str:
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True,
                                  check=True, timeout=10).stdout.strip()
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+{commit[:12]}" + (".dirty" if dirty else "")


def provenance_record(engine: sa.Engine, *, evaluation_id: str, checkpoint_digest: str, base_model_digest: str,
                      dataset_digest: str, config_hash: str, gate_id: str | None, run_id: str | None,
                      loss_curve_sha256: str | None = None) -> dict:
    with engine.connect() as conn:
        evaluation = load_evaluation(conn, evaluation_id)
        dataset = conn.execute(sa.select(datasets).where(datasets.c.digest == dataset_digest)).mappings().first()
    if dataset is None:
        raise LookupError(f"dataset {dataset_digest[:12]} is not in the dataset table")
    return {
        "checkpoint_digest": checkpoint_digest,
        "base_model_digest": base_model_digest,
        "config_hash": config_hash,
        "dataset_digest": dataset_digest,
        "dataset_name": dataset["name"],
        "dataset_manifest_sha256": dataset["manifest_sha256"],
        "trace_ids_digest": dataset["trace_ids_digest"],
        "predictions_sha256": evaluation["predictions_sha256"],
        "evaluation_id": evaluation_id,
        "judge": evaluation["judge"],
        "evalset_sha256": evaluation["evalset_sha256"],
        "gate_id": gate_id,
        "loss_curve_sha256": loss_curve_sha256,
        "code_version": code_version(),
        "dagster_run_id": run_id,
    }


def metrics_record(engine: sa.Engine, evaluation_id: str, training: dict) -> dict:
    """The evaluation's headline numbers and the training run's final losses."""
    with engine.connect() as conn:
        evaluation = load_evaluation(conn, evaluation_id)
    card = evaluation["scorecard"]
    return {
        "primary_score": evaluation["primary_score"],
        "primary_metric": card.get("primary_metric"),
        "ci95": card.get("ci95"),
        "n_items": evaluation["n_items"],
        "n_scored": evaluation["n_scored"],
        "n_invalid": evaluation["n_invalid"],
        "trace_structure": metric_value(evaluation, "trace_structure"),
        **{f"score_{s}": part.get("mean") for s, part in card.get("by_section", {}).items()},
        **{k: _finite(training.get(k)) for k in ("final_loss", "final_val_loss", "min_loss", "steps", "tokens_per_s")},
    }


def _finite(value: object) -> object:
    """NaN (Dagster metadata's "no value") as None: PostgreSQL's JSON has no NaN."""
    return None if isinstance(value, float) and math.isnan(value) else value
