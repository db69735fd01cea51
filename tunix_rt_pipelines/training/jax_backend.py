"""The JAX backend: Tunix's NNX Qwen3 / Gemma 3 trained with Tunix's ``PeftTrainer``.

Tunix reads HF safetensors but neither builds its model config from ``config.json`` nor
writes HF safetensors back; both halves live here (``tunix_config_from_hf``, ``export_hf``),
so a run starts from and ends at an HF folder that transformers loads as well.

What ``PeftTrainer`` does for us: the jitted step (``nnx.value_and_grad`` + optax), gradient
accumulation (``optax.MultiSteps``), LoRA-only updates, Orbax save/restore. What we add
around it (see ``backend.py`` for the contract):

* batches from ``stream.training_batches`` through a ``DataHooks`` that starts the stream at
  the restored step (PeftTrainer's own resume would re-read and skip the consumed batches);
* an integer-label cross entropy: the default loss builds a one-hot ``[B, T, V]`` array,
  which at Gemma's 256K vocabulary costs more memory than the logits themselves;
* the loss normalised by the target tokens of the whole optimizer step, as the torch
  backend does, so both give the same gradient for the same batches;
* ``COMPLETE`` markers in ``checkpoints/step_<N>/``, fall-back past corrupt checkpoints,
  and a config-hash check, none of which Orbax or Tunix does.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunix_rt_pipelines.training import xla_flags  # noqa: F401, I001  (before jax starts a backend)

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from tunix.sft import hooks, peft_trainer

from tunix_rt_pipelines.training import stream
from tunix_rt_pipelines.training.accelerator import resolve_jax_devices
from tunix_rt_pipelines.training.backend import CheckpointError, LogFn, NonFiniteLoss, StepLog, TrainResult
from tunix_rt_pipelines.training.config import ConfigError, OptimizerConfig, TrainingConfig

DTYPES = {"fp32": jnp.float32, "bf16": jnp.bfloat16}
COMPLETE = "COMPLETE"  # marker file: a checkpoint folder is valid only once it holds this


# --- HF config -> Tunix config ----------------------------------------------------------------


def _require(hf: dict, field: str, ok: bool, why: str) -> None:
    if not ok:
        raise ConfigError(f"config.json: {field}: {hf.get(field)!r} is not supported by the Tunix backend ({why})")


def _rope(hf: dict, layer_type: str | None) -> dict:
    """The rope parameters of one layer type, from transformers 5 (``rope_parameters``) or 4 keys."""
    params = hf.get("rope_parameters") or {}
    if layer_type and isinstance(params.get(layer_type), dict):
        return params[layer_type]
    if params.get("rope_theta") is not None:
        return params
    legacy = {"rope_theta": hf.get("rope_theta"), "rope_type": "default"}
    if hf.get("rope_scaling"):
        legacy.update(hf["rope_scaling"])
    return legacy


def _qwen3_config(hf: dict, dtype: jnp.dtype) -> Any:
    from tunix.models.qwen3 import model as qwen3

    rope = _rope(hf, None)
    theta = rope.get("rope_theta") or 10_000.0  # transformers' Qwen3 default when unset
    # Tunix's Qwen3 ignores the config's rope_theta and always uses 1e6 (apply_rope's default).
    if not math.isclose(float(theta), 1e6):
        raise ConfigError(f"config.json: rope_parameters.rope_theta: {theta} is not supported by the Tunix "
                          "backend (Tunix's Qwen3 always rotates with theta = 1e6)")
    if rope.get("rope_type", "default") != "default":
        raise ConfigError(f"config.json: rope_parameters.rope_type: {rope.get('rope_type')!r} is not supported "
                          "by the Tunix backend (no rope scaling in Tunix's Qwen3)")
    _require(hf, "attention_bias", not hf.get("attention_bias", False), "no attention biases")
    _require(hf, "hidden_act", hf.get("hidden_act", "silu") == "silu", "SwiGLU with silu only")
    _require(hf, "use_sliding_window", not hf.get("use_sliding_window", False), "full attention only")
    return qwen3.ModelConfig(
        num_layers=hf["num_hidden_layers"],
        vocab_size=hf["vocab_size"],
        embed_dim=hf["hidden_size"],
        hidden_dim=hf["intermediate_size"],
        num_heads=hf["num_attention_heads"],
        head_dim=hf.get("head_dim") or hf["hidden_size"] // hf["num_attention_heads"],
        num_kv_heads=hf["num_key_value_heads"],
        rope_theta=1_000_000,
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        use_tied_embedding=hf.get("tie_word_embeddings", False),
        dtype=dtype,
        param_dtype=dtype,
    )


def _gemma3_config(hf: dict, dtype: jnp.dtype) -> Any:
    from tunix.models.gemma3 import model as gemma3

    n_layers, n_heads = hf["num_hidden_layers"], hf["num_attention_heads"]
    head_dim = hf.get("head_dim", 256)
    _require(hf, "tie_word_embeddings", hf.get("tie_word_embeddings", True),
             "Tunix's Gemma 3 always decodes with the input embedding")
    _require(hf, "attn_logit_softcapping", hf.get("attn_logit_softcapping") is None, "no soft-capping")
    _require(hf, "final_logit_softcapping", hf.get("final_logit_softcapping") is None, "no soft-capping")
    _require(hf, "rms_norm_eps", math.isclose(hf.get("rms_norm_eps", 1e-6), 1e-6), "RMSNorm eps is fixed at 1e-6")
    _require(hf, "attention_bias", not hf.get("attention_bias", False), "no attention biases")
    _require(hf, "use_bidirectional_attention", not hf.get("use_bidirectional_attention", False), "causal only")
    _require(hf, "hidden_activation", hf.get("hidden_activation", "gelu_pytorch_tanh") == "gelu_pytorch_tanh",
             "tanh-approximated GELU only")
    # Tunix cycles 5 sliding-window layers and 1 global one, as released Gemma 3 checkpoints do.
    expected = [("full_attention" if (i + 1) % 6 == 0 else "sliding_attention") for i in range(n_layers)]
    _require(hf, "layer_types", hf.get("layer_types", expected) == expected,
             "Tunix fixes the pattern at 5 sliding-window layers then 1 global")
    scalar = hf.get("query_pre_attn_scalar", head_dim)
    if scalar == head_dim:
        norm = gemma3.QueryPreAttentionNormalisation.BY_ONE_OVER_SQRT_HEAD_DIM
    elif scalar == hf["hidden_size"] // n_heads:
        norm = gemma3.QueryPreAttentionNormalisation.BY_ONE_OVER_SQRT_EMBED_DIM_DIV_NUM_HEADS
    else:
        raise ConfigError(f"config.json: query_pre_attn_scalar: {scalar} is not supported by the Tunix backend "
                          f"(must be head_dim = {head_dim} or hidden_size / num_attention_heads)")
    local, glob = _rope(hf, "sliding_attention"), _rope(hf, "full_attention")
    local_theta = local.get("rope_theta") or hf.get("rope_local_base_freq", 10_000.0)
    if local.get("rope_type", "default") != "default":
        raise ConfigError("config.json: rope_parameters.sliding_attention: rope scaling on sliding layers is not "
                          "supported by the Tunix backend")
    scale = 1.0
    if glob.get("rope_type", "default") == "linear":
        scale = float(glob["factor"])
    elif glob.get("rope_type", "default") != "default":
        raise ConfigError(f"config.json: rope_parameters.full_attention.rope_type: {glob.get('rope_type')!r} is "
                          "not supported by the Tunix backend (default or linear only)")
    return gemma3.ModelConfig(
        num_layers=n_layers,
        num_embed=hf["vocab_size"],
        embed_dim=hf["hidden_size"],
        hidden_dim=hf["intermediate_size"],
        num_heads=n_heads,
        head_dim=head_dim,
        num_kv_heads=hf["num_key_value_heads"],
        sliding_window_size=hf.get("sliding_window") or 4096,
        local_base_frequency=int(local_theta),
        global_base_frequency=int(glob.get("rope_theta") or 1_000_000),
        global_scale_factor=scale,
        query_pre_attn_norm=norm,
        param_dtype=dtype,
    )


def tunix_config_from_hf(hf_config: dict, *, dtype: jnp.dtype = jnp.float32) -> Any:
    """Tunix's ``ModelConfig`` for an HF ``config.json`` (Qwen3 or Gemma 3 text).

    Anything Tunix would silently compute differently from transformers is a ``ConfigError``
    naming the config.json field, rather than a model whose logits quietly differ.
    """
    model_type = hf_config.get("model_type")
    if model_type == "qwen3":
        return _qwen3_config(hf_config, dtype)
    if model_type == "gemma3_text":
        return _gemma3_config(hf_config, dtype)
    raise ConfigError(f"config.json: model_type: {model_type!r} is not supported by the Tunix backend "
                      "(supported: qwen3, gemma3_text)")


def read_hf_config(model_dir: Path) -> dict:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: not an HF model folder (no config.json)")
    return json.loads(path.read_text(encoding="utf-8"))


def load_model(model_dir: Path, *, dtype: str = "fp32", mesh: jax.sharding.Mesh | None = None) -> nnx.Module:
    """An HF folder's safetensors as Tunix's NNX model (params cast to ``dtype``: fp32 | bf16)."""
    hf = read_hf_config(model_dir)
    jdtype = DTYPES[dtype]
    tunix_cfg = tunix_config_from_hf(hf, dtype=jdtype)
    if hf["model_type"] == "qwen3":
        from tunix.models.qwen3 import params as qwen3_params

        return qwen3_params.create_model_from_safe_tensors(str(model_dir), tunix_cfg, mesh=mesh, dtype=jdtype)
    from tunix.models.gemma3 import params_safetensors as gemma3_params

    return gemma3_params.create_model_from_safe_tensors(str(model_dir), tunix_cfg, mesh=mesh, dtype=jdtype)


# --- LoRA -------------------------------------------------------------------------------------


def _lora_module_regex(family: str, target_modules: str) -> str:
    """The LoRA target regex in Tunix's module names (configs use the HF names)."""
    if family != "gemma3":
        return target_modules  # Tunix's Qwen3 keeps the HF projection names
    # Gemma 3 in Tunix fuses projections: q (or q, k, v when heads == kv heads), k+v, and o.
    for hf_name, tunix_name in (("q_proj", "q_einsum|qkv_einsum"), ("k_proj", "kv_einsum"),
                                ("v_proj", "kv_einsum"), ("o_proj", "attn_vec_einsum")):
        target_modules = target_modules.replace(hf_name, tunix_name)
    return target_modules


def apply_lora(model: nnx.Module, family: str, *, rank: int, alpha: float, target_modules: str,
               seed: int) -> nnx.Module:
    """Wrap ``model``'s matching projections with qwix LoRA adapters (B = 0: outputs unchanged)."""
    import qwix

    provider = qwix.LoraProvider(module_path=_lora_module_regex(family, target_modules), rank=rank, alpha=alpha)
    lora_model = qwix.apply_lora_to_model(model, provider, rngs=nnx.Rngs(seed), **model.get_model_input())
    if not jax.tree.leaves(nnx.state(lora_model, nnx.LoRAParam)):
        raise ConfigError(f"lora.target_modules: {target_modules!r} matches no projection of this {family} model")
    return lora_model


def _flat_params(model: nnx.Module) -> dict[str, jax.Array]:
    """Every parameter (LoRA adapters included) by dotted path, e.g. ``layers.0.attn.q_proj.w``."""
    flat = nnx.state(model, nnx.Param).flat_state()
    return {".".join(str(k) for k in path): var.value for path, var in flat}


def merged_params(model: nnx.Module, *, lora_alpha: float | None = None) -> dict[str, jax.Array]:
    """``_flat_params`` with each LoRA pair folded into its weight: W + A·B·alpha/rank."""
    flat = _flat_params(model)
    lora_keys = [k for k in flat if k.endswith("_lora_a")]
    if not lora_keys:
        return flat
    if lora_alpha is None:
        raise ValueError("the model has LoRA adapters: pass lora_alpha to merge them")
    modules = {".".join(str(p) for p in path): node for path, node in nnx.iter_graph(model)
               if isinstance(node, nnx.Module)}
    for key_a in lora_keys:
        weight_key = key_a[: -len("_lora_a")]
        a, b = flat.pop(key_a), flat.pop(weight_key + "_lora_b")
        rank = a.shape[-1]
        w = flat[weight_key]
        einsum_str = getattr(modules[weight_key.rsplit(".", 1)[0]], "einsum_str", None)
        if einsum_str is None:  # nnx.Linear: kernel [in, out], A [in, r], B [r, out]
            delta = a @ b
        else:
            # qwix splits the weight's axes: those shared with the input go to A (then r), the
            # others to B (after r), each in the weight's order; recombine in the weight's layout.
            lhs, rhs = einsum_str.split("->")[0].split(",")
            a_axes = "".join(c for c in rhs if c in lhs)
            b_axes = "".join(c for c in rhs if c not in lhs)
            r = next(c for c in "rzyxwvu" if c not in lhs + rhs)
            delta = jnp.einsum(f"{a_axes}{r},{r}{b_axes}->{rhs}", a, b)
        flat[weight_key] = (w.astype(jnp.float32) + delta.astype(jnp.float32) * (lora_alpha / rank)).astype(w.dtype)
    return flat


# --- Tunix params -> HF safetensors -----------------------------------------------------------


def _t(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.T)


def _heads_in(w: np.ndarray) -> np.ndarray:
    """[D, N, H] (Tunix q/k/v) -> [N*H, D] (HF Linear weight)."""
    return _t(w.reshape(w.shape[0], -1))


def _heads_out(w: np.ndarray) -> np.ndarray:
    """[N, H, D] (Tunix o) -> [D, N*H] (HF Linear weight)."""
    return _t(w.reshape(-1, w.shape[-1]))


def _qwen3_to_hf(key: str, w: np.ndarray) -> dict[str, np.ndarray]:
    if key == "embedder.input_embedding":
        return {"model.embed_tokens.weight": w}
    if key == "final_norm.w":
        return {"model.norm.weight": w}
    if key == "lm_head.w":  # [D, V]
        return {"lm_head.weight": _t(w)}
    m = re.fullmatch(r"layers\.(\d+)\.(.+)", key)
    if m:
        i, rest = m.groups()
        p = f"model.layers.{i}."
        if mm := re.fullmatch(r"attn\.([qkv])_proj\.w", rest):  # [D, N, H]
            return {f"{p}self_attn.{mm[1]}_proj.weight": _heads_in(w)}
        if rest == "attn.o_proj.w":  # [N, H, D]
            return {f"{p}self_attn.o_proj.weight": _heads_out(w)}
        if mm := re.fullmatch(r"attn\.([qk])_norm\.w", rest):
            return {f"{p}self_attn.{mm[1]}_norm.weight": w}
        if mm := re.fullmatch(r"mlp\.(gate|up|down)_proj\.kernel", rest):  # [in, out]
            return {f"{p}mlp.{mm[1]}_proj.weight": _t(w)}
        if rest in ("input_layernorm.w", "post_attention_layernorm.w"):
            return {f"{p}{rest[:-2]}.weight": w}
    raise ValueError(f"export: no HF name for Tunix Qwen3 parameter {key!r}")


_GEMMA3_NORMS = {
    "pre_attention_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm",
    "pre_ffw_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
    "attn._query_norm": "self_attn.q_norm", "attn._key_norm": "self_attn.k_norm",
}


def _gemma3_to_hf(key: str, w: np.ndarray) -> dict[str, np.ndarray]:
    def ndh(x: np.ndarray) -> np.ndarray:  # [N, D, H] -> [N*H, D]
        return np.ascontiguousarray(x.transpose(0, 2, 1).reshape(-1, x.shape[1]))

    if key == "embedder.input_embedding":
        return {"model.embed_tokens.weight": w}
    if key == "final_norm.scale":
        return {"model.norm.weight": w}
    m = re.fullmatch(r"layers\.(\d+)\.(.+)", key)
    if m:
        i, rest = m.groups()
        p = f"model.layers.{i}."
        if rest == "attn.qkv_einsum.w":  # [3, N, D, H]
            return {f"{p}self_attn.{n}_proj.weight": ndh(w[j]) for j, n in enumerate("qkv")}
        if rest == "attn.q_einsum.w":  # [N, D, H]
            return {f"{p}self_attn.q_proj.weight": ndh(w)}
        if rest == "attn.kv_einsum.w":  # [2, K, D, H]
            return {f"{p}self_attn.k_proj.weight": ndh(w[0]), f"{p}self_attn.v_proj.weight": ndh(w[1])}
        if rest == "attn.attn_vec_einsum.w":  # [N, H, D]
            return {f"{p}self_attn.o_proj.weight": _heads_out(w)}
        if mm := re.fullmatch(r"mlp\.(gate|up|down)_proj\.kernel", rest):  # [in, out]
            return {f"{p}mlp.{mm[1]}_proj.weight": _t(w)}
        if rest.endswith(".scale") and rest[: -len(".scale")] in _GEMMA3_NORMS:
            return {f"{p}{_GEMMA3_NORMS[rest[: -len('.scale')]]}.weight": w}
    raise ValueError(f"export: no HF name for Tunix Gemma 3 parameter {key!r}")


def export_hf(model: nnx.Module, hf_config_dir: Path, out_dir: Path, *, lora_alpha: float | None = None) -> Path:
    """Write ``model`` as an HF folder: model.safetensors plus config.json and tokenizer files.

    LoRA adapters are merged first (``lora_alpha`` is required then: qwix does not store it).
    All tensors share the params' dtype: Tunix's own loader assumes one dtype per file.
    """
    from safetensors.numpy import save_file

    hf_config_dir, out_dir = Path(hf_config_dir), Path(out_dir)
    hf = read_hf_config(hf_config_dir)
    to_hf = _qwen3_to_hf if hf["model_type"] == "qwen3" else _gemma3_to_hf
    tensors: dict[str, np.ndarray] = {}
    for key, value in merged_params(model, lora_alpha=lora_alpha).items():
        tensors.update(to_hf(key, np.asarray(jax.device_get(value))))
    dtypes = {t.dtype for t in tensors.values()}
    if len(dtypes) != 1:
        raise ValueError(f"export: parameters of mixed dtypes {sorted(map(str, dtypes))}")

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in hf_config_dir.iterdir():
        if f.is_file() and not f.name.endswith((".safetensors", ".safetensors.index.json", ".bin")):
            shutil.copy2(f, tmp / f.name)
    hf["dtype"] = "bfloat16" if dtypes == {np.dtype(jnp.bfloat16)} else "float32"
    (tmp / "config.json").write_text(json.dumps(hf, indent=2), encoding="utf-8")
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)  # a reader never sees a half-written folder
    return out_dir


# --- optimizer --------------------------------------------------------------------------------


def make_schedule(opt: OptimizerConfig, total_steps: int) -> optax.Schedule:
    """Linear warmup from 0 to ``lr``, then cosine / linear decay to ``lr * min_lr_ratio`` (or constant)."""
    floor = opt.lr * opt.min_lr_ratio
    warmup = min(opt.warmup_steps, total_steps)
    decay_steps = max(1, total_steps - warmup)
    if opt.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, opt.lr, warmup, warmup + decay_steps, end_value=floor)
    after = (optax.constant_schedule(opt.lr) if opt.schedule == "constant"
             else optax.linear_schedule(opt.lr, floor, decay_steps))
    if warmup == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, opt.lr, warmup), after], [warmup])


def make_optimizer(opt: OptimizerConfig, total_steps: int) -> optax.GradientTransformation:
    schedule = make_schedule(opt, total_steps)
    if opt.name == "adamw":
        tx = optax.adamw(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=opt.weight_decay)
    else:
        tx = optax.adafactor(schedule, weight_decay_rate=opt.weight_decay or None)
    return optax.chain(optax.clip_by_global_norm(opt.grad_clip), tx) if opt.grad_clip > 0 else tx


# --- batches and loss -------------------------------------------------------------------------


@flax.struct.dataclass
class _Batch:
    """One micro-batch on its way into the jitted step (a pytree of device arrays)."""

    input_tokens: jax.Array  # [B, T] int32
    input_mask: jax.Array  # [B, T] int32 loss mask (stream convention)
    positions: jax.Array  # [B, T] int32, restarting per packed example
    segment_ids: jax.Array  # [B, T] int32, 0 on padding
    loss_norm: jax.Array  # [] f32: divisor that makes the step's loss a per-target-token mean


def attention_mask(segment_ids: jax.Array) -> jax.Array:
    """[B, T] -> [B, T, T] bool: causal within one packed example (``TokenBatch.attention_mask_3d``).

    Built inside the jitted step from the segment ids, so the host never ships B*T*T bools.
    """
    t = segment_ids.shape[1]
    same = (segment_ids[:, :, None] == segment_ids[:, None, :]) & (segment_ids[:, :, None] > 0)
    return same & jnp.tril(jnp.ones((t, t), dtype=bool))[None]


def _model_inputs(batch: _Batch) -> dict[str, jax.Array]:
    return {"input_tokens": batch.input_tokens, "input_mask": batch.input_mask, "positions": batch.positions,
            "attention_mask": attention_mask(batch.segment_ids), "loss_norm": batch.loss_norm}


def loss_fn(model: nnx.Module, input_tokens: jax.Array, input_mask: jax.Array, positions: jax.Array,
            attention_mask: jax.Array, loss_norm: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Integer-label cross entropy over targets; returns (loss_sum / loss_norm, loss_sum).

    Same convention as Tunix's default loss (position t predicts token t+1, weighted by the
    loss mask of t+1), without its one-hot [B, T, V] array.
    """
    logits, _ = model(input_tokens, positions, None, attention_mask)  # [B, T, V]
    nll = optax.softmax_cross_entropy_with_integer_labels(
        logits[:, :-1].astype(jnp.float32), input_tokens[:, 1:])  # [B, T-1]
    loss_sum = jnp.sum(nll * input_mask[:, 1:].astype(jnp.float32))
    return loss_sum / loss_norm, loss_sum


def _n_targets(batch: stream.TokenBatch) -> int:
    return int(batch.loss_mask[:, 1:].sum())  # position 0 predicts nothing


def _to_device(batch: stream.TokenBatch, loss_norm: float) -> _Batch:
    return _Batch(jnp.asarray(batch.input_ids), jnp.asarray(batch.loss_mask), jnp.asarray(batch.positions),
                  jnp.asarray(batch.segment_ids), jnp.asarray(loss_norm, dtype=jnp.float32))


class _StreamData(hooks.DataHooks):
    """Feeds PeftTrainer from the shared token stream, starting at the restored micro-step.

    Batches come in groups of ``accum`` (one optimizer step); each micro-batch's loss is
    divided by the whole group's target count / accum, so MultiSteps' mean over the group
    equals the token-weighted mean of the concatenated batches (the torch backend's loss).
    Training stops when the stream has given ``n_micro`` batches (returns None).
    """

    def __init__(self, batches: Iterator[stream.TokenBatch], *, accum: int, n_micro: int,
                 eval_batches: Sequence[stream.TokenBatch]) -> None:
        self._batches, self._accum, self._left = batches, accum, n_micro
        self._group: list[tuple[_Batch, int, int]] = []  # (batch, real tokens, targets), oldest first
        self.current: tuple[int, int] = (0, 0)  # real tokens and targets of the batch just handed out
        self.t_group = 0.0  # when the current optimizer step's first micro-batch was handed out
        self.eval_batches = [(_to_device(b, max(1, _n_targets(b))), _n_targets(b)) for b in eval_batches]

    def load_next_train_batch(self, train_ctx: Any) -> _Batch | None:
        if self._left <= 0:
            return None
        if not self._group:
            self.t_group = time.perf_counter()
            group = [next(self._batches) for _ in range(min(self._accum, self._left))]
            norm = max(1, sum(_n_targets(b) for b in group)) / self._accum
            self._group = [(_to_device(b, norm), b.n_real_tokens, _n_targets(b)) for b in group]
        batch, tokens, targets = self._group.pop(0)
        self._left -= 1
        self.current = (tokens, targets)
        return batch

    def load_next_eval_batch(self, train_ctx: Any) -> None:
        return None  # evaluation runs from _Trainer at step boundaries, not from PeftTrainer's eval loop


# --- checkpoints ------------------------------------------------------------------------------


def _step_of(folder: Path) -> int | None:
    m = re.fullmatch(r"step_(\d+)", folder.name)
    return int(m[1]) if m and folder.is_dir() else None


def checkpoint_steps(root: Path) -> list[int]:
    """Steps of the complete checkpoints under ``root``, newest first."""
    steps = [s for f in root.glob("step_*") if (s := _step_of(f)) is not None and (f / COMPLETE).is_file()]
    return sorted(steps, reverse=True)


def _quarantine(root: Path, folder: Path, why: str) -> None:
    """Move a checkpoint Orbax must not see to ``run_dir/checkpoints_rejected`` (kept for inspection)."""
    dest = root.parent / "checkpoints_rejected" / f"{folder.name}.{int(time.time())}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(dest)
    (dest / "REJECTED").write_text(why + "\n", encoding="utf-8")


def _prepare_checkpoints(root: Path, cfg: TrainingConfig) -> bool:
    """Set aside half-written checkpoints; refuse ones of another config. True if any remain."""
    if not root.is_dir():
        return False
    found = False
    for folder in sorted(root.glob("step_*")):
        if _step_of(folder) is None:
            continue
        marker = folder / COMPLETE
        if not marker.is_file():
            _quarantine(root, folder, "no COMPLETE marker: the save was interrupted")
            continue
        meta = json.loads(marker.read_text(encoding="utf-8"))
        if meta.get("config_hash") != cfg.config_hash:
            raise CheckpointError(f"{folder}: checkpoint of another config (config hash {meta.get('config_hash')}, "
                                  f"this run {cfg.config_hash}); use a new run_dir or delete {root}")
        found = True
    return found


class _MarkingCheckpoints:
    """Tunix's CheckpointManager, plus a ``COMPLETE`` file (config hash, history) after each save."""

    def __init__(self, inner: Any, root: Path, meta: dict, history: list[dict]) -> None:
        self._inner, self._root, self._meta, self._history = inner, root, meta, history

    def save(self, step: int, *args: Any, **kwargs: Any) -> bool:
        saved = self._inner.save(step, *args, **kwargs)
        if saved:  # Orbax saves synchronously here (async disabled): the folder is final now
            marker = {**self._meta, "step": step, "history": [h for h in self._history if h["step"] <= step]}
            (self._root / f"step_{step}" / COMPLETE).write_text(json.dumps(marker), encoding="utf-8")
        return saved

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# --- trainer ----------------------------------------------------------------------------------


@dataclass
class _Progress:
    tokens: int = 0  # real tokens trained on in this process
    timed_tokens: int = 0  # those of the steps after the first (what train_s measures)
    train_s: float = 0.0  # wall time of optimizer steps after the first (compile excluded)
    compile_s: float = 0.0  # wall time of the first step (JAX compile included)


class _Trainer(peft_trainer.PeftTrainer):
    """PeftTrainer plus host-side bookkeeping after each micro-step: NaN check, logs, evaluation."""

    def setup(self, cfg: TrainingConfig, data: _StreamData, schedule: optax.Schedule, log: LogFn,
              history: list[dict], t_start: float) -> None:
        self.cfg, self.data, self.schedule, self.log_fn = cfg, data, schedule, log
        self.history, self.t_start = history, t_start
        self.progress = _Progress()
        self._window: list[float] = []  # per-step losses since the last log
        self._step_sum, self._step_targets, self._step_tokens = 0.0, 0, 0

    def _post_process_train_step(self, aux: jax.Array) -> None:
        # Called after each micro-step, before PeftTrainer counts it and before it saves the
        # step's checkpoint: pulling the loss to the host here (one sync per micro-step) lets a
        # NaN stop the run before a checkpoint of garbage is written.
        tokens, targets = self.data.current
        self._step_sum += float(aux)
        self._step_targets += targets
        self._step_tokens += tokens
        self.progress.tokens += tokens
        if (self.iter_steps + 1) % self.cfg.grad_accum_steps:
            return
        step = self.train_steps + 1
        loss = self._step_sum / max(1, self._step_targets)
        lr = float(self.schedule(step - 1))  # the lr of the update that produced this step
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"step {step}: loss {loss} (lr {lr:g})")
        now = time.perf_counter()
        if self.progress.compile_s == 0.0:
            self.progress.compile_s = now - self.data.t_group
        else:  # from the step's first batch: checkpoints, evaluation and logs stay out of the step time
            self.progress.train_s += now - self.data.t_group
            self.progress.timed_tokens += self._step_tokens
        self._window.append(loss)
        self._step_sum, self._step_targets, self._step_tokens = 0.0, 0, 0

        last = step == self.cfg.steps
        val_loss = None
        if self.cfg.eval_every and self.data.eval_batches and (step % self.cfg.eval_every == 0 or last):
            val_loss = self._evaluate()
        if val_loss is not None or step % self.cfg.log_every == 0 or last:
            entry = StepLog(step=step, loss=sum(self._window) / len(self._window), lr=lr,
                            tokens=self.progress.tokens, elapsed_s=time.perf_counter() - self.t_start,
                            val_loss=val_loss)
            self.history.append(entry.as_dict())
            self._window = []
            self.log_fn(entry)

    def _evaluate(self) -> float | None:
        """Target-weighted mean loss over the evaluation batches (the torch backend's definition)."""
        _, eval_step = self.jit_train_and_eval_step()
        total, n = 0.0, 0
        for batch, targets in self.data.eval_batches:
            _, loss_sum = eval_step(batch)
            total += float(loss_sum)
            n += targets
        return total / n if n else None


def _build_trainer(model: nnx.Module, cfg: TrainingConfig, root: Path) -> _Trainer:
    trainer_cfg = peft_trainer.TrainingConfig(
        eval_every_n_steps=cfg.eval_every or cfg.steps,  # unused: evaluation runs from _Trainer
        max_steps=None,  # the data hook ends training; max_steps would also draw a tqdm bar
        gradient_accumulation_steps=cfg.grad_accum_steps if cfg.grad_accum_steps > 1 else None,
        checkpoint_root_directory=str(root),
        checkpointing_options=ocp.CheckpointManagerOptions(
            # Every checkpoint_every steps and nothing else: Tunix's default is time-based (every
            # 180 s), and Orbax's default from save_interval_steps also saves the first step.
            save_decision_policy=ocp.checkpoint_managers.FixedIntervalPolicy(cfg.checkpoint_every),
            max_to_keep=cfg.keep_checkpoints,
            step_prefix="step",  # folders step_<N>, the layout backend.py promises
            enable_async_checkpointing=False,  # the COMPLETE marker must follow a finished save
        ),
        pbar_description=None,
    )
    trainer = _Trainer(model, make_optimizer(cfg.optimizer, cfg.steps), trainer_cfg)
    return trainer.with_gen_model_input_fn(_model_inputs).with_loss_fn(loss_fn, has_aux=True)


def _raised_by_restore(e: BaseException) -> bool:
    """Whether ``e`` came out of Tunix's checkpoint restore (and not, say, the optimizer set-up)."""
    return any(f.f_code.co_name == "maybe_restore" for f, _ in traceback.walk_tb(e.__traceback__))


def _restore(model: nnx.Module, cfg: TrainingConfig, root: Path) -> _Trainer:
    """A trainer restored from the newest checkpoint that loads, setting aside those that do not.

    PeftTrainer restores in its constructor (all-or-nothing: the model is updated only after
    Orbax read everything), so a corrupt checkpoint is moved away and the constructor retried.
    """
    had_checkpoints = _prepare_checkpoints(root, cfg)
    errors: list[str] = []
    while True:
        try:
            return _build_trainer(model, cfg, root)
        except Exception as e:  # noqa: BLE001  (Orbax raises many types on unreadable data)
            steps = checkpoint_steps(root)
            if not steps or not _raised_by_restore(e):
                raise
            newest = root / f"step_{steps[0]}"
            errors.append(f"step_{steps[0]}: {type(e).__name__}: {e}")
            _quarantine(root, newest, f"restore failed: {type(e).__name__}: {e}")
            if len(steps) == 1 and had_checkpoints:
                raise CheckpointError(f"{root}: no checkpoint could be restored ({'; '.join(errors)}); "
                                      f"the rejected ones are in {root.parent / 'checkpoints_rejected'}") from e


def train(
    cfg: TrainingConfig,
    model_dir: Path,
    train_examples: Sequence[stream.TokenizedExample],
    val_examples: Sequence[stream.TokenizedExample],
    run_dir: Path,
    *,
    log: LogFn,
) -> TrainResult:
    """Train ``model_dir`` per ``cfg`` with Tunix; resume from ``run_dir/checkpoints``; export ``run_dir/final``."""
    from transformers import AutoTokenizer

    t_start = time.perf_counter()
    model_dir, run_dir = Path(model_dir), Path(run_dir)
    info = resolve_jax_devices(cfg.device)
    # One device: the model's default sharding names mesh axes (fsdp, tp) that only matter
    # under a mesh, and none is set up here.
    device = jax.devices(info.kind)[0]
    with jax.default_device(device):
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        family = read_hf_config(model_dir)["model_type"].removesuffix("_text")
        model = load_model(model_dir, dtype=cfg.precision)
        if cfg.lora.enabled:
            model = apply_lora(model, family, rank=cfg.lora.rank, alpha=cfg.lora.alpha,
                               target_modules=cfg.lora.target_modules, seed=cfg.seed)

        root = run_dir / "checkpoints"
        trainer = _restore(model, cfg, root)
        # Commit params and optimizer state to the device: the first jitted step returns committed
        # arrays, and uncommitted inputs on the first call would cost a second full compile.
        for obj in (trainer.model, trainer.optimizer):
            nnx.update(obj, jax.device_put(nnx.state(obj), device))
        resumed = trainer.train_steps or None
        history: list[dict] = []
        if resumed:
            marker = json.loads((root / f"step_{resumed}" / COMPLETE).read_text(encoding="utf-8"))
            history = marker["history"]
        trainer.checkpoint_manager = _MarkingCheckpoints(
            trainer.checkpoint_manager, root, {"config_hash": cfg.config_hash}, history)

        accum = cfg.grad_accum_steps
        batches = stream.training_batches(train_examples, batch_size=cfg.batch_size, seq_len=cfg.seq_len,
                                          pad_id=pad_id, seed=cfg.seed, pack=cfg.pack,
                                          start_step=trainer.iter_steps)  # the stream counts micro-batches
        eval_batches = list(stream.iter_batches(val_examples, batch_size=cfg.batch_size, seq_len=cfg.seq_len,
                                                pad_id=pad_id, pack=cfg.pack))[: cfg.eval_batches]
        data = _StreamData(batches, accum=accum, n_micro=max(0, cfg.steps * accum - trainer.iter_steps),
                           eval_batches=eval_batches)
        trainer.with_data_hooks(data)
        trainer.setup(cfg, data, make_schedule(cfg.optimizer, cfg.steps), log, history, t_start)
        try:
            trainer.train(train_ds=[None])  # batches come from the data hook; train_ds is not read
        finally:
            trainer.checkpoint_manager.close()

        final_dir = export_hf(trainer.model, model_dir, run_dir / "final",
                              lora_alpha=cfg.lora.alpha if cfg.lora.enabled else None)

    losses = [h["loss"] for h in history if h["loss"] is not None]
    val_losses = [h["val_loss"] for h in history if h["val_loss"] is not None]
    progress = trainer.progress
    return TrainResult(
        steps=trainer.train_steps,
        final_loss=losses[-1] if losses else math.nan,
        min_loss=min(losses) if losses else math.nan,
        final_val_loss=val_losses[-1] if val_losses else None,
        tokens_per_s=progress.timed_tokens / progress.train_s if progress.train_s > 0 else 0.0,
        wall_s=time.perf_counter() - t_start,
        compile_s=progress.compile_s,
        device=info.description,
        resumed_from=resumed,
        history=history,
        final_dir=str(final_dir),
    )
