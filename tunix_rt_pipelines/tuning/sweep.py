"""A sweep end to end, as plain functions: run / extend / resume, then the best trial.

``execute_sweep`` validates nothing itself (the spec did), asks Ray Tune for the trials the mode
calls for, and records every one of them. ``resume`` re-runs, alone, every trial that failed
and every trial that started but never finished (its folder has ``params.json`` but no result:
killed with its worker or its sweep); trials ASHA stopped are not resumed, that was a decision.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from tunix_rt_pipelines.training.config import TrainingConfig
from tunix_rt_pipelines.training.job import RESULT_FILE
from tunix_rt_pipelines.tuning.ray_tune import PARAMS_FILE, SweepInputs, run_trials, spec_as_dict
from tunix_rt_pipelines.tuning.spec import SweepSpec
from tunix_rt_pipelines.tuning.trials import TrialRecord, record_trials, save_sweep, set_sweep_status, trials_of

MODES = ("run", "extend", "resume")


def unfinished_trials(spec: SweepSpec, inputs: SweepInputs, recorded: list[TrialRecord]) -> list[dict]:
    """Parameter sets of failed trials and of trials that started but never finished."""
    by_key = {t.trial_key: t for t in recorded}
    params = [t.params for t in recorded if t.status in ("failed", "running")]
    folder = Path(inputs.runs_root) / spec.name
    for marker in sorted(folder.glob(f"*/{PARAMS_FILE}")) if folder.is_dir() else []:
        key = marker.parent.name
        known = by_key.get(key)
        if not (marker.parent / RESULT_FILE).is_file() and (known is None or known.status == "running"):
            params.append(json.loads(marker.read_text()))
    unique = {json.dumps(p, sort_keys=True): p for p in params}
    return list(unique.values())


def execute_sweep(engine: sa.Engine, spec: SweepSpec, base: TrainingConfig, inputs: SweepInputs, *, mode: str = "run",
                  num_trials: int | None = None, run_id: str | None = None,
                  say: Callable[[str], None] = print) -> tuple[list[TrialRecord], dict]:
    """Run the mode's trials on Ray Tune; every trial recorded. Returns (all trials of the sweep, timing)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    history = trials_of(engine, spec.name)
    if mode == "extend" and not history:
        raise ValueError(f"sweep {spec.name} has no trials to extend: run it first")
    save_sweep(engine, spec.name, spec_as_dict(spec), "running")
    rerun = unfinished_trials(spec, inputs, history) if mode == "resume" else []
    if mode == "resume":
        say(f"sweep {spec.name}: resuming {len(rerun)} unfinished trial(s)")
    try:
        records, timing = run_trials(spec, base, inputs, mode="rerun" if mode == "resume" else mode,
                                     num_trials=num_trials, history=history, rerun_params=rerun, say=say)
    except BaseException:
        set_sweep_status(engine, spec.name, "failed")
        raise
    record_trials(engine, spec.name, [TrialRecord(**{**r.__dict__, "dagster_run_id": run_id}) for r in records])
    trials = trials_of(engine, spec.name)
    set_sweep_status(engine, spec.name, "finished")
    return trials, timing


def rank_trials(trials: list[TrialRecord], metric: str, scores: dict[str, float | None]) -> list[TrialRecord]:
    """Finished trials, best first. ``scores``: trial key -> primary score (for metric primary_score)."""
    def value(t: TrialRecord) -> float:
        if metric == "primary_score":
            v = scores.get(t.trial_key)
            return -v if v is not None else math.inf
        v = t.val_loss if metric == "val_loss" else t.final_loss
        return v if v is not None else math.inf
    finished = [t for t in trials if t.status == "finished"]
    return sorted(finished, key=lambda t: (value(t), t.trial_key))
