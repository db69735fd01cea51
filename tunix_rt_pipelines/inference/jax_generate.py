"""Batched generation on JAX with Tunix's ``Sampler`` (KV cache, left padding, jitted decode loop).

Every distinct input shape costs a JAX compile (seconds), so shapes are kept few: prompts
are sorted by length and batched, each batch is padded on the left to a power-of-two
bucket, the last batch is filled up to ``batch_size`` with copies (outputs dropped), and
one KV cache size serves all batches.

A ``Sampler`` keeps its compiled functions, so the last loaded model and its sampler are kept
between calls (keyed by :func:`~tunix_rt_pipelines.inference.loaded.folder_key`: a folder
rewritten in place is loaded again). A second call on the same model and cache size compiles
nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from tunix_rt_pipelines.training import xla_flags  # noqa: F401, I001  (before jax starts a backend)

import jax
import numpy as np

from tunix_rt_pipelines.inference.loaded import folder_key
from tunix_rt_pipelines.training.accelerator import resolve_jax_devices
from tunix_rt_pipelines.training.backend import Generation


class _PromptTokenizer:
    """What Tunix's Sampler asks of a tokenizer, over a transformers tokenizer.

    Prompts are encoded exactly as training encodes them (``add_special_tokens=True``: BOS
    where the tokenizer has one), and ``bos_id`` is None so the Sampler prepends nothing
    more. Tunix's own HF adapter would instead set ``pad_token = eos_token`` on a tokenizer
    without one, which masks any EOS inside a prompt as padding.
    """

    def __init__(self, tokenizer) -> None:  # noqa: ANN001  (a transformers tokenizer)
        self._tok = tokenizer
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no eos_token: generation could never stop")
        self._pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def encode(self, text: str) -> list[int]:
        return self._tok(text, add_special_tokens=True)["input_ids"]

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=True)

    def bos_id(self) -> None:
        return None

    def eos_id(self) -> int:
        return self._tok.eos_token_id

    def pad_id(self) -> int:
        return self._pad


def _bucket(n: int) -> int:
    """Prompt length rounded up to a power of two (at least 16): few shapes, little padding."""
    return max(16, 1 << (n - 1).bit_length())


@lru_cache(maxsize=1)  # one model held: a GPU's memory may be needed by the next step in this process
def _load(model_dir: str, folder_key: tuple, device_kind: str, dtype: str):  # noqa: ANN202, ARG001  (key only)
    """(prompt tokenizer, Tunix model) of a folder, kept while its files are unchanged."""
    from transformers import AutoTokenizer

    from tunix_rt_pipelines.training.jax_backend import load_model

    tokenizer = _PromptTokenizer(AutoTokenizer.from_pretrained(model_dir))
    with jax.default_device(jax.devices(device_kind)[0]):
        model = load_model(Path(model_dir), dtype=dtype)
    return tokenizer, model


@lru_cache(maxsize=1)  # a sampler holds its model: keeping more would keep older models alive
def _sampler(model_dir: str, folder_key: tuple, device_kind: str, dtype: str, cache_size: int):  # noqa: ANN202
    """A Sampler for that model and KV cache size: its jitted prefill and decode are compiled once per shape."""
    from tunix.generate import sampler as sampler_lib

    tokenizer, model = _load(model_dir, folder_key, device_kind, dtype)
    cfg = model.config
    cache = sampler_lib.CacheConfig(cache_size=cache_size, num_layers=cfg.num_layers, num_kv_heads=cfg.num_kv_heads,
                                    head_dim=cfg.head_dim)
    return sampler_lib.Sampler(model, tokenizer, cache)


def generate(
    model_dir: Path,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "fp32",
) -> list[Generation]:
    """Complete each prompt (greedy when ``temperature == 0``), stopping at EOS; results in prompt order."""
    if not prompts:
        return []
    if max_new_tokens <= 0 or batch_size <= 0:
        raise ValueError(f"max_new_tokens ({max_new_tokens}) and batch_size ({batch_size}) must be > 0")
    info = resolve_jax_devices(device)
    key = (*folder_key(model_dir), info.kind, dtype)
    tokenizer, _ = _load(*key)
    lengths = [len(tokenizer.encode(p)) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])  # similar lengths share a bucket

    with jax.default_device(jax.devices(info.kind)[0]):
        sampler = _sampler(*key, _bucket(max(lengths)) + max_new_tokens)  # one cache shape for every batch

        results: list[Generation | None] = [None] * len(prompts)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            texts = [prompts[i] for i in idx]
            texts += [texts[0]] * (batch_size - len(texts))  # same batch shape: no recompile
            t0 = time.perf_counter()
            out = sampler(
                texts,
                max_generation_steps=max_new_tokens,
                max_prompt_length=_bucket(max(lengths[i] for i in idx)),
                temperature=temperature,
                top_p=top_p if temperature > 0 else None,  # no top_p: Tunix samples greedily
                seed=seed + start,
            )
            latency = (time.perf_counter() - t0) / len(idx)
            for i, tokens in zip(idx, out.tokens):
                # Tunix cuts each output before its first EOS; shorter than the budget means EOS came.
                tokens = np.asarray(tokens).tolist()
                stopped = len(tokens) < max_new_tokens
                results[i] = Generation(text=tokenizer.decode(tokens), n_tokens=len(tokens) + int(stopped),
                                        latency_s=latency, stopped_at_eos=stopped)
    return results  # type: ignore[return-value]  (every index was filled)
