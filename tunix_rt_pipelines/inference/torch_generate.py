"""Batched generation with transformers on PyTorch: left padding, KV cache, greedy or seeded sampling.

Only this function's arguments decide the decoding: the model's own ``generation_config.json``
(a real Qwen3 ships ``top_k=20``, sampling on, a repetition penalty) is replaced by one that
carries just the special tokens, so ``temperature=0`` means plain greedy everywhere.

The last loaded model is kept between calls (keyed by
:func:`~tunix_rt_pipelines.inference.loaded.folder_key`, so a folder rewritten in place is loaded
again): the OpenAI-compatible server calls ``generate`` once per request.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from tunix_rt_pipelines.inference.loaded import folder_key
from tunix_rt_pipelines.training.accelerator import resolve_torch_device
from tunix_rt_pipelines.training.backend import Generation

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _eos_ids(model_eos: int | list[int] | None, tokenizer_eos: int | None) -> list[int]:
    """Every id that ends a completion: the checkpoint may list several (Qwen: <|im_end|>, <|endoftext|>)."""
    ids = [model_eos] if isinstance(model_eos, int) else list(model_eos or [])
    if tokenizer_eos is not None and tokenizer_eos not in ids:
        ids.append(tokenizer_eos)
    if not ids:
        raise ValueError("neither the model nor the tokenizer names an EOS token: generation could never stop")
    return ids


@lru_cache(maxsize=1)  # one model held: a GPU's memory may be needed by the next step in this process
def _load(model_dir: str, folder_key: tuple, torch_device: str, dtype: str):  # noqa: ANN202, ARG001  (key only)
    """(tokenizer, model in eval mode, EOS ids) of a folder, kept while its files are unchanged (the
    OpenAI-compatible server calls ``generate`` once per request)."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=DTYPES[dtype]).to(torch_device).eval()
    eos_ids = _eos_ids(model.generation_config.eos_token_id, tokenizer.eos_token_id)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    model.generation_config = GenerationConfig(eos_token_id=eos_ids, pad_token_id=pad_id,
                                               bos_token_id=tokenizer.bos_token_id)
    return tokenizer, model, eos_ids


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
    """Complete every prompt; results in the order of ``prompts``.

    Greedy when ``temperature == 0``, otherwise sampling (temperature, nucleus ``top_p``) from
    a generator seeded with ``seed``: the same call gives the same completions. Prompts are
    tokenised as in training (``add_special_tokens=True``) and batched by length, so a batch
    holds little padding.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    if not prompts:
        return []
    info = resolve_torch_device(device)
    tokenizer, model, eos_ids = _load(*folder_key(model_dir), info.torch_device, dtype)
    if temperature > 0:
        decoding = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}  # top_k 0: off
    else:
        decoding = {"do_sample": False}

    encoded = tokenizer(list(prompts), add_special_tokens=True)["input_ids"]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    results: dict[int, Generation] = {}  # by prompt index
    eos = torch.tensor(eos_ids, device=info.torch_device)
    fork_devices = [torch.device(info.torch_device).index or 0] if info.kind == "gpu" else []
    with torch.random.fork_rng(devices=fork_devices), torch.inference_mode():  # the caller's RNG stays untouched
        torch.manual_seed(seed)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, padding=True, return_tensors="pt")
            batch = batch.to(info.torch_device)  # input_ids, attention_mask: [b, L], padded on the left
            t0 = time.perf_counter()
            out = model.generate(**batch, max_new_tokens=max_new_tokens, **decoding)  # [b, L + n]
            latency = (time.perf_counter() - t0) / len(idx)
            new = out[:, batch["input_ids"].shape[1] :]  # [b, n]; rows that stopped early are padded after EOS
            is_eos = torch.isin(new, eos)  # [b, n]
            for row, i in enumerate(idx):
                hits = is_eos[row].nonzero()
                stopped = hits.numel() > 0
                n = int(hits[0]) + 1 if stopped else new.shape[1]
                tokens = new[row, :n].tolist()
                results[i] = Generation(text=tokenizer.decode(tokens, skip_special_tokens=True), n_tokens=n,
                                        latency_s=latency, stopped_at_eos=stopped)
    return [results[i] for i in range(len(prompts))]
