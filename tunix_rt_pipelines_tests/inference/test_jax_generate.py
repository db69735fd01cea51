"""Tunix-sampler generation on the tiny random Qwen3: greedy parity with transformers, EOS, batching."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunix_rt_pipelines.inference import jax_generate
from tunix_rt_pipelines.inference.jax_generate import generate
from tunix_rt_pipelines.training.base_model import build_tiny_model
from tunix_rt_pipelines_tests.training.conftest import TOKENIZER_TEXTS, tiny_model_config

PROMPTS = ["Question: What is 3 + 4?\n", "Question: What is 12 + 40?\nAnswer step by step.\n", "7", "Question: 1 + 2"]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tiny_model_config("qwen3"), TOKENIZER_TEXTS, tmp_path_factory.mktemp("qwen3"), seed=0)


def hf_greedy(model_dir: Path, prompt: str, max_new_tokens: int) -> list[int]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    ids = tok(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return out[0, ids["input_ids"].shape[1]:].tolist()


def test_greedy_generation_matches_transformers_generate(tiny_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    results = generate(tiny_model_dir, PROMPTS, max_new_tokens=10, batch_size=3)
    for prompt, result in zip(PROMPTS, results):
        expected = hf_greedy(tiny_model_dir, prompt, 10)
        assert result.text == tok.decode(expected, skip_special_tokens=True)
        assert result.n_tokens == 10 and not result.stopped_at_eos and result.latency_s > 0


def test_greedy_generation_is_deterministic_and_independent_of_batching(tiny_model_dir: Path) -> None:
    a = generate(tiny_model_dir, PROMPTS, max_new_tokens=8, batch_size=4)
    b = generate(tiny_model_dir, PROMPTS, max_new_tokens=8, batch_size=1)
    assert [g.text for g in a] == [g.text for g in b]


def test_generation_stops_at_eos(tiny_model_dir: Path, tmp_path: Path) -> None:
    # Declare as EOS the 3rd token the model greedily emits (one it has not emitted before).
    prompt = PROMPTS[0]
    greedy = hf_greedy(tiny_model_dir, prompt, 10)
    k = next(i for i in range(2, 10) if greedy[i] not in greedy[:i])
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    [before] = generate(model_dir, [prompt], max_new_tokens=10, batch_size=2)  # loads and keeps this folder
    assert not before.stopped_at_eos
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.eos_token = tok.convert_ids_to_tokens(greedy[k])
    tok.save_pretrained(str(model_dir))  # rewritten in place: the kept model must not be reused

    [result] = generate(model_dir, [prompt], max_new_tokens=10, batch_size=2)
    assert result.stopped_at_eos and result.n_tokens == k + 1
    assert result.text == tok.decode(greedy[:k], skip_special_tokens=True)


def test_a_second_call_reuses_the_compiled_sampler(tiny_model_dir: Path) -> None:
    first = generate(tiny_model_dir, PROMPTS, max_new_tokens=6, batch_size=2)
    hits = jax_generate._sampler.cache_info().hits
    second = generate(tiny_model_dir, PROMPTS, max_new_tokens=6, batch_size=2)
    assert jax_generate._sampler.cache_info().hits == hits + 1
    assert [g.text for g in second] == [g.text for g in first]


def test_sampling_is_reproducible_with_a_seed(tiny_model_dir: Path) -> None:
    a = generate(tiny_model_dir, PROMPTS[:2], max_new_tokens=8, batch_size=2, temperature=1.0, top_p=0.9, seed=3)
    b = generate(tiny_model_dir, PROMPTS[:2], max_new_tokens=8, batch_size=2, temperature=1.0, top_p=0.9, seed=3)
    assert [g.text for g in a] == [g.text for g in b]


def test_empty_prompt_list_generates_nothing(tiny_model_dir: Path) -> None:
    assert generate(tiny_model_dir, [], max_new_tokens=4, batch_size=2) == []


@pytest.mark.parametrize("kwargs", [{"max_new_tokens": 0, "batch_size": 2}, {"max_new_tokens": 4, "batch_size": 0}])
def test_nonpositive_budget_or_batch_is_an_error(tiny_model_dir: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        generate(tiny_model_dir, PROMPTS, **kwargs)
