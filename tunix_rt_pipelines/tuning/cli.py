"""``tunix-rt sweep run|extend|resume|status``: sweeps by hand, as Dagster runs on the home's instance."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tunix_rt_pipelines.core.settings import REPO_ROOT, Settings

SWEEPS_DIR = REPO_ROOT / "training" / "sweeps"
_QUIET = {"console": {"config": {"log_level": "INFO"}}}


def _spec_name(spec: str) -> str:
    """A spec file (in training/sweeps/) or a sweep name -> the sweep's name, validated."""
    from tunix_rt_pipelines.tuning.spec import SweepSpecError, load_sweep_spec

    path = Path(spec)
    if not path.suffix:
        path = SWEEPS_DIR / f"{spec}.yaml"
    if not path.is_file():
        raise click.ClickException(f"{spec}: no such sweep spec (specs live in training/sweeps/)")
    if path.resolve().parent != SWEEPS_DIR.resolve():
        raise click.ClickException(f"{path}: sweep specs must live in training/sweeps/ so the code location "
                                   "(and the UI) has their assets; move it there")
    try:
        return load_sweep_spec(path).name
    except SweepSpecError as e:
        raise click.ClickException(str(e)) from e


def _pipeline(spec: str, mode: str, trials: int) -> None:
    from tunix_rt_pipelines.definitions import build_definitions
    from tunix_rt_pipelines.tuning.run import run_sweep_pipeline

    name = _spec_name(spec)
    settings = Settings.from_env()
    instance = settings.dagster_instance()  # points DAGSTER_HOME at the home first
    out = run_sweep_pipeline(build_definitions(settings), instance, name, mode=mode, num_trials=trials,
                             loggers=_QUIET, say=click.echo)
    _status(name, as_json=False)
    if not out["success"]:
        raise click.ClickException(f"sweep {name}: a run failed (sweep run {out['sweep'][:8]}); see the UI's runs")


@click.group()
def sweep() -> None:
    """Hyperparameter sweeps on Ray Tune (local Ray, or the cluster named by RAY_ADDRESS)."""


@sweep.command("run")
@click.argument("spec")
@click.option("--trials", default=0, help="Trials to propose [default: the spec's num_trials].")
def sweep_run(spec: str, trials: int) -> None:
    """Run SPEC (a file in training/sweeps/ or its name): finished trials are reused, then best trial, gate, registry."""
    _pipeline(spec, "run", trials)


@sweep.command("extend")
@click.argument("spec")
@click.option("--trials", required=True, type=click.IntRange(min=1), help="Trials to add.")
def sweep_extend(spec: str, trials: int) -> None:
    """Add TRIALS to a finished sweep, proposed by Optuna warm-started from its results."""
    _pipeline(spec, "extend", trials)


@sweep.command("resume")
@click.argument("spec")
def sweep_resume(spec: str) -> None:
    """Re-run, alone, every failed or killed trial of the sweep (trials ASHA stopped stay stopped)."""
    _pipeline(spec, "resume", 0)


@sweep.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def sweep_status(name: str, as_json: bool) -> None:
    """Every trial of sweep NAME with its status, parameters and metric; the best one marked."""
    _status(name, as_json)


def _status(name: str, as_json: bool) -> None:
    from tunix_rt_pipelines.traces.store import TraceStore
    from tunix_rt_pipelines.tuning.trials import sweep_row, trials_of

    engine = TraceStore(Settings.from_env().database_url).engine
    row = sweep_row(engine, name)
    if row is None:
        raise click.ClickException(f"no sweep {name!r} has run here")
    trials = trials_of(engine, name)
    if as_json:
        click.echo(json.dumps({"sweep": row, "trials": [t.__dict__ for t in trials]}, indent=2, default=str))
        return
    counts = {s: sum(t.status == s for t in trials) for s in ("finished", "stopped_early", "failed", "running")}
    click.echo(f"sweep {name}: {row['status']}, {len(trials)} trials " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for t in sorted(trials, key=lambda t: (t.val_loss is None, t.val_loss or 0)):
        best = " *best*" if t.trial_key == row["best_trial_key"] else ""
        val = "   n/a" if t.val_loss is None else f"{t.val_loss:.4f}"
        click.echo(f"  {t.trial_key}  {t.status:<13} {t.origin:<10} val_loss {val}  steps {t.steps_done:>5}  "
                   f"{json.dumps(t.params, sort_keys=True)}{best}" + (f"  error: {t.error[:80]}" if t.error else ""))
