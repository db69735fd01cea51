"""Assembles the Dagster code location: assets, checks, jobs, sensors, resources. No logic here."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings
from tunix_rt_pipelines.datasets.assets import dataset_assets
from tunix_rt_pipelines.evalsets.assets import evalset_assets, evalset_key
from tunix_rt_pipelines.evalsets.sensors import build_evalset_change_sensor
from tunix_rt_pipelines.evaluation.assets import (
    build_comparison_asset,
    build_evaluation_assets,
    build_leaderboard_asset,
)
from tunix_rt_pipelines.inference.assets import build_prediction_assets
from tunix_rt_pipelines.registry.assets import (
    build_gate_check,
    build_registration_asset,
    champion_evaluation_asset,
    champion_evaluation_key,
)
from tunix_rt_pipelines.resources import build_resources
from tunix_rt_pipelines.synthetic.assets import dev_reasoning, synthetic_arithmetic
from tunix_rt_pipelines.traces.assets import inbox_sensor, ingest_job, ingested_trace_file
from tunix_rt_pipelines.training.assets import build_training_assets, build_training_job
from tunix_rt_pipelines.training.config import load_config
from tunix_rt_pipelines.tuning.assets import build_sweep_assets, build_sweep_jobs, nightly_schedule
from tunix_rt_pipelines.tuning.spec import base_config, load_sweep_spec

MAIN_JOB = "main"
# Training configs materialised by this code location. The Gemma/Qwen configs need their
# weights on disk (or network) and an accelerator: add them here on a machine that has both.
TRAINING_CONFIGS = ["smoke_tiny.yaml"]
EVALSET = REPO_ROOT / "evalsets" / "eval_v1.jsonl"
# Every sweep spec in training/sweeps/ (each base config must be in TRAINING_CONFIGS); NIGHTLY runs each night.
SWEEPS = sorted(p.name for p in (REPO_ROOT / "training" / "sweeps").glob("*.yaml"))
NIGHTLY = "smoke_sweep"


def build_definitions(settings: Settings | None = None) -> Definitions:
    settings = settings or Settings.from_env()
    training = [a for name in TRAINING_CONFIGS for a in build_training_assets(REPO_ROOT / "training" / name)]
    predictions = [a for name in TRAINING_CONFIGS for a in build_prediction_assets(REPO_ROOT / "training" / name, EVALSET)]
    evaluations = [a for name in TRAINING_CONFIGS for a in build_evaluation_assets(REPO_ROOT / "training" / name)]
    leaderboard = build_leaderboard_asset([key for a in evaluations for key in a.keys])
    comparisons = [build_comparison_asset(REPO_ROOT / "training" / name) for name in TRAINING_CONFIGS]
    registrations = [build_registration_asset(REPO_ROOT / "training" / name) for name in TRAINING_CONFIGS]
    gates = [build_gate_check(REPO_ROOT / "training" / name) for name in TRAINING_CONFIGS]
    sweep_specs = [load_sweep_spec(REPO_ROOT / "training" / "sweeps" / name) for name in SWEEPS]
    sweep_parts = [build_sweep_assets(REPO_ROOT / "training" / "sweeps" / name, REPO_ROOT / "training", EVALSET)
                   for name in SWEEPS]
    sweep_assets = [a for assets_, _ in sweep_parts for a in assets_]
    gates += [c for _, checks in sweep_parts for c in checks]
    # Every registered model name: training configs and sweeps. Their champions follow eval set changes.
    model_names = [load_config(REPO_ROOT / "training" / name).name for name in TRAINING_CONFIGS]
    model_names += [spec.name for spec in sweep_specs]
    champion_evaluations = [champion_evaluation_asset(name, evalset_key(EVALSET)) for name in model_names]
    assets = [ingested_trace_file, dev_reasoning, synthetic_arithmetic,
              *dataset_assets(REPO_ROOT / "training" / "datasets"), *evalset_assets(REPO_ROOT / "evalsets"),
              *training, *predictions, *evaluations, leaderboard, *comparisons, *registrations, *sweep_assets,
              *champion_evaluations]
    main_job = define_asset_job(
        MAIN_JOB,
        selection=AssetSelection.all() - AssetSelection.assets(ingested_trace_file, *sweep_assets,
                                                               *champion_evaluations),
        description="Everything that is not per inbox file: generated traces, datasets, eval sets, base model, "
                    "training, predictions, evaluations, leaderboard, gates, registration.",
    )
    return Definitions(
        assets=assets,
        asset_checks=gates,
        jobs=[ingest_job, main_job, *(build_training_job(REPO_ROOT / "training" / name) for name in TRAINING_CONFIGS),
              *(job for spec in sweep_specs for job in build_sweep_jobs(spec, base_config(spec, REPO_ROOT / "training")))],
        schedules=[nightly_schedule(spec) for spec in sweep_specs if spec.name == NIGHTLY],
        sensors=[inbox_sensor, build_evalset_change_sensor(
            REPO_ROOT / "evalsets", [champion_evaluation_key(name) for name in model_names])],
        resources=build_resources(settings),
    )


defs = build_definitions()
