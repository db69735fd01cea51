"""Sweep benchmark: a 16-trial sweep of the smoke recipe on this machine, with ASHA and without.

Each mode is a fresh sweep (its own name, so nothing is reused) run as the real Dagster job
``sweep_<name>`` (Ray started in the run, trials recorded, partitions added) on a throwaway
home whose upstream (traces, ``dataset/smoke_sft``, ``base_model/smoke_tiny``) is built once.

Reported per mode:

* ``wall_s``: the Dagster run, start to end (Ray start, Tune, recording, Dagster's own work);
* ``train_busy_s``: seconds during which at least one trial was inside its training call
  (trial start to its last report; each trial's model load and data tokenisation included);
* ``outside_training_share`` = 1 − train_busy_s / wall_s: orchestration, Ray and scheduling
  gaps (target ≤ 15%);
* ``slot_use`` = Σ trial training seconds / (tune_s × max_concurrent_trials): how full the trial
  slots were while Tune ran;
* trials finished / stopped early, best validation loss, and trials per hour
  (16 / wall_s × 3600) — ASHA against the same sweep without early stopping.

Peak RSS of the driver (``ru_maxrss``) and of the trial workers (``RUSAGE_CHILDREN``) is recorded.

Usage::

    .venv/bin/python bench/sweep/run.py                 # 16 trials x 200 steps, asha then none
    .venv/bin/python bench/sweep/run.py --trials 8 --steps 100 --modes asha

Results: ``bench/sweep/results/sweep_bench.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def spec_dict(name: str, trials: int, steps: int, scheduler: str) -> dict:
    return {
        "name": name, "base_config": "smoke_tiny.yaml",
        "overrides": {"steps": steps, "eval_every": max(steps // 4, 1), "checkpoint_every": steps},
        "search_space": {"optimizer.lr": {"loguniform": [3.0e-4, 1.0e-2]},
                         "optimizer.warmup_steps": {"randint": [0, 50]}, "batch_size": {"choice": [4, 8]}},
        "metric": "val_loss", "mode": "min", "num_trials": trials, "scheduler": scheduler,
        "asha": {"grace_period": max(steps // 4, 1), "reduction_factor": 2},
        "max_concurrent_trials": 2, "cpus_per_trial": 1, "seed": 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--modes", default="asha,none")
    ap.add_argument("--home", type=Path, help="Reuse this home (upstream already built) instead of a fresh one.")
    args = ap.parse_args()

    import yaml
    from dagster import DagsterInstance, Definitions, materialize

    from tunix_rt_pipelines.core.settings import Settings
    from tunix_rt_pipelines.definitions import EVALSET, build_definitions
    from tunix_rt_pipelines.tuning.assets import build_sweep_assets, build_sweep_jobs
    from tunix_rt_pipelines.tuning.spec import base_config, load_sweep_spec

    home = args.home or Path(tempfile.mkdtemp(prefix="tunix-sweep-bench-"))
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'tunix_rt.db'}")
    settings.ensure_dirs()
    instance = DagsterInstance.local_temp(str(settings.dagster_home))
    defs = build_definitions(settings)
    upstream = ["dev_reasoning", "synthetic_arithmetic", "dataset/smoke_sft", "evalset/eval_v1", "base_model/smoke_tiny"]
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if k.to_user_string() in upstream]
    if not instance.get_latest_materialization_event(keys[-1]):
        t0 = time.perf_counter()
        assets = [a for a in defs.assets if any(k in keys for k in a.keys)]
        assert materialize(assets, instance=instance, resources=defs.resources, selection=keys).success
        print(f"upstream built in {time.perf_counter() - t0:.0f}s", flush=True)

    specs_dir = home / "bench_specs"
    specs_dir.mkdir(exist_ok=True)
    results = {"trials": args.trials, "steps": args.steps, "cpus": os.cpu_count(), "modes": {}}
    for mode in args.modes.split(","):
        name = f"bench_{mode}_{int(time.time())}"
        path = specs_dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec_dict(name, args.trials, args.steps, mode)))
        spec = load_sweep_spec(path, ROOT / "training")
        sweep_assets, checks = build_sweep_assets(path, ROOT / "training", EVALSET)
        bench_defs = Definitions(assets=[*defs.assets, *sweep_assets], asset_checks=checks,
                                 jobs=build_sweep_jobs(spec, base_config(spec, ROOT / "training")),
                                 resources=defs.resources)
        print(f"== {mode}: {args.trials} trials x {args.steps} steps", flush=True)
        t0 = time.perf_counter()
        result = bench_defs.resolve_job_def(f"sweep_{name}").execute_in_process(
            instance=instance, raise_on_error=True,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
        wall = time.perf_counter() - t0
        md = {k: v.value for k, v in result.asset_materializations_for_node(f"sweep__{name}")[0].metadata.items()}
        from tunix_rt_pipelines.traces.store import TraceStore
        from tunix_rt_pipelines.tuning.trials import trials_of

        trials = trials_of(TraceStore(settings.database_url).engine, name)
        best = min((t.val_loss for t in trials if t.status == "finished" and t.val_loss is not None), default=None)
        row = {
            "wall_s": round(wall, 1), "ray_start_s": md["ray_start_s"], "tune_s": md["tune_s"],
            "train_busy_s": md["train_busy_s"], "train_s_sum": md["train_s_sum"],
            "outside_training_share": round(1 - md["train_busy_s"] / wall, 4),
            "slot_use": round(md["train_s_sum"] / (md["tune_s"] * 2), 4),
            "finished": md["trials_finished"], "stopped_early": md["trials_stopped_early"],
            "failed": md["trials_failed"], "best_val_loss": best,
            "trials_per_hour": round(args.trials / wall * 3600, 1),
        }
        results["modes"][mode] = row
        print(json.dumps(row), flush=True)
    if {"asha", "none"} <= set(results["modes"]):
        a, n = results["modes"]["asha"], results["modes"]["none"]
        results["asha_vs_none_trials_per_hour"] = round(a["trials_per_hour"] / n["trials_per_hour"], 3)
    import ray

    ray.shutdown()  # the local Ray's processes exit, so their peak RSS counts among the children's
    results["peak_rss_mb_driver"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["peak_rss_mb_children"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    out = HERE / "results" / "sweep_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
