"""Sweep specs: YAML files in ``training/sweeps/`` validated into a typed, frozen dataclass.

A spec names a base training config, a search space over its (dotted) fields, the metric to
optimise and how trials are scheduled::

    name: smoke_lr
    base_config: smoke_tiny.yaml          # in training/
    overrides: {steps: 300}               # fixed for every trial
    search_space:
      optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}
      batch_size: {choice: [4, 8]}
      optimizer.warmup_steps: {randint: [0, 100]}     # low inclusive, high exclusive (Ray's randint)
      optimizer.weight_decay: {uniform: [0.0, 0.1]}
    metric: val_loss                      # val_loss | final_loss (min) or primary_score (max)
    mode: min
    num_trials: 16
    scheduler: asha                       # asha (default) or none
    max_concurrent_trials: 2
    time_budget_s: 3600

Every error names the file and the field (``training/sweeps/x.yaml: search_space.optimizer.lr:
loguniform needs 0 < low < high``). A search-space key must be a field of the training config,
checked by building a trial config from the base with a sampled value, so a typo is an error
here and not a failed trial an hour later.

A trial's identity is its full training config: ``trial_key`` is the first 16 hex characters of
its ``config_hash``, so re-running a sweep proposes the same keys for the same configs and the
finished ones are reused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from tunix_rt_pipelines.training.config import ConfigError, TrainingConfig, load_config

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")
METRIC_MODES = {"val_loss": "min", "final_loss": "min", "primary_score": "max"}


class SweepSpecError(ValueError):
    """A sweep spec that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Distribution:
    kind: Literal["choice", "uniform", "loguniform", "randint"]
    args: tuple  # choice: the values; others: (low, high)


@dataclass(frozen=True)
class AshaSettings:
    grace_period: int = 100  # steps every trial runs before it can be stopped
    reduction_factor: int = 2  # keep the best 1/reduction_factor at each rung


@dataclass(frozen=True)
class SweepSpec:
    name: str  # the sweep's name; its trials are partitions of the trial assets
    base_config: str  # training config file in training/ that trials start from
    search_space: dict[str, Distribution]  # dotted training-config field -> distribution
    overrides: dict = field(default_factory=dict)  # fixed changes to the base for every trial
    metric: Literal["val_loss", "final_loss", "primary_score"] = "val_loss"  # what the best trial optimises
    mode: Literal["min", "max"] = "min"  # must agree with the metric
    num_trials: int = 8  # trials Ray Tune proposes (finished ones are reused, not re-run)
    scheduler: Literal["asha", "none"] = "asha"  # asha: stop poor trials early on validation loss
    asha: AshaSettings = field(default_factory=AshaSettings)
    max_concurrent_trials: int = 2  # trials running at once (each trial uses cpus_per_trial)
    cpus_per_trial: float = 1.0  # Ray resources reserved per trial
    time_budget_s: float | None = None  # stop proposing trials after this long (None: no limit)
    seed: int = 0  # the search algorithm's seed: same seed, same proposals
    source: str = ""  # the file it was read from (for messages)


def _fail(source: str, path: str, message: str) -> SweepSpecError:
    return SweepSpecError(f"{source}: {path}: {message}")


def _number(value: object) -> float | None:
    if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            return None
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)


def parse_distribution(value: object, path: str, source: str) -> Distribution:
    if not isinstance(value, dict) or len(value) != 1:
        raise _fail(source, path, f"expected one of {{{', '.join(DISTRIBUTIONS)}: ...}}, found {value!r}")
    ((kind, args),) = value.items()
    if kind not in DISTRIBUTIONS:
        raise _fail(source, path, f"unknown distribution {kind!r}; use one of {', '.join(DISTRIBUTIONS)}")
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise _fail(source, path, "choice needs a non-empty list of values")
        return Distribution("choice", tuple(args))
    if not isinstance(args, list) or len(args) != 2:
        raise _fail(source, path, f"{kind} needs [low, high]")
    if kind == "randint":
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in args) or not args[0] < args[1]:
            raise _fail(source, path, "randint needs integers low < high (high exclusive)")
        return Distribution("randint", tuple(args))
    low, high = (_number(a) for a in args)
    if low is None or high is None or not low < high or not (math.isfinite(low) and math.isfinite(high)):
        raise _fail(source, path, f"{kind} needs numbers low < high, found {args!r}")
    if kind == "loguniform" and low <= 0:
        raise _fail(source, path, "loguniform needs 0 < low < high")
    return Distribution(kind, (low, high))


def trial_config(base: TrainingConfig, spec: SweepSpec, params: dict) -> TrainingConfig:
    """The training config of one trial: base, then overrides, then the sampled ``params``."""
    cfg = base.replace(**spec.overrides) if spec.overrides else base
    return cfg.replace(**params, name=spec.name)


def trial_key(cfg: TrainingConfig) -> str:
    return cfg.config_hash[:16]


def base_config(spec: SweepSpec, training_dir: Path) -> TrainingConfig:
    return load_config(training_dir / spec.base_config)


def load_sweep_spec(path: Path, training_dir: Path | None = None) -> SweepSpec:
    """Read and validate ``path``; ``training_dir`` (default: the spec's grandparent) holds base configs."""
    path = Path(path)
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise SweepSpecError(f"{source}: no such sweep spec") from e
    except yaml.YAMLError as e:
        raise SweepSpecError(f"{source}: not valid YAML: {e}") from e
    return spec_from_dict(data or {}, source=source, training_dir=training_dir or path.parent.parent,
                          default_name=path.stem)


def spec_from_dict(data: dict, *, source: str, training_dir: Path, default_name: str = "sweep") -> SweepSpec:
    if not isinstance(data, dict):
        raise SweepSpecError(f"{source}: <root>: expected a mapping")
    known = set(SweepSpec.__dataclass_fields__) - {"source"}
    for key in data:
        if key not in known:
            raise _fail(source, key, f"unknown field (known: {', '.join(sorted(known))})")
    for required in ("base_config", "search_space"):
        if required not in data:
            raise _fail(source, required, "required")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.replace("_", "").isalnum() or not name.islower():
        raise _fail(source, "name", f"{name!r}: use lower-case letters, digits and '_'")
    space_raw = data["search_space"]
    if not isinstance(space_raw, dict) or not space_raw:
        raise _fail(source, "search_space", "a non-empty mapping of training-config fields to distributions")
    space = {k: parse_distribution(v, f"search_space.{k}", source) for k, v in space_raw.items()}
    metric = data.get("metric", "val_loss")
    if metric not in METRIC_MODES:
        raise _fail(source, "metric", f"{metric!r} is not one of {', '.join(METRIC_MODES)}")
    mode = data.get("mode", METRIC_MODES[metric])
    if mode != METRIC_MODES[metric]:
        raise _fail(source, "mode", f"{metric} is optimised with mode {METRIC_MODES[metric]!r}, not {mode!r}")
    ints = {"num_trials": data.get("num_trials", 8), "max_concurrent_trials": data.get("max_concurrent_trials", 2),
            "seed": data.get("seed", 0)}
    for key, value in ints.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "seed" else 1):
            raise _fail(source, key, f"expected a positive integer, found {value!r}")
    scheduler = data.get("scheduler", "asha")
    if scheduler not in ("asha", "none"):
        raise _fail(source, "scheduler", f"{scheduler!r} is not 'asha' or 'none'")
    asha_raw = data.get("asha", {}) or {}
    if not isinstance(asha_raw, dict) or set(asha_raw) - {"grace_period", "reduction_factor"}:
        raise _fail(source, "asha", "only grace_period and reduction_factor can be set")
    asha = AshaSettings(**asha_raw)
    if asha.grace_period < 1 or asha.reduction_factor < 2:
        raise _fail(source, "asha", "grace_period must be >= 1 and reduction_factor >= 2")
    budget = data.get("time_budget_s")
    if budget is not None and (_number(budget) is None or _number(budget) <= 0):
        raise _fail(source, "time_budget_s", f"expected seconds > 0, found {budget!r}")
    cpus = _number(data.get("cpus_per_trial", 1.0))
    if cpus is None or cpus <= 0:
        raise _fail(source, "cpus_per_trial", "expected a number > 0")
    overrides = data.get("overrides", {}) or {}
    if not isinstance(overrides, dict):
        raise _fail(source, "overrides", "expected a mapping of training-config fields to values")
    spec = SweepSpec(name=name, base_config=str(data["base_config"]), search_space=space, overrides=overrides,
                     metric=metric, mode=mode, scheduler=scheduler, asha=asha, cpus_per_trial=cpus,
                     time_budget_s=_number(budget) if budget is not None else None, source=source, **ints)
    try:
        base = base_config(spec, training_dir)
    except ConfigError as e:
        raise _fail(source, "base_config", str(e)) from e
    for key, dist in space.items():  # every key must be a real field, every value type-correct
        try:
            for value in dist.args:  # every choice, or both ends of a range
                trial_config(base, spec, {key: value})
        except ConfigError as e:
            raise _fail(source, f"search_space.{key}", str(e).split(": ", 1)[-1]) from e
    return spec
