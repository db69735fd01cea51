"""A sweep from start to registration, as ``tunix-rt sweep`` runs it on a Dagster instance.

Three kinds of run, each in the run history like any other: the Ray Tune step; one run per
trial partition that has no evaluation yet (store, predict, evaluate); then best trial, gate
and registration. With the daemon running, the eager automation conditions on the trial
assets and ``sweep_best`` do the second and third steps by themselves.
"""

from __future__ import annotations

from collections.abc import Callable

from dagster import DagsterInstance, Definitions

from tunix_rt_pipelines.tuning.assets import sweep_job_name, trial_keys, trials_partitions


def run_sweep_pipeline(defs: Definitions, instance: DagsterInstance, name: str, *, mode: str = "run",
                       num_trials: int = 0, loggers: dict | None = None, trial_ops: dict | None = None,
                       say: Callable[[str], None] = print) -> dict:
    """Returns ``{"sweep": run id, "trials": {key: run id}, "select": run id, "success": bool}``.

    ``loggers``: Dagster logger config for every run; ``trial_ops``: op config of the trial runs
    (e.g. the predictions' ``max_new_tokens``)."""
    base = {"loggers": loggers} if loggers else {}
    sweep_cfg = {**base, "ops": {f"sweep__{name}": {"config": {"mode": mode, "num_trials": num_trials}}}}
    result = defs.resolve_job_def(sweep_job_name(name)).execute_in_process(
        instance=instance, run_config=sweep_cfg, raise_on_error=False)
    out = {"sweep": result.run_id, "trials": {}, "select": None, "success": result.success}
    if not result.success:
        return out
    evaluated = instance.get_materialized_partitions(trial_keys(name)["trial_evaluation"])
    todo = [k for k in instance.get_dynamic_partitions(trials_partitions(name).name) if k not in evaluated]
    say(f"sweep {name}: {len(todo)} trial(s) to store, predict and evaluate")
    trial_job = defs.resolve_job_def(f"sweep_trials_{name}")
    for i, key in enumerate(todo, start=1):
        r = trial_job.execute_in_process(instance=instance, partition_key=key, run_config={**base, "ops": trial_ops or {}},
                                         raise_on_error=False)
        out["trials"][key] = r.run_id
        say(f"  [{i}/{len(todo)}] trial {key}: {'evaluated' if r.success else 'FAILED'}")
        out["success"] &= r.success
    select = defs.resolve_job_def(f"sweep_select_{name}").execute_in_process(
        instance=instance, run_config=base, raise_on_error=False)
    out["select"] = select.run_id
    out["success"] &= select.success
    return out
