"""The PyTorch training backend: a compact loop of our own over the shared token stream.

Contract: ``backend.train``. What this loop does, and why:

* Weights stay float32; ``precision: bf16`` runs the forward under bf16 autocast where the
  device has native bf16 matmuls (fp32 master weights keep small updates from rounding away).
* Packed rows: each example attends only to itself through ``packed_attention`` (the examples
  gathered out of the rows into one causal batch where that is cheaper than masking the rows),
  so longer rows, which pack fuller, do not pay the mask's T² in attention.
* The loss is ours: cross-entropy on integer labels of target positions only, summed and
  divided by the target tokens of the whole optimizer step, so gradient accumulation gives the
  gradient of one big batch however unevenly the targets fall across micro-batches.
* Checkpoints (``checkpoints/step_<N>/``) hold the trainable weights, the optimizer state, the
  RNG states, the step, the config hash, the loss history and a sha256 of every file; they are
  written to a temporary folder and renamed, with ``COMPLETE`` written last. Resume takes the
  newest checkpoint that verifies and replays the data stream from its step.
* LoRA is a small wrapper of our own (``LoraLinear``), merged into the base weights at export.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from tunix_rt_pipelines.training import packed_attention, stream
from tunix_rt_pipelines.training.accelerator import resolve_torch_device
from tunix_rt_pipelines.training.backend import CheckpointError, LogFn, NonFiniteLoss, StepLog, TrainResult
from tunix_rt_pipelines.training.config import LoraConfig, OptimizerConfig, TrainingConfig

logger = logging.getLogger(__name__)

COMPLETE = "COMPLETE"  # written last into a checkpoint folder: without it the folder is half-written
_WEIGHTS = "model.safetensors"
_TRAINER_STATE = "trainer_state.pt"  # optimizer state and RNG states
_STATE = "state.json"  # step, config hash, loss history, file checksums
_STEP_DIR = re.compile(r"step_(\d+)")
# Target positions per lm_head call. Above this, each chunk's [rows, vocab] logits are recomputed
# in the backward pass instead of kept, so a 150k vocabulary does not hold all logits at once.
_LOGIT_CHUNK_ROWS = 4096


# --- LoRA -------------------------------------------------------------------------------------


class LoraLinear(nn.Module):
    """``base(x) + scale * (x A^T) B^T`` with ``base`` frozen; B starts at zero, so step 0 is the base model."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, dtype=w.dtype, device=w.device))  # [r, in]
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=w.dtype, device=w.device))  # [out, r]
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's own init, as peft does

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [..., in] -> [..., out]
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scale

    def merged(self) -> nn.Linear:
        """The base linear with the adapter folded in: W + scale * B A."""
        with torch.no_grad():
            self.base.weight += self.scale * (self.lora_B @ self.lora_A).to(self.base.weight.dtype)  # [out, in]
        return self.base


def _replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def add_lora(model: nn.Module, lora: LoraConfig) -> list[str]:
    """Freeze ``model`` and wrap every ``nn.Linear`` whose path fully matches ``lora.target_modules``.

    Returns the wrapped module paths; no match is an error (a typo in the regex would
    otherwise train nothing at all).
    """
    pattern = re.compile(lora.target_modules)
    for p in model.parameters():
        p.requires_grad_(False)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and pattern.fullmatch(n)]
    if not names:
        raise ValueError(f"lora.target_modules {lora.target_modules!r} matches no linear layer of the model")
    for name in names:
        _replace_module(model, name, LoraLinear(model.get_submodule(name), lora.rank, lora.alpha))
    return names


def merge_lora(model: nn.Module) -> None:
    """Fold every adapter into its base weight, leaving the plain architecture (what HF can load)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLinear):
            _replace_module(model, name, module.merged())


# --- loss -------------------------------------------------------------------------------------


def _chunk_loss_sum(head: nn.Module, hidden: torch.Tensor, labels: torch.Tensor, softcap: float | None) -> torch.Tensor:
    logits = head(hidden).float()  # [n, V]; the softmax in float32 even under bf16 autocast
    if softcap is not None:  # Gemma's final-logit soft-capping, as its forward applies it
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits, labels, reduction="sum")


def token_loss_sum(model: PreTrainedModel, batch: stream.TokenBatch, device: torch.device) -> torch.Tensor:
    """Summed cross-entropy of ``batch``'s targets: ``CE(logits[:, :-1], ids[:, 1:])`` where ``loss_mask[:, 1:]``.

    Only the hidden states that predict a target go through ``lm_head``: the logits of prompts
    and padding are never built.
    """
    ids = torch.from_numpy(batch.input_ids).to(device, torch.long)  # [B, T]
    positions = torch.from_numpy(batch.positions).to(device, torch.long)  # [B, T]
    targets = torch.from_numpy(batch.loss_mask[:, 1:]).to(device).bool()  # [B, T-1]
    layout = packed_attention.layout_kwargs(batch.segment_ids, batch.positions, device)  # each example on its own
    hidden = model.get_decoder()(input_ids=ids, position_ids=positions, use_cache=False, **layout).last_hidden_state
    # hidden: [B, T, H]
    h = hidden[:, :-1][targets]  # [N, H]: states at t that predict the target at t + 1
    labels = ids[:, 1:][targets]  # [N]
    head = model.get_output_embeddings()
    softcap = getattr(model.config, "final_logit_softcapping", None)
    if h.shape[0] <= _LOGIT_CHUNK_ROWS:
        return _chunk_loss_sum(head, h, labels, softcap)
    total = h.new_zeros((), dtype=torch.float32)
    for start in range(0, h.shape[0], _LOGIT_CHUNK_ROWS):
        end = start + _LOGIT_CHUNK_ROWS
        total = total + checkpoint(_chunk_loss_sum, head, h[start:end], labels[start:end], softcap,
                                   use_reentrant=False)
    return total


def _n_targets(batch: stream.TokenBatch) -> int:
    # Position 0 predicts nothing: a row whose first token were a target would not count it.
    return int(batch.loss_mask[:, 1:].sum())


def _autocast(device: torch.device, bf16: bool) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def accumulate_gradients(
    model: PreTrainedModel, micro_batches: Sequence[stream.TokenBatch], device: torch.device, *, bf16: bool = False
) -> torch.Tensor:
    """Backward over one optimizer step's micro-batches; returns the step's mean target loss (detached).

    Each micro-batch's summed loss is divided by the target count of the *whole step*, so the
    accumulated gradient equals that of the micro-batches concatenated into one batch.
    """
    n_targets = max(1, sum(_n_targets(b) for b in micro_batches))
    total = torch.zeros((), device=device)
    for batch in micro_batches:
        with _autocast(device, bf16):
            loss_sum = token_loss_sum(model, batch, device)
        (loss_sum / n_targets).backward()
        total += loss_sum.detach()
    return total / n_targets


def optimizer_step(
    model: PreTrainedModel,
    optimizer: torch.optim.Optimizer,
    params: list[nn.Parameter],
    micro_batches: Sequence[stream.TokenBatch],
    *,
    lr: float,
    grad_clip: float | None,
    device: torch.device,
    bf16: bool = False,
    step: int = 0,
) -> float:
    """One update from ``micro_batches`` at ``lr``: gradients, global-norm clip, optimizer step.

    Returns the step's mean target loss. Raises ``NonFiniteLoss`` (naming ``step + 1``) before
    the update when the loss or the gradient norm is not finite, so the weights stay as they were.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = accumulate_gradients(model, micro_batches, device, bf16=bf16)
    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip or math.inf)
    loss_value, norm_value = torch.stack([loss, grad_norm.to(loss.device)]).tolist()  # one device sync
    if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
        raise NonFiniteLoss(f"step {step + 1}: loss {loss_value}, gradient norm {norm_value} (lr {lr:g})")
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_value


@torch.no_grad()
def evaluate(
    model: PreTrainedModel, batches: Iterator[stream.TokenBatch], device: torch.device, *, bf16: bool = False
) -> float | None:
    """Target-token-weighted mean loss over ``batches``; None when they hold no target.

    Eager even when the decoder was compiled for training: a few no-grad batches would
    otherwise pay a second compile (eval mode, no autograd) that costs more than they take.
    """
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    with torch.compiler.set_stance("force_eager"):
        for batch in batches:
            with _autocast(device, bf16):
                total += token_loss_sum(model, batch, device).item()
            n += _n_targets(batch)
    model.train(was_training)
    return total / n if n else None


# --- optimizer and schedule -------------------------------------------------------------------


def learning_rate(opt: OptimizerConfig, total_steps: int, step: int) -> float:
    """The lr of the update from ``step`` to ``step + 1``.

    optax's convention (``warmup_cosine_decay_schedule`` with ``init_value=0``), so both
    backends follow the same curve: linear warmup from 0, then decay to ``lr * min_lr_ratio``
    at ``total_steps``.
    """
    peak, floor = opt.lr, opt.lr * opt.min_lr_ratio
    if step < opt.warmup_steps:
        return peak * step / opt.warmup_steps
    if opt.schedule == "constant":
        return peak
    frac = min(1.0, (step - opt.warmup_steps) / max(1, total_steps - opt.warmup_steps))
    if opt.schedule == "linear":
        return peak + (floor - peak) * frac
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))


def _make_optimizer(opt: OptimizerConfig, params: list[nn.Parameter], device: torch.device) -> torch.optim.Optimizer:
    if opt.name == "adamw":
        # Fused (one kernel over all parameters) on CUDA and CPU: on the 10M bench config the CPU
        # step was 1.02-1.03x faster than with torch's default (foreach), alternating in one process.
        fused = True if device.type in ("cuda", "cpu") else None
        return torch.optim.AdamW(params, lr=opt.lr, betas=(opt.b1, opt.b2), eps=opt.eps,
                                 weight_decay=opt.weight_decay, fused=fused)
    return torch.optim.Adafactor(params, lr=opt.lr, weight_decay=opt.weight_decay)


# --- checkpoints ------------------------------------------------------------------------------


class _CorruptCheckpoint(Exception):
    """A complete checkpoint folder whose contents do not verify: resume falls back to an older one."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    # named_parameters() lists a tied weight once, so safetensors never sees shared storage.
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dirs(root: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``step_<N>`` folder under ``root``, newest first (complete or not)."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.fullmatch(p.name))]
    return sorted(found, reverse=True)


def save_checkpoint(
    root: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainingConfig,
    history: list[dict],
) -> Path:
    """Write ``root/step_<step>`` atomically: a temporary folder, ``COMPLETE`` last, then a rename."""
    final = root / f"step_{step}"
    tmp = root / f".tmp_step_{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({n: p.detach().contiguous().cpu() for n, p in _trainable(model).items()}, str(tmp / _WEIGHTS))
    torch.save({"optimizer": optimizer.state_dict(), "rng": _rng_state()}, tmp / _TRAINER_STATE)
    state = {
        "step": step,
        "config_hash": cfg.config_hash,
        "history": history,
        "sha256": {f: _sha256(tmp / f) for f in (_WEIGHTS, _TRAINER_STATE)},
    }
    (tmp / _STATE).write_text(json.dumps(state), encoding="utf-8")
    (tmp / COMPLETE).write_text("", encoding="utf-8")
    if final.exists():  # a corrupt folder of this step, skipped on resume, is replaced
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def _load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainingConfig) -> dict:
    """Restore weights, optimizer and RNG from ``folder``; returns its state.json.

    A different config hash raises ``CheckpointError`` (resuming another recipe is a mistake,
    not damage); anything that fails to verify raises ``_CorruptCheckpoint``.
    """
    try:
        state = json.loads((folder / _STATE).read_text(encoding="utf-8"))
        step, config_hash, checksums = int(state["step"]), state["config_hash"], state["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise _CorruptCheckpoint(f"{folder}: unreadable {_STATE}: {e}") from e
    if config_hash != cfg.config_hash:
        raise CheckpointError(f"{folder}: written by config {config_hash[:12]}, this run is {cfg.config_hash[:12]}; "
                              f"use a new run folder for a changed config")
    for name, digest in checksums.items():
        if not (folder / name).is_file() or _sha256(folder / name) != digest:
            raise _CorruptCheckpoint(f"{folder}: {name} is missing or does not match its sha256")
    try:
        tensors = load_file(str(folder / _WEIGHTS))
        trainer = torch.load(folder / _TRAINER_STATE, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (any failure to parse verified bytes means the folder is unusable)
        raise _CorruptCheckpoint(f"{folder}: {e}") from e
    params = _trainable(model)
    if set(tensors) != set(params):
        raise _CorruptCheckpoint(f"{folder}: holds other parameters than the model trains "
                                 f"({len(tensors)} vs {len(params)})")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[name])
    optimizer.load_state_dict(trainer["optimizer"])
    _set_rng_state(trainer["rng"])
    logger.info("resumed from %s (step %d)", folder, step)
    return state


def resume(root: Path, model: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainingConfig) -> dict | None:
    """Load the newest checkpoint that verifies; None when there is none to resume.

    Half-written folders (no ``COMPLETE``) and corrupt ones are skipped, newer unusable
    folders deleted (the run rewrites those steps). Complete checkpoints of which none loads
    raise ``CheckpointError``: silently starting over would throw away a run's progress.
    """
    if root.is_dir():
        for stale in root.glob(".tmp_step_*"):  # a save interrupted before its rename
            shutil.rmtree(stale)
    skipped: list[Path] = []
    for step, folder in checkpoint_dirs(root):
        if not (folder / COMPLETE).is_file():
            logger.warning("skipping half-written checkpoint %s", folder)
            skipped.append(folder)
            continue
        try:
            state = _load_checkpoint(folder, model, optimizer, cfg)
        except _CorruptCheckpoint as e:
            logger.warning("skipping corrupt checkpoint: %s", e)
            skipped.append(folder)
            continue
        for folder_ in skipped:
            shutil.rmtree(folder_)
        return state
    if any((folder / COMPLETE).is_file() for folder in skipped):
        raise CheckpointError(f"{root}: no complete checkpoint could be loaded (all are corrupt)")
    return None


def _prune(root: Path, keep: int) -> None:
    for _, folder in checkpoint_dirs(root)[keep:]:
        shutil.rmtree(folder)


# --- export -----------------------------------------------------------------------------------


def export_hf(model: PreTrainedModel, tokenizer, out_dir: Path) -> Path:  # noqa: ANN001  (a transformers tokenizer)
    """Save ``model`` (LoRA merged) and its tokenizer as an HF folder, via a temporary folder."""
    merge_lora(model)
    tmp = out_dir.with_name(f".tmp_{out_dir.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


# --- the loop ---------------------------------------------------------------------------------


def load_for_training(
    cfg: TrainingConfig, model_dir: Path, device: torch.device
) -> tuple[PreTrainedModel, list[nn.Parameter], torch.optim.Optimizer]:
    """(model, trainable parameters, optimizer) as ``train`` starts from them: fp32 weights on
    ``device``, LoRA adapters when the config asks, the decoder compiled when it asks."""
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).to(device)
    packed_attention.enable(model)
    if cfg.lora.enabled:
        add_lora(model, cfg.lora)
    params = list(_trainable(model).values())
    optimizer = _make_optimizer(cfg.optimizer, params, device)
    if cfg.compile:
        # In place (nn.Module.compile): parameter names, and so checkpoints, stay those of the
        # eager model. Every packed batch is [batch_size, seq_len]; only the examples' layout
        # varies, and packed_attention marks those dimensions dynamic (a batch that takes the
        # masked path, or a sliding window first exceeded, compiles once more). The loss head
        # stays eager: it selects target rows, a data-dependent shape.
        model.get_decoder().compile()
    return model, params, optimizer


def train(
    cfg: TrainingConfig,
    model_dir: Path,
    train_examples: Sequence[stream.TokenizedExample],
    val_examples: Sequence[stream.TokenizedExample],
    run_dir: Path,
    *,
    log: LogFn,
) -> TrainResult:
    """Train ``model_dir`` per ``cfg``; resume from ``run_dir/checkpoints``; export ``run_dir/final``."""
    t_start = time.perf_counter()
    model_dir, run_dir = Path(model_dir), Path(run_dir)
    info = resolve_torch_device(cfg.device)
    device = torch.device(info.torch_device)
    bf16 = cfg.precision == "bf16" and info.supports_bf16
    torch.manual_seed(cfg.seed)  # LoRA's A init; dropout where a model has it

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model, params, optimizer = load_for_training(cfg, model_dir, device)

    ckpt_root = run_dir / "checkpoints"
    state = resume(ckpt_root, model, optimizer, cfg)
    step = state["step"] if state else 0
    history: list[dict] = state["history"] if state else []
    batches = stream.training_batches(
        train_examples, batch_size=cfg.batch_size, seq_len=cfg.seq_len, pad_id=pad_id, seed=cfg.seed,
        pack=cfg.pack, start_step=step * cfg.grad_accum_steps,  # the stream counts micro-batches
    )

    model.train()
    window: list[float] = []  # per-step losses since the last log
    tokens = 0
    train_s = 0.0  # time in optimizer steps only: evaluation and checkpoints excluded
    timed_tokens = 0  # tokens of the steps in train_s
    compile_s = 0.0  # with cfg.compile: the first step's wall time (compile + one step), as JAX reports it
    while step < cfg.steps:
        t0 = time.perf_counter()
        lr = learning_rate(cfg.optimizer, cfg.steps, step)
        micro = [next(batches) for _ in range(cfg.grad_accum_steps)]
        loss_value = optimizer_step(model, optimizer, params, micro, lr=lr, grad_clip=cfg.optimizer.grad_clip,
                                    device=device, bf16=bf16, step=step)
        step += 1
        step_tokens = sum(b.n_real_tokens for b in micro)
        tokens += step_tokens
        if cfg.compile and not compile_s:  # as JAX: the compiling step is not a throughput sample
            compile_s = time.perf_counter() - t0
        else:
            train_s += time.perf_counter() - t0
            timed_tokens += step_tokens
        window.append(loss_value)

        last = step == cfg.steps
        val_loss = None
        if cfg.eval_every and val_examples and (step % cfg.eval_every == 0 or last):
            val_batches = itertools.islice(
                stream.iter_batches(val_examples, batch_size=cfg.batch_size, seq_len=cfg.seq_len, pad_id=pad_id,
                                    pack=cfg.pack), cfg.eval_batches)
            val_loss = evaluate(model, val_batches, device, bf16=bf16)
        entry = None
        if val_loss is not None or step % cfg.log_every == 0 or last:
            entry = StepLog(step=step, loss=sum(window) / len(window), lr=lr, tokens=tokens,
                            elapsed_s=time.perf_counter() - t_start, val_loss=val_loss)
            history.append(entry.as_dict())
            window = []
        if step % cfg.checkpoint_every == 0 or last:
            save_checkpoint(ckpt_root, step, model, optimizer, cfg, history)
            _prune(ckpt_root, cfg.keep_checkpoints)
        if entry is not None:  # after the checkpoint: a failing log callback loses no progress
            log(entry)

    final_dir = export_hf(model, tokenizer, run_dir / "final")
    losses = [h["loss"] for h in history if h["loss"] is not None]
    val_losses = [h["val_loss"] for h in history if h["val_loss"] is not None]
    return TrainResult(
        steps=step,
        final_loss=losses[-1] if losses else math.nan,
        min_loss=min(losses) if losses else math.nan,
        final_val_loss=val_losses[-1] if val_losses else None,
        tokens_per_s=timed_tokens / train_s if train_s > 0 else 0.0,
        wall_s=time.perf_counter() - t_start,
        compile_s=compile_s,
        device=info.description,
        resumed_from=state["step"] if state else None,
        history=history,
        final_dir=str(final_dir),
    )
