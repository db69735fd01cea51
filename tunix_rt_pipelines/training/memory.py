"""Training-memory estimate and guardrail: refuse a run before it OOMs, and say which knob to turn.

The original system learned this the hard way (seeds, M36–M38): Gemma's 256K vocabulary makes the
logits tensor ``[batch, seq_len, vocab]`` the largest thing in memory, larger than the model, and
XLA died compiling it on a 16 GB TPU. The fix there was batch 1 × seq 64 with gradient
accumulation 8, bf16 and Adafactor, found by trial and error. Here the same arithmetic runs before
any weights are loaded, so an oversized config stops with a message like::

    logits need 32.0 GiB (batch_size 8 × seq_len 2048 × vocab 262144 × fp32 × 2):
    lower batch_size or seq_len, or raise grad_accum_steps

The estimate is deliberately simple and a little pessimistic (no activation checkpointing, no
fused cross-entropy, attention scores materialised as Tunix's einsum attention does). It is a
guardrail, not a profiler: it must catch 10× mistakes, not predict the last 10%.

Terms (bytes):

* parameters: every weight at its storage precision (LoRA keeps the frozen base too).
* gradients: one per *trainable* parameter (LoRA: the adapters only).
* optimizer_state: AdamW keeps two fp32 moments per trainable parameter; Adafactor keeps a
  factored second moment (row + column statistics) per matrix and no first moment (optax's default).
* activations: what the backward pass keeps per layer per token, × batch × seq_len × layers.
* logits: batch × seq_len × vocab × 4 bytes (the loss is computed in fp32) × 2 (log-softmax and
  its gradient live at the same time) — independent of the model's size, which is the trap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tunix_rt_pipelines.training.config import ModelConfig, TrainingConfig

GIB = 1024**3
FP32 = 4
BF16 = 2

# Architecture fields of the hub checkpoints the shipped configs name, copied from their
# config.json, so the guardrail can run before anything is downloaded (or where nothing can be).
KNOWN_HF_CONFIGS: dict[str, dict] = {
    "google/gemma-3-1b-it": {
        "model_type": "gemma3_text", "vocab_size": 262144, "hidden_size": 1152, "intermediate_size": 6912,
        "num_hidden_layers": 26, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
        "max_position_embeddings": 32768, "tie_word_embeddings": True,
    },
    "Qwen/Qwen3-0.6B": {
        "model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072,
        "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
        "max_position_embeddings": 40960, "tie_word_embeddings": True,
    },
}
KNOWN_HF_CONFIGS["google/gemma-3-1b-pt"] = KNOWN_HF_CONFIGS["google/gemma-3-1b-it"]
KNOWN_HF_CONFIGS["Qwen/Qwen3-0.6B-Base"] = KNOWN_HF_CONFIGS["Qwen/Qwen3-0.6B"]


class MemoryGuardrailError(RuntimeError):
    """The estimated training memory exceeds the allowed share of the device; names the knob to turn."""


@dataclass(frozen=True)
class Architecture:
    """The few numbers of a decoder-only transformer that decide its memory."""

    family: str  # qwen3 | gemma3 (others are estimated as qwen3-like)
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    tie_word_embeddings: bool  # a tied head shares the embedding matrix: no extra parameters

    @classmethod
    def from_hf_config(cls, hf: dict) -> "Architecture":
        # Multimodal Gemma 3 checkpoints nest the language model's fields under text_config.
        hf = hf.get("text_config", hf)
        heads = int(hf["num_attention_heads"])
        model_type = str(hf.get("model_type", ""))
        return cls(
            family="gemma3" if model_type.startswith("gemma3") else "qwen3",
            vocab_size=int(hf["vocab_size"]),
            hidden_size=int(hf["hidden_size"]),
            num_layers=int(hf["num_hidden_layers"]),
            num_heads=heads,
            num_kv_heads=int(hf.get("num_key_value_heads") or heads),
            # Older configs leave head_dim out: it is then hidden / heads.
            head_dim=int(hf.get("head_dim") or hf["hidden_size"] // heads),
            intermediate_size=int(hf["intermediate_size"]),
            # PretrainedConfig's default is tied when the key is absent.
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", True)),
        )

    @classmethod
    def from_model_config(cls, m: ModelConfig) -> "Architecture":
        # build:tiny ties the head for Gemma 3 only (Tunix's Gemma always reuses the embedding; see
        # base_model.hf_config_for); the trained tokenizer may end up a little below vocab_size,
        # so this slightly overestimates.
        return cls(family=m.family, vocab_size=m.vocab_size, hidden_size=m.hidden_size, num_layers=m.num_layers,
                   num_heads=m.num_heads, num_kv_heads=m.num_kv_heads, head_dim=m.head_dim,
                   intermediate_size=m.intermediate_size, tie_word_embeddings=m.family == "gemma3")

    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Every weight with its HF name and shape: the basis of the counts, LoRA and Adafactor terms."""
        h, q, kv, ff = self.hidden_size, self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim, \
            self.intermediate_size
        # Qwen3 and Gemma 3 both normalise q and k per head; Gemma 3 adds norms around the MLP.
        norms = ["input_layernorm", "post_attention_layernorm"]
        if self.family == "gemma3":
            norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        shapes: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens", (self.vocab_size, h))]
        for i in range(self.num_layers):
            p = f"model.layers.{i}"
            shapes += [
                (f"{p}.self_attn.q_proj", (q, h)), (f"{p}.self_attn.k_proj", (kv, h)),
                (f"{p}.self_attn.v_proj", (kv, h)), (f"{p}.self_attn.o_proj", (h, q)),
                (f"{p}.self_attn.q_norm", (self.head_dim,)), (f"{p}.self_attn.k_norm", (self.head_dim,)),
                (f"{p}.mlp.gate_proj", (ff, h)), (f"{p}.mlp.up_proj", (ff, h)), (f"{p}.mlp.down_proj", (h, ff)),
            ]
            shapes += [(f"{p}.{n}", (h,)) for n in norms]
        shapes.append(("model.norm", (h,)))
        if not self.tie_word_embeddings:
            shapes.append(("lm_head", (self.vocab_size, h)))
        return shapes

    @property
    def n_params(self) -> int:
        return sum(_numel(s) for _, s in self.param_shapes())


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def architecture_for(cfg: TrainingConfig, hf_config: dict | None = None) -> Architecture:
    """The architecture of ``cfg``'s model: the given config.json dict, else what its source says."""
    if hf_config is not None:
        return Architecture.from_hf_config(hf_config)
    source = cfg.model.source
    if source == "build:tiny":
        return Architecture.from_model_config(cfg.model)
    if source in KNOWN_HF_CONFIGS:
        return Architecture.from_hf_config(KNOWN_HF_CONFIGS[source])
    config_json = Path(source) / "config.json"
    if config_json.is_file():
        import json

        return Architecture.from_hf_config(json.loads(config_json.read_text(encoding="utf-8")))
    raise ValueError(f"model.source: {source!r}: no config.json to estimate memory from; pass its config dict")


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak training memory on one device, by term, in bytes (see the module docstring)."""

    parameters: int
    gradients: int
    optimizer_state: int
    activations: int
    logits: int
    n_params: int  # all weights
    n_trainable: int  # weights that get gradients (LoRA: the adapters)
    # How each term was computed, with the config values in it: what the error message quotes.
    formulas: dict[str, str]
    # The settings each term responds to: what the error message tells the user to change.
    advice: dict[str, str]

    TERMS = ("parameters", "gradients", "optimizer_state", "activations", "logits")

    @property
    def total(self) -> int:
        return sum(self.terms().values())

    def terms(self) -> dict[str, int]:
        return {t: getattr(self, t) for t in self.TERMS}

    def largest(self) -> str:
        terms = self.terms()
        return max(terms, key=terms.__getitem__)

    def table(self) -> str:
        """A fixed-width table for the run log."""
        lines = [f"{'term':<16}{'GiB':>9}  how"]
        for name, value in self.terms().items():
            lines.append(f"{name:<16}{value / GIB:>9.3f}  {self.formulas[name]}")
        lines.append(f"{'total':<16}{self.total / GIB:>9.3f}  "
                     f"({self.n_params:,} parameters, {self.n_trainable:,} trainable)")
        return "\n".join(lines)


def _lora_params(arch: Architecture, cfg: TrainingConfig) -> int:
    """Adapter weights: rank × (in + out) for each matrix whose name the target regex matches."""
    pattern = re.compile(cfg.lora.target_modules)
    return sum(cfg.lora.rank * (shape[0] + shape[1]) for name, shape in arch.param_shapes()
               if len(shape) == 2 and "embed" not in name and name != "lm_head" and pattern.fullmatch(name))


def _adafactor_state_elements(shapes: list[tuple[int, ...]]) -> int:
    """optax.adafactor: a row and a column accumulator per matrix whose dims are both >= 128;
    smaller tensors keep a full second moment (min_dim_size_to_factor = 128); no momentum."""
    n = 0
    for shape in shapes:
        if len(shape) >= 2 and min(shape[-2:]) >= 128:
            n += _numel(shape[:-1]) + _numel(shape[:-2] + shape[-1:])
        else:
            n += _numel(shape)
    return n


def estimate_memory(cfg: TrainingConfig, hf_config: dict | None = None) -> MemoryEstimate:
    """Estimate peak training memory of ``cfg`` on one device (model from ``hf_config`` or ``cfg.model``)."""
    arch = architecture_for(cfg, hf_config)
    b, t = cfg.batch_size, cfg.seq_len
    bf16 = cfg.precision == "bf16"
    # JAX bf16 stores the weights in bf16; torch autocast keeps fp32 weights and computes in bf16.
    param_bytes = BF16 if bf16 and cfg.backend == "jax" else FP32
    act_bytes = BF16 if bf16 else FP32
    p_name = "bf16" if param_bytes == BF16 else "fp32"
    a_name = "bf16" if act_bytes == BF16 else "fp32"

    n_params = arch.n_params
    if cfg.lora.enabled:
        # Adapters are trained in fp32 (they are small, and bf16 updates of tiny deltas round to 0).
        n_trainable = _lora_params(arch, cfg)
        parameters = n_params * param_bytes + n_trainable * FP32
        gradients = n_trainable * FP32
        # Adapters are thin (one side is the rank): factoring saves nothing, so Adafactor keeps one
        # full second moment and AdamW two moments.
        opt_elements = 2 * n_trainable if cfg.optimizer.name == "adamw" else n_trainable
        trained = f"{n_trainable:,} LoRA params (rank {cfg.lora.rank})"
        grad_formula = f"{trained} × fp32"
    else:
        n_trainable = n_params
        parameters = n_params * param_bytes
        gradients = n_trainable * param_bytes
        if cfg.optimizer.name == "adamw":
            opt_elements = 2 * n_trainable
        else:
            opt_elements = _adafactor_state_elements([s for _, s in arch.param_shapes()])
        trained = f"{n_trainable:,} params"
        grad_formula = f"{trained} × {p_name}"
    optimizer_state = opt_elements * FP32
    if cfg.optimizer.name == "adamw":
        opt_formula = f"AdamW: 2 fp32 moments × {trained}"
    else:
        opt_formula = f"Adafactor: factored fp32 second moment of {trained} ({opt_elements:,} values)"

    # Per layer per token, what backward keeps: the residual input and two norm outputs, q/k/v, the
    # attention output, the MLP's gate, up, activation and product, and the attention probabilities
    # (heads × seq_len: Tunix's einsum attention materialises them; softmax's backward needs only its
    # output, so the raw scores are not kept).
    h, q, kv, ff = arch.hidden_size, arch.num_heads * arch.head_dim, arch.num_kv_heads * arch.head_dim, \
        arch.intermediate_size
    per_token_layer = 3 * h + q + 2 * kv + q + 4 * ff + arch.num_heads * t
    activations = b * t * arch.num_layers * per_token_layer * act_bytes

    # fp32 logits and their log-softmax/gradient at once: 2 × [batch, seq_len, vocab] × 4 bytes.
    logits = b * t * arch.vocab_size * FP32 * 2

    formulas = {
        "parameters": f"{n_params:,} params × {p_name}" + (f" + {n_trainable:,} LoRA × fp32" if cfg.lora.enabled
                                                            else ""),
        "gradients": grad_formula,
        "optimizer_state": opt_formula,
        "activations": f"batch_size {b} × seq_len {t} × {arch.num_layers} layers × "
                       f"{per_token_layer:,} values × {a_name}",
        "logits": f"batch_size {b} × seq_len {t} × vocab {arch.vocab_size} × fp32 × 2",
    }
    advice = {
        "parameters": "set precision: bf16 (backend jax), or choose a smaller model",
        "gradients": "enable lora (lora.enabled: true), or set precision: bf16",
        "optimizer_state": "set optimizer.name: adafactor, or enable lora (lora.enabled: true)",
        "activations": "lower batch_size or seq_len, or raise grad_accum_steps",
        "logits": "lower batch_size or seq_len, or raise grad_accum_steps",
    }
    return MemoryEstimate(parameters=parameters, gradients=gradients, optimizer_state=optimizer_state,
                          activations=activations, logits=logits, n_params=n_params, n_trainable=n_trainable,
                          formulas=formulas, advice=advice)


def check_fits(estimate: MemoryEstimate, device_memory_bytes: int | None, max_fraction: float) -> None:
    """Raise ``MemoryGuardrailError`` when ``estimate.total`` exceeds ``max_fraction`` of the device.

    ``device_memory_bytes`` None means the device did not report its memory: nothing to check
    against (the caller logs the estimate table anyway).
    """
    if device_memory_bytes is None:
        return
    budget = device_memory_bytes * max_fraction
    if estimate.total <= budget:
        return
    name = estimate.largest()
    raise MemoryGuardrailError(
        f"{name} need {getattr(estimate, name) / GIB:.1f} GiB ({estimate.formulas[name]}): {estimate.advice[name]}. "
        f"Estimated total {estimate.total / GIB:.1f} GiB exceeds {max_fraction:.0%} of the device's "
        f"{device_memory_bytes / GIB:.1f} GiB (max_memory_fraction).\n{estimate.table()}"
    )
