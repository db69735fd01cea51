"""What every training backend takes and gives back, so the worker and the assets need not care which.

A backend module (``training.torch_backend``, ``training.jax_backend``) provides::

    train(cfg, model_dir, train_examples, val_examples, run_dir, *, log) -> TrainResult

* ``model_dir``: an HF-format folder (config.json, model.safetensors, tokenizer files): the base.
* ``train_examples`` / ``val_examples``: ``stream.TokenizedExample`` lists; batches come from
  ``stream.training_batches`` / ``stream.iter_batches`` so both backends see identical arrays.
* ``run_dir``: owned by this training run. ``run_dir/checkpoints/step_<N>/`` are resume points
  (written atomically: a folder is valid only once it holds ``COMPLETE``); if any exist when
  ``train`` starts, it resumes from the newest valid one, and falls back to an older one when
  the newest is corrupt. ``run_dir/final/`` receives the trained model as an HF folder.
* ``log``: called with a ``StepLog`` every ``cfg.log_every`` steps and at each evaluation; the
  worker forwards it to Dagster. A NaN or infinite loss raises ``NonFiniteLoss``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite: training stops instead of writing garbage checkpoints."""


class CheckpointError(RuntimeError):
    """No usable checkpoint where one was expected (corrupt, half-written, or from another config)."""


@dataclass
class StepLog:
    step: int  # optimizer steps done
    loss: float | None  # mean training loss over the steps since the last log
    lr: float  # learning rate at this step
    tokens: int  # real (non-pad) tokens seen so far, this process
    elapsed_s: float  # wall seconds since training started in this process (compile included)
    val_loss: float | None = None  # set on evaluation steps

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    steps: int  # final optimizer step
    final_loss: float  # mean training loss of the last log window
    min_loss: float  # lowest logged training loss
    final_val_loss: float | None  # last validation loss, if evaluated
    tokens_per_s: float  # real tokens per second of training (compile excluded where measurable)
    wall_s: float  # wall time of this process's training
    compile_s: float  # first-step overhead (JAX compile); 0 where not applicable
    device: str  # e.g. "cpu", "cuda:0 (NVIDIA H100)", "TPU v5e x8"
    resumed_from: int | None  # the checkpoint step resumed from, if any
    history: list[dict] = field(default_factory=list)  # StepLog dicts: the loss curve
    final_dir: str = ""  # run_dir/final: the HF folder of the trained model

    def as_dict(self) -> dict:
        return asdict(self)


LogFn = Callable[[StepLog], None]


@dataclass
class Generation:
    text: str  # decoded completion (prompt excluded, special tokens dropped)
    n_tokens: int  # tokens generated, EOS included when reached
    latency_s: float  # wall time of the item's batch divided by the batch's size
    stopped_at_eos: bool  # False when max_new_tokens ran out first
