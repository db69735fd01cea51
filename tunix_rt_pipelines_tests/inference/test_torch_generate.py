"""Batched generation on tiny Qwen3 models on CPU: determinism, left padding, EOS handling, seeded sampling."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunix_rt_pipelines.inference import torch_generate
from tunix_rt_pipelines.inference.torch_generate import generate
from tunix_rt_pipelines.training.base_model import build_tiny_model
from tunix_rt_pipelines.training.config import ModelConfig

TEXTS = [f"Question: What is {a} + {b}?\n{a} + {b} = {a + b}\n#### {a + b}" for a in range(20) for b in range(5)]
PROMPTS = ["Question: What is 3 + 4?\n", "Question: What is 12 + 1?\nAnswer", "Q", "Question: 7 + 2 = "]


@pytest.fixture(scope="module")
def random_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = ModelConfig(family="qwen3", hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16,
                      intermediate_size=128, vocab_size=300, max_position_embeddings=256)
    return build_tiny_model(cfg, TEXTS, tmp_path_factory.mktemp("qwen3"), seed=0)


def _chain_model(model_dir: Path, out_dir: Path, chains: dict[int, list[int]]) -> Path:
    """A copy of the model whose greedy next token depends on the current token only, per ``chains``.

    Attention and MLP outputs are zeroed, so the last hidden state is the current token's
    embedding. Token ``chain[k]`` gets basis vector ``e_j`` as embedding and ``lm_head`` maps
    ``e_j`` to ``chain[k + 1]``: prompt-end token ``p`` with ``chains[p] = [a, b, eos]``
    generates ``a, b, eos``.
    """
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed, head = model.model.embed_tokens.weight, model.lm_head.weight  # [V, H] each
        head.zero_()
        j = 0
        for start, chain in chains.items():
            for current, nxt in zip([start, *chain[:-1]], chain, strict=True):
                embed[current] = 0.0
                embed[current, j] = 1.0
                head[nxt, j] = 10.0
                j += 1
    model.save_pretrained(str(out_dir))
    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(out_dir))
    return out_dir


def test_greedy_generation_is_deterministic_and_batching_does_not_change_it(random_model_dir: Path) -> None:
    batched = generate(random_model_dir, PROMPTS, max_new_tokens=8, batch_size=4)
    again = generate(random_model_dir, PROMPTS, max_new_tokens=8, batch_size=4)
    one_by_one = generate(random_model_dir, PROMPTS, max_new_tokens=8, batch_size=1)
    assert [g.text for g in batched] == [g.text for g in again] == [g.text for g in one_by_one]
    assert all(g.n_tokens <= 8 and g.latency_s > 0 for g in batched)


def test_generation_stops_at_eos_per_item(random_model_dir: Path, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(random_model_dir))
    eos = tokenizer.eos_token_id
    last_a = tokenizer("Question: What is 3 + 4?\n")["input_ids"][-1]
    last_b = tokenizer("Q")["input_ids"][-1]
    word_1, word_2 = tokenizer(" What")["input_ids"][-1], tokenizer("Question")["input_ids"][-1]
    model_dir = _chain_model(random_model_dir, tmp_path, {last_a: [word_1, word_2, eos], last_b: [eos]})

    long_, short = generate(model_dir, ["Question: What is 3 + 4?\n", "Q"], max_new_tokens=6, batch_size=2)
    assert (long_.n_tokens, long_.stopped_at_eos) == (3, True)
    assert long_.text == tokenizer.decode([word_1, word_2])  # prompt and EOS excluded
    assert (short.n_tokens, short.stopped_at_eos, short.text) == (1, True, "")

    (cut,) = generate(model_dir, ["Question: What is 3 + 4?\n"], max_new_tokens=2, batch_size=1)
    assert (cut.n_tokens, cut.stopped_at_eos) == (2, False)


def test_sampling_is_reproducible_for_a_seed(random_model_dir: Path) -> None:
    def sample(seed: int) -> list[str]:
        return [g.text for g in generate(random_model_dir, PROMPTS, max_new_tokens=12, batch_size=2,
                                         temperature=1.0, top_p=0.95, seed=seed)]

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_the_kept_model_is_reused_until_its_folder_changes(random_model_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(random_model_dir, model_dir)
    (before,) = generate(model_dir, ["Q"], max_new_tokens=4, batch_size=1)
    misses = torch_generate._load.cache_info().misses
    (again,) = generate(model_dir, ["Q"], max_new_tokens=4, batch_size=1)
    assert torch_generate._load.cache_info().misses == misses  # the second call loaded nothing
    assert (again.text, again.n_tokens) == (before.text, before.n_tokens) and before.n_tokens == 4

    eos = AutoTokenizer.from_pretrained(str(model_dir)).eos_token_id
    last = AutoTokenizer.from_pretrained(str(model_dir))("Q")["input_ids"][-1]
    _chain_model(random_model_dir, model_dir, {last: [eos]})  # new weights written over the same folder
    (after,) = generate(model_dir, ["Q"], max_new_tokens=4, batch_size=1)
    assert (after.n_tokens, after.stopped_at_eos) == (1, True)
