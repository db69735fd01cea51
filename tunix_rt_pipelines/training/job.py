"""One training run as a plain function: data in, backend chosen, guardrail checked, result out.

``run_training`` is what the Pipes worker calls in its subprocess and what tests call directly.
Everything it needs is on disk (config file, base model folder, rendered SFT JSONL), so the
subprocess needs no database and no Dagster instance.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tunix_rt_pipelines.training import stream
from tunix_rt_pipelines.training.backend import LogFn, StepLog, TrainResult
from tunix_rt_pipelines.training.config import TrainingConfig, load_config

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class TrainingJob:
    config_path: str  # the YAML training config
    model_dir: str  # the base model's HF folder
    train_jsonl: str  # rendered SFT pairs {"prompt", "completion"} of the train split
    validation_jsonl: str  # the same for the validation split
    run_dir: str  # owned by this run: checkpoints/, final/, result.json; stable across retries

    def as_dict(self) -> dict:
        return asdict(self)


def read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    with Path(path).open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                pairs.append((rec["prompt"], rec["completion"]))
            except (ValueError, KeyError) as e:
                raise ValueError(f"{path}:{line_no}: not a prompt/completion record: {e}") from e
    return pairs


def backend_module(cfg: TrainingConfig):  # noqa: ANN201
    """The backend named by the config, imported only when used (JAX and torch are heavy)."""
    if cfg.backend == "torch":
        from tunix_rt_pipelines.training import torch_backend

        return torch_backend
    from tunix_rt_pipelines.training import jax_backend

    return jax_backend


def device_memory(cfg: TrainingConfig) -> tuple[str, int | None]:
    from tunix_rt_pipelines.training.accelerator import resolve_jax_devices, resolve_torch_device

    info = resolve_torch_device(cfg.device) if cfg.backend == "torch" else resolve_jax_devices(cfg.device)
    return info.description, info.memory_bytes


def check_memory(cfg: TrainingConfig, model_dir: Path, say: Callable[[str], None]) -> None:
    """Refuse, before any heavy work, a config whose estimate does not fit the device."""
    from tunix_rt_pipelines.training.base_model import read_hf_config
    from tunix_rt_pipelines.training.memory import check_fits, estimate_memory

    description, memory = device_memory(cfg)
    estimate = estimate_memory(cfg, read_hf_config(model_dir))
    say(f"device: {description}")
    say("memory estimate:\n" + estimate.table())
    check_fits(estimate, memory, cfg.max_memory_fraction)


def check_model_folder(model_dir: Path) -> None:
    """An HF folder with weights and a tokenizer, or a clear error before anything loads."""
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: not an HF model folder (no config.json)")
    if not any(model_dir.glob("*.safetensors")):
        raise FileNotFoundError(f"{model_dir}: no *.safetensors weights")
    if not ((model_dir / "tokenizer.json").is_file() or (model_dir / "tokenizer.model").is_file()):
        raise FileNotFoundError(f"{model_dir}: no tokenizer (tokenizer.json or tokenizer.model); "
                                "save the tokenizer next to the weights")


def run_training(job: TrainingJob, *, say: Callable[[str], None] = print, log: LogFn | None = None) -> TrainResult:
    """Validate everything cheap first (config, folder, memory), then train; writes run_dir/result.json."""
    from transformers import AutoTokenizer

    cfg = load_config(Path(job.config_path))
    model_dir = Path(job.model_dir)
    check_model_folder(model_dir)
    check_memory(cfg, model_dir, say)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    train, train_stats = stream.tokenize_pairs(tokenizer, read_pairs(Path(job.train_jsonl)), seq_len=cfg.seq_len)
    val, _ = stream.tokenize_pairs(tokenizer, read_pairs(Path(job.validation_jsonl)), seq_len=cfg.seq_len)
    say(f"examples: {train_stats.n_kept} train ({train_stats.n_too_long} longer than seq_len {cfg.seq_len} dropped), "
        f"{len(val)} validation; backend {cfg.backend}, {cfg.steps} steps")

    def default_log(s: StepLog) -> None:
        val_part = f" val_loss {s.val_loss:.4f}" if s.val_loss is not None else ""
        loss = f"{s.loss:.4f}" if s.loss is not None else "-"
        say(f"step {s.step}/{cfg.steps} loss {loss}{val_part} lr {s.lr:.2e} tokens {s.tokens:,} "
            f"({s.tokens / max(s.elapsed_s, 1e-9):,.0f} tok/s)")

    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = backend_module(cfg).train(cfg, model_dir, train, val, run_dir, log=log or default_log)
    (run_dir / RESULT_FILE).write_text(json.dumps({**result.as_dict(), "config_hash": cfg.config_hash,
                                                   "n_train_examples": len(train), "n_too_long": train_stats.n_too_long},
                                                  indent=1))
    return result
