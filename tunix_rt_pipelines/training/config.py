"""Training configs: YAML files in ``training/`` validated into typed, frozen dataclasses.

A config names everything a run depends on, so its hash (``config_hash``) identifies the
run's recipe in checkpoint and registry provenance. Unknown keys are errors: a typo such as
``learning_rte`` must not silently fall back to a default.

Errors name the file and the field (``training/x.yaml: optimizer.lr: must be > 0``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

FAMILIES = ("qwen3", "gemma3")


class ConfigError(ValueError):
    """A training config that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class ModelConfig:
    family: Literal["qwen3", "gemma3"] = "qwen3"  # architecture; both backends implement it
    # Where the weights come from: "build:tiny" makes a random-weight model of ``family`` with a
    # tokenizer trained on the dataset (the smoke path); otherwise a local HF folder or a hub id.
    source: str = "build:tiny"
    # Only for source "build:tiny": the architecture's size (ignored for real checkpoints).
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 16
    intermediate_size: int = 256
    vocab_size: int = 2000  # size of the locally trained BPE tokenizer
    max_position_embeddings: int = 2048  # the model's context limit; seq_len may not exceed it


@dataclass(frozen=True)
class LoraConfig:
    enabled: bool = False  # False: full fine-tune
    rank: int = 8  # LoRA rank r
    alpha: float = 16.0  # scaling numerator (scale = alpha / rank)
    # Regex over module paths that get adapters (qwix on JAX, name match on PyTorch).
    target_modules: str = ".*(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj).*"


@dataclass(frozen=True)
class OptimizerConfig:
    name: Literal["adamw", "adafactor"] = "adamw"  # adafactor keeps factored second moments (less memory)
    lr: float = 3e-3  # peak learning rate
    weight_decay: float = 0.0  # decoupled weight decay (AdamW)
    b1: float = 0.9  # AdamW first-moment decay
    b2: float = 0.95  # AdamW second-moment decay
    eps: float = 1e-8  # AdamW epsilon
    grad_clip: float = 1.0  # global-norm clip; 0 disables
    schedule: Literal["constant", "cosine", "linear"] = "cosine"  # decay after warmup
    warmup_steps: int = 20  # linear warmup from 0 to lr
    min_lr_ratio: float = 0.1  # the schedule's floor as a fraction of lr


@dataclass(frozen=True)
class TrainingConfig:
    name: str  # human name of the recipe (file stem by default)
    model: ModelConfig = field(default_factory=ModelConfig)
    backend: Literal["jax", "torch"] = "torch"  # which trainer runs it
    lora: LoraConfig = field(default_factory=LoraConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    seq_len: int = 256  # tokens per row; longer examples are dropped (counted), shorter ones packed
    batch_size: int = 8  # rows per micro-batch
    grad_accum_steps: int = 1  # micro-batches per optimizer step (effective batch = batch_size x this)
    pack: bool = True  # pack several examples per row (isolated by segment ids)
    steps: int = 300  # optimizer steps
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: params and compute in bfloat16 (autocast on torch)
    # torch backend: torch.compile the decoder (fused elementwise kernels; measured 1.1x on the 10M
    # bench model on CPU). The first step pays the compile (tens of seconds on 2 cores), reported as
    # compile_s, so it pays off on long runs only. JAX is always jitted and ignores it.
    compile: bool = False
    seed: int = 0  # init, data order, sampling
    device: Literal["auto", "cpu", "gpu", "tpu"] = "auto"  # an explicit device that is absent is an error
    eval_every: int = 50  # steps between validation-loss evaluations; 0 disables
    eval_batches: int = 4  # validation batches per evaluation
    checkpoint_every: int = 50  # steps between checkpoints (resume points); the last step is always saved
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    log_every: int = 10  # steps between log lines (and loss-curve points)
    dataset: str = "dev_reasoning_sft"  # name of the dataset spec in training/datasets/ to train on
    # Memory guardrail: refuse before any heavy work when the estimate exceeds this share of the
    # device's memory (see training.memory).
    max_memory_fraction: float = 0.85

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accum_steps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def config_hash(self) -> str:
        """sha256 of the canonical JSON of every field: the recipe's identity."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def replace(self, **changes) -> "TrainingConfig":
        """A copy with top-level or dotted (``optimizer.lr``) fields changed, validated again."""
        data = self.to_dict()
        for key, value in changes.items():
            target = data
            *parents, leaf = key.split(".")
            for p in parents:
                if not isinstance(target.get(p), dict):
                    raise ConfigError(f"<replace>: {key}: unknown field")
                target = target[p]
            target[leaf] = value
        return config_from_dict(data, source="<replace>")


def _build(cls: type, data: object, where: str, source: str):  # noqa: ANN202
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where or '<root>'}: expected a mapping, found {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{source}: {where + '.' if where else ''}{unknown[0]}: unknown field "
                          f"(known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, path, source)
        else:
            kwargs[name] = _check_scalar(hint, value, path, source)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{source}: {where or '<root>'}: {e}") from e


def _check_scalar(hint: object, value: object, path: str, source: str) -> object:
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{source}: {path}: {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {path}: expected true or false, found {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {path}: expected an integer, found {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):
            # YAML 1.1 reads `3e-3` (no dot) as a string; accept what float() accepts.
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {path}: expected a number, found {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {path}: expected a string, found {value!r}")
        return value
    return value


def _positive(cfg: TrainingConfig, source: str) -> None:
    checks = {
        "seq_len": cfg.seq_len, "batch_size": cfg.batch_size, "grad_accum_steps": cfg.grad_accum_steps,
        "steps": cfg.steps, "log_every": cfg.log_every, "keep_checkpoints": cfg.keep_checkpoints,
        "checkpoint_every": cfg.checkpoint_every, "model.hidden_size": cfg.model.hidden_size,
        "model.num_layers": cfg.model.num_layers, "model.num_heads": cfg.model.num_heads,
        "model.num_kv_heads": cfg.model.num_kv_heads, "model.head_dim": cfg.model.head_dim,
        "model.vocab_size": cfg.model.vocab_size, "lora.rank": cfg.lora.rank,
        "model.intermediate_size": cfg.model.intermediate_size, "eval_batches": cfg.eval_batches,
    }
    for name, value in checks.items():
        if value <= 0:
            raise ConfigError(f"{source}: {name}: must be > 0, found {value}")
    if not cfg.optimizer.lr > 0:
        raise ConfigError(f"{source}: optimizer.lr: must be > 0, found {cfg.optimizer.lr}")
    if cfg.optimizer.warmup_steps < 0:
        raise ConfigError(f"{source}: optimizer.warmup_steps: must be >= 0, found {cfg.optimizer.warmup_steps}")
    if cfg.eval_every < 0:
        raise ConfigError(f"{source}: eval_every: must be >= 0 (0 disables), found {cfg.eval_every}")
    if cfg.model.num_heads % cfg.model.num_kv_heads:
        raise ConfigError(f"{source}: model.num_kv_heads: must divide model.num_heads "
                          f"({cfg.model.num_heads} % {cfg.model.num_kv_heads} != 0)")
    if cfg.seq_len > cfg.model.max_position_embeddings:
        raise ConfigError(f"{source}: seq_len: {cfg.seq_len} is longer than the model allows "
                          f"(model.max_position_embeddings = {cfg.model.max_position_embeddings})")
    if not 0 < cfg.max_memory_fraction <= 1:
        raise ConfigError(f"{source}: max_memory_fraction: must be in (0, 1], found {cfg.max_memory_fraction}")


def config_from_dict(data: dict, *, source: str = "<dict>", default_name: str = "config") -> TrainingConfig:
    if isinstance(data, dict) and "name" not in data:
        data = {"name": default_name, **data}
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, dict) and model.get("family") not in (None, *FAMILIES):
        raise ConfigError(f"{source}: model.family: unknown family {data['model']['family']!r}; "
                          f"supported: {', '.join(FAMILIES)}")
    cfg = _build(TrainingConfig, data, "", source)
    _positive(cfg, source)
    return cfg


def load_config(path: Path) -> TrainingConfig:
    """Read and validate a YAML training config; errors name the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: no such training config") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    return config_from_dict(data or {}, source=str(path), default_name=path.stem)
