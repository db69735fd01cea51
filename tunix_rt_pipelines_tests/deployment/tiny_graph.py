"""A small code location shaped like ``tunix_rt_pipelines.definitions``, for deployment tests.

The same asset builders and resources as the real code location, on two tiny training configs:
``deploy_tiny`` (20 steps) runs the whole graph in well under a minute on 2 cores, and
``deploy_long`` (a million steps) keeps a training worker busy until its run is terminated.
The configs are written into the home folder, so the webserver's code server and the test
process build identical definitions from ``TUNIX_RT_HOME``.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import AssetSelection, Definitions, define_asset_job

from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings
from tunix_rt_pipelines.datasets.assets import dataset_assets, dataset_key
from tunix_rt_pipelines.evalsets.assets import evalset_assets
from tunix_rt_pipelines.evaluation.assets import build_comparison_asset, build_evaluation_assets, build_leaderboard_asset
from tunix_rt_pipelines.inference.assets import build_prediction_assets
from tunix_rt_pipelines.registry.assets import build_gate_check, build_registration_asset
from tunix_rt_pipelines.resources import build_resources
from tunix_rt_pipelines.synthetic.assets import dev_reasoning, synthetic_arithmetic
from tunix_rt_pipelines.traces.assets import inbox_sensor, ingest_job, ingested_trace_file
from tunix_rt_pipelines.training.assets import build_training_assets, build_training_job

EVALSET = REPO_ROOT / "evalsets" / "eval_v1.jsonl"
MAIN_JOB = "main"
TINY = "deploy_tiny"
LONG = "deploy_long"
DATASET = "dev_reasoning_sft"
MODEL = {"family": "qwen3", "source": "build:tiny", "hidden_size": 32, "num_layers": 1, "num_heads": 2,
         "num_kv_heads": 1, "head_dim": 16, "intermediate_size": 64, "vocab_size": 400}
CONFIGS = {
    TINY: {"name": TINY, "dataset": DATASET, "backend": "torch", "seq_len": 256, "batch_size": 4, "steps": 20,
           "checkpoint_every": 10, "log_every": 5, "eval_every": 10, "eval_batches": 1, "model": MODEL},
    # Long enough that it is always still training when the test terminates its run, and silent once
    # training has started: a worker that writes a Pipes message after its step has gone dies of the
    # missing message file, which would hide a worker that was never told to stop.
    LONG: {"name": LONG, "dataset": DATASET, "backend": "torch", "seq_len": 256, "batch_size": 4,
           "steps": 1_000_000, "checkpoint_every": 1_000_000, "log_every": 1_000_000, "eval_every": 1_000_000,
           "eval_batches": 1, "model": MODEL},
}
# Smaller than the real main job: fewer generated traces, short generations.
MAIN_RUN_CONFIG = {"ops": {
    "dev_reasoning": {"config": {"size": 120}},
    f"predictions__{TINY}__base": {"config": {"max_new_tokens": 16}},
    f"predictions__{TINY}__trained": {"config": {"max_new_tokens": 16}},
}}


def write_configs(settings: Settings) -> dict[str, Path]:
    folder = settings.home / "deployment_configs"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, cfg in CONFIGS.items():
        path = folder / f"{name}.yaml"
        text = yaml.safe_dump(cfg, sort_keys=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        paths[name] = path
    return paths


def build_definitions(settings: Settings) -> Definitions:
    settings.ensure_dirs()
    paths = write_configs(settings)
    tiny, long = paths[TINY], paths[LONG]
    evaluations = build_evaluation_assets(tiny)
    datasets = [a for a in dataset_assets(REPO_ROOT / "training" / "datasets") if dataset_key(DATASET) in a.keys]
    main_assets = [dev_reasoning, *datasets, *evalset_assets(EVALSET.parent), *build_training_assets(tiny),
                   *build_prediction_assets(tiny, EVALSET), *evaluations,
                   build_leaderboard_asset([k for a in evaluations for k in a.keys]),
                   build_comparison_asset(tiny), build_registration_asset(tiny)]
    main_job = define_asset_job(MAIN_JOB, selection=AssetSelection.assets(*main_assets), config=MAIN_RUN_CONFIG,
                                description="The tiny graph: traces, dataset, eval set, training, predictions, "
                                            "evaluations, leaderboard, gate, registration.")
    return Definitions(
        # ingested_trace_file and synthetic_arithmetic are upstream of every dataset, as in the real location.
        assets=[ingested_trace_file, synthetic_arithmetic, *main_assets, *build_training_assets(long)],
        asset_checks=[build_gate_check(tiny)],
        jobs=[main_job, build_training_job(long), ingest_job],
        sensors=[inbox_sensor],
        resources=build_resources(settings),
    )


def run_main_job() -> None:
    """``python -m tunix_rt_pipelines_tests.deployment.tiny_graph``: the main job on ``TUNIX_RT_HOME``,
    in-process on its Dagster instance, as ``tunix-rt run`` does. Prints the run id; exits 1 on failure.

    Run as its own process (not inside pytest) so that the training worker's stdout reaches the run's
    compute log: pytest's own output capture would take it otherwise.
    """
    import sys

    from dagster import DagsterInstance

    settings = Settings.from_env()
    settings.activate_dagster_home()
    with DagsterInstance.get() as instance:
        result = build_definitions(settings).resolve_job_def(MAIN_JOB).execute_in_process(
            instance=instance, raise_on_error=False)
    for event in result.all_events:
        if event.is_failure:
            print(event.message, file=sys.stderr)
    print(result.run_id)
    sys.exit(0 if result.success else 1)


if __name__ == "__main__":
    run_main_job()
