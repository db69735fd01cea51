"""The tiny base model: a real architecture saved as an HF folder that both backends can load."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM

from tunix_rt_pipelines.training.base_model import build_tiny_model, count_parameters, read_hf_config

from .conftest import TOKENIZER_TEXTS, tiny_model_config


def test_saved_folder_reloads_with_automodel(tiny_model_dir: Path, tiny_gemma_dir: Path) -> None:
    for model_dir, model_type in ((tiny_model_dir, "qwen3"), (tiny_gemma_dir, "gemma3_text")):
        model = AutoModelForCausalLM.from_pretrained(str(model_dir))
        assert model.config.model_type == model_type == read_hf_config(model_dir)["model_type"]
        logits = model(torch.tensor([[1, 5, 9]])).logits
        assert logits.shape == (1, 3, model.config.vocab_size) and torch.isfinite(logits).all()


def test_count_parameters_matches_the_torch_model(tiny_model_dir: Path, tiny_gemma_dir: Path) -> None:
    for model_dir in (tiny_model_dir, tiny_gemma_dir):
        model = AutoModelForCausalLM.from_pretrained(str(model_dir))
        assert count_parameters(model_dir) == sum(p.numel() for p in model.parameters())


def test_same_seed_gives_identical_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tiny_model_config("qwen3"), TOKENIZER_TEXTS, tmp_path / "again", seed=0)
    other = build_tiny_model(tiny_model_config("qwen3"), TOKENIZER_TEXTS, tmp_path / "other", seed=1)
    first = load_file(str(tiny_model_dir / "model.safetensors"))
    second, third = load_file(str(again / "model.safetensors")), load_file(str(other / "model.safetensors"))
    assert first.keys() == second.keys()
    assert all((first[k] == second[k]).all() for k in first)
    assert any((first[k] != third[k]).any() for k in first)
