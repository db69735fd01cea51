"""Run a sweep's trials on Ray Tune: proposals, concurrency, ASHA early stopping, records.

Ray starts locally (``num_cpus`` = this machine's) unless ``RAY_ADDRESS`` names a cluster, in
which case the trials run there; a cluster's workers need this package installed, the trial
data paths below must be on storage they share (see README, "Scale-out").

Each trial is one call of ``_trainable``: it builds the trial's training config, and trains in
``<runs_root>/<sweep>/<trial_key>``, reporting the validation loss at every ``eval_every``
step. ASHA (on validation loss, time in optimizer steps) stops poor trials at its rungs; Ray
ends a stopped trial's function at its next report. A trial whose folder already holds a
finished result reports that result at once and trains nothing, and one the scheduler stopped
(``stopped_early.json``, written here after the fit) reports what it was stopped with: re-running
a sweep reuses its finished trials and keeps ASHA's decisions; a killed trial resumes from its
last checkpoint.

Proposals: ``run`` samples the search space with a seeded random generator, so the same spec
proposes the same trial configs every time. ``extend`` uses Optuna's TPE warm-started with every
earlier trial's parameters and validation loss, so new trials go where the old ones did well.
``rerun`` runs exactly the given parameter sets (``sweep resume``: failed or killed trials).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from tunix_rt_pipelines.training.config import TrainingConfig
from tunix_rt_pipelines.training.job import RESULT_FILE, TrainingJob
from tunix_rt_pipelines.tuning.spec import SweepSpec, trial_config, trial_key
from tunix_rt_pipelines.tuning.trials import TrialRecord

PARAMS_FILE = "params.json"
STOPPED_FILE = "stopped_early.json"  # written by the driver for a trial the scheduler stopped
TUNE_METRIC = "val_loss"  # what ASHA and the proposals see; sweep_best ranks by the spec's metric


@dataclass(frozen=True)
class SweepInputs:
    model_dir: str  # the base model's HF folder (shared by every trial)
    train_jsonl: str  # rendered SFT pairs of the dataset's train split
    validation_jsonl: str  # and its validation split
    runs_root: str  # trial run folders go to <runs_root>/<sweep>/<trial_key>


def _finished_result(run_dir: Path) -> dict | None:
    if (run_dir / RESULT_FILE).is_file() and (run_dir / "final" / "config.json").is_file():
        return json.loads((run_dir / RESULT_FILE).read_text())
    return None


def _trainable(params: dict, *, spec: SweepSpec, base: TrainingConfig, inputs: SweepInputs) -> None:
    """One trial, inside a Ray worker."""
    from ray import tune

    cfg = trial_config(base, spec, params)
    key = trial_key(cfg)
    run_dir = Path(inputs.runs_root) / spec.name / key
    stopped = run_dir / STOPPED_FILE
    if stopped.is_file():  # ASHA's decision stands: report what it was stopped with, train nothing
        tune.report(json.loads(stopped.read_text()))
        return
    done = _finished_result(run_dir)
    if done is not None:
        tune.report({"step": done["steps"], TUNE_METRIC: done["final_val_loss"], "final_loss": done["final_loss"],
                     "trial_key": key, "reused": True,
                     "trial_complete": True})
        return
    import torch

    from tunix_rt_pipelines.training.job import run_training

    torch.set_num_threads(max(1, int(spec.cpus_per_trial)))
    t_start = time.time()  # wall clock: intervals of different workers are compared
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "trial.yaml"
    config_path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=True))
    # Marks the trial as started: one that never writes its result was killed (see sweep.unfinished_trials).
    (run_dir / PARAMS_FILE).write_text(json.dumps(params, sort_keys=True))

    def log(s) -> None:  # noqa: ANN001  (training.backend.StepLog)
        print(f"[{key}] step {s.step}/{cfg.steps} loss {s.loss} val_loss {s.val_loss}", flush=True)
        # The last step's validation loss is reported once, after the result is written: Ray ends a
        # trial whose report reaches ASHA's max_t, and this one must get to write its result first.
        if s.val_loss is not None and s.step < cfg.steps:
            tune.report({"step": s.step, TUNE_METRIC: s.val_loss, "final_loss": s.loss, "trial_key": key,
                         "t_start": t_start, "t_end": time.time()})

    job = TrainingJob(config_path=str(config_path), model_dir=inputs.model_dir, train_jsonl=inputs.train_jsonl,
                      validation_jsonl=inputs.validation_jsonl, run_dir=str(run_dir))
    result = run_training(job, say=lambda m: print(f"[{key}] {m}", flush=True), log=log)
    tune.report({"step": result.steps, TUNE_METRIC: result.final_val_loss, "final_loss": result.final_loss,
                 "trial_key": key, "reused": False, "t_start": t_start, "t_end": time.time(),
                 "trial_complete": True})


def param_space(spec: SweepSpec) -> dict:
    from ray import tune

    make = {"choice": lambda a: tune.choice(list(a)), "uniform": lambda a: tune.uniform(*a),
            "loguniform": lambda a: tune.loguniform(*a), "randint": lambda a: tune.randint(*a)}
    return {key: make[d.kind](d.args) for key, d in spec.search_space.items()}


def init_ray(num_cpus: int | None = None) -> str:
    """Join ``RAY_ADDRESS`` when set, else start (or reuse) a local Ray; returns where trials run."""
    import ray

    address = os.environ.get("RAY_ADDRESS")
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=True)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=True,
                     configure_logging=False)
    return address or "local"


def run_trials(
    spec: SweepSpec,
    base: TrainingConfig,
    inputs: SweepInputs,
    *,
    mode: str = "run",
    num_trials: int | None = None,
    history: list[TrialRecord] = (),
    rerun_params: list[dict] = (),
    say: Callable[[str], None] = print,
) -> tuple[list[TrialRecord], dict]:
    """(one record per trial Ray ran, timing) for ``mode`` run | extend | rerun."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    t0 = time.perf_counter()
    where = init_ray()
    t_ray = time.perf_counter() - t0
    origin = {"run": "random", "extend": "warm_start", "rerun": "rerun"}[mode]
    if mode == "rerun":
        if not rerun_params:
            return [], {"ray_start_s": t_ray, "tune_s": 0.0}
        search = BasicVariantGenerator(points_to_evaluate=[dict(p) for p in rerun_params],
                                       max_concurrent=spec.max_concurrent_trials)
        samples = len(rerun_params)
    elif mode == "extend":
        from ray.tune.search.optuna import OptunaSearch

        scored = [t for t in history if t.val_loss is not None]
        search = OptunaSearch(metric=TUNE_METRIC, mode="min", seed=spec.seed + len(history),
                              points_to_evaluate=[t.params for t in scored] or None,
                              evaluated_rewards=[t.val_loss for t in scored] or None)
        samples = num_trials or spec.num_trials
    else:
        search = BasicVariantGenerator(random_state=spec.seed, max_concurrent=spec.max_concurrent_trials)
        samples = num_trials or spec.num_trials
    steps = trial_config(base, spec, {}).steps
    scheduler = (ASHAScheduler(time_attr="step", max_t=steps, grace_period=min(spec.asha.grace_period, steps),
                               reduction_factor=spec.asha.reduction_factor)
                 # A re-run trial was chosen to run before; it is not raced against trials it never met.
                 if spec.scheduler == "asha" and mode != "rerun" else FIFOScheduler())
    trainable = tune.with_resources(tune.with_parameters(_trainable, spec=spec, base=base, inputs=inputs),
                                    {"cpu": spec.cpus_per_trial})
    storage = Path(inputs.runs_root).resolve() / spec.name / "_ray"
    say(f"sweep {spec.name}: {samples} trial(s) ({mode}) on Ray ({where}), {spec.max_concurrent_trials} at a time, "
        f"scheduler {spec.scheduler}")
    tuner = tune.Tuner(
        trainable,
        param_space=param_space(spec),
        tune_config=tune.TuneConfig(metric=TUNE_METRIC, mode="min", search_alg=search, scheduler=scheduler,
                                    num_samples=samples,
                                    max_concurrent_trials=spec.max_concurrent_trials if mode == "extend" else None,
                                    time_budget_s=spec.time_budget_s),
        run_config=tune.RunConfig(name=f"{mode}-{int(time.time())}", storage_path=str(storage),
                                  failure_config=tune.FailureConfig(max_failures=0), verbose=1),
    )
    t1 = time.perf_counter()
    grid = tuner.fit()
    t_tune = time.perf_counter() - t1
    records = []
    for result in grid:
        params = {k: result.config[k] for k in spec.search_space if k in result.config}
        cfg = trial_config(base, spec, params)
        key, m = trial_key(cfg), result.metrics or {}
        run_dir = str(Path(inputs.runs_root) / spec.name / key)
        if result.error is not None:
            status, error = "failed", f"{type(result.error).__name__}: {result.error}"[:2000]
        else:
            # Our own key: Ray fills `done` itself. Only the report after the result file was written has it.
            status, error = ("finished" if m.get("trial_complete") else "stopped_early"), None
            if status == "stopped_early" and Path(run_dir).is_dir():
                last = {k: m[k] for k in ("step", TUNE_METRIC, "final_loss", "trial_key") if k in m}
                (Path(run_dir) / STOPPED_FILE).write_text(json.dumps(last))
        records.append(TrialRecord(
            trial_key=key, params=params, config_hash=cfg.config_hash, status=status,
            val_loss=m.get(TUNE_METRIC), final_loss=m.get("final_loss"), steps_done=int(m.get("step") or 0),
            run_dir=run_dir, error=error, origin=origin))
    say(f"sweep {spec.name}: " + ", ".join(f"{r.trial_key} {r.status} val_loss {r.val_loss}" for r in records))
    intervals = [(m["t_start"], m["t_end"]) for m in (r.metrics or {} for r in grid) if "t_start" in m]
    return records, {"ray_start_s": t_ray, "tune_s": t_tune, "where": where,
                     "train_s_sum": sum(b - a for a, b in intervals), "train_busy_s": _union(intervals)}


def _union(intervals: list[tuple[float, float]]) -> float:
    """Seconds during which at least one trial was training (from its start to its last report)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def spec_as_dict(spec: SweepSpec) -> dict:
    d = asdict(spec)
    d["search_space"] = {k: {v.kind: list(v.args)} for k, v in spec.search_space.items()}
    return d
