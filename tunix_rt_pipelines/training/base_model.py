"""The base model of the smoke path: a real architecture at a tiny size, saved as an HF folder.

``build_tiny_model`` writes exactly what a downloaded checkpoint holds (``config.json``,
``model.safetensors``, ``generation_config.json``, tokenizer files), so both backends load
it through the same code that loads Gemma 3 or Qwen3 from the hub. Weights are random
(seeded); the tokenizer is trained on the given texts.

Family details that matter for parity between backends (see shared FACTS): Tunix's Qwen3
ignores ``rope_theta`` and uses 1e6, so the HF config says 1e6 too; Tunix's Gemma 3 scales
queries by ``head_dim``, so ``query_pre_attn_scalar = head_dim``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tunix_rt_pipelines.training.config import ModelConfig
from tunix_rt_pipelines.training.tokenizer import save_tokenizer, train_tokenizer

QWEN3_ROPE_THETA = 1_000_000.0


def hf_config_for(model_cfg: ModelConfig, tokenizer) -> "transformers.PretrainedConfig":  # noqa: ANN001, F821
    """The transformers config of ``model_cfg``'s architecture, sized to the tokenizer."""
    from transformers import Gemma3TextConfig, Qwen3Config

    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=model_cfg.hidden_size,
        intermediate_size=model_cfg.intermediate_size,
        num_hidden_layers=model_cfg.num_layers,
        num_attention_heads=model_cfg.num_heads,
        num_key_value_heads=model_cfg.num_kv_heads,
        head_dim=model_cfg.head_dim,
        max_position_embeddings=model_cfg.max_position_embeddings,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    if model_cfg.family == "qwen3":
        return Qwen3Config(rope_theta=QWEN3_ROPE_THETA, tie_word_embeddings=False, **common)
    if model_cfg.family == "gemma3":
        return Gemma3TextConfig(
            query_pre_attn_scalar=model_cfg.head_dim,
            tie_word_embeddings=True,  # Tunix's Gemma 3 always reuses the embedding as the output head
            # Every layer global at this size: a sliding window longer than the sequence is the same thing.
            sliding_window=model_cfg.max_position_embeddings,
            **common,
        )
    raise ValueError(f"unknown model family {model_cfg.family!r}; supported: qwen3, gemma3")


def build_tiny_model(model_cfg: ModelConfig, texts: Iterable[str], out_dir: Path, *, seed: int) -> Path:
    """Train a tokenizer on ``texts``, build a random-weight model of ``model_cfg``, save both as HF."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts, vocab_size=model_cfg.vocab_size, family=model_cfg.family)
    hf_cfg = hf_config_for(model_cfg, tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(hf_cfg, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, do_sample=False,
    )
    model.save_pretrained(str(out_dir), safe_serialization=True)
    save_tokenizer(tokenizer, out_dir)
    return out_dir


def read_hf_config(model_dir: Path) -> dict:
    """config.json of an HF folder, with a clear error when it is not one."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: not an HF model folder (no config.json)")
    return json.loads(path.read_text(encoding="utf-8"))


def count_parameters(model_dir: Path) -> int:
    """Parameters stored in the folder's safetensors files (no model is built)."""
    from safetensors import safe_open

    total = 0
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(f), framework="np") as st:
            for name in st.keys():
                shape = st.get_slice(name).get_shape()
                n = 1
                for d in shape:
                    n *= d
                total += n
    return total
