"""Tiny real-architecture models saved in HF format, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunix_rt_pipelines.training.base_model import build_tiny_model
from tunix_rt_pipelines.training.config import ModelConfig

# Text the tokenizer learns from: arithmetic traces in the plain template's shape.
TOKENIZER_TEXTS = [
    f"Question: What is {a} + {b}?\nAnswer step by step.\n{a} + {b} = {a + b}\n#### {a + b}"
    for a in range(0, 60, 7) for b in range(3, 90, 11)
]


def tiny_model_config(family: str) -> ModelConfig:
    return ModelConfig(family=family, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16,
                       intermediate_size=128, vocab_size=320, max_position_embeddings=512)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Qwen3 (hidden 64, 2 layers) with a locally trained tokenizer."""
    return build_tiny_model(tiny_model_config("qwen3"), TOKENIZER_TEXTS, tmp_path_factory.mktemp("qwen3"), seed=0)


@pytest.fixture(scope="session")
def tiny_gemma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same at Gemma 3's architecture (BOS token, query_pre_attn_scalar = head_dim)."""
    return build_tiny_model(tiny_model_config("gemma3"), TOKENIZER_TEXTS, tmp_path_factory.mktemp("gemma3"), seed=0)
