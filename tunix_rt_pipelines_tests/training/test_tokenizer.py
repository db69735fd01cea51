"""The locally trained tokenizer: digit splitting and family special tokens, reloadable as HF."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer

from tunix_rt_pipelines.training.tokenizer import train_tokenizer

from .conftest import TOKENIZER_TEXTS


def test_digits_are_split_one_by_one(tiny_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    digit_tokens = [t for t in tok.tokenize("12345 + 678 = 13023") if any(c.isdigit() for c in t)]
    assert all(len(t.lstrip("Ġ")) == 1 for t in digit_tokens)
    assert len(digit_tokens) == 13


def test_gemma_adds_bos_and_qwen_does_not(tiny_model_dir: Path, tiny_gemma_dir: Path) -> None:
    qwen = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    gemma = AutoTokenizer.from_pretrained(str(tiny_gemma_dir))
    assert gemma("1 + 2")["input_ids"][0] == gemma.bos_token_id == gemma.convert_tokens_to_ids("<bos>")
    assert qwen.bos_token_id is None
    assert qwen("1 + 2")["input_ids"] == qwen("1 + 2", add_special_tokens=False)["input_ids"]


def test_pad_is_its_own_token_never_eos() -> None:
    for family in ("qwen3", "gemma3"):
        tok = train_tokenizer(TOKENIZER_TEXTS, vocab_size=300, family=family)
        assert tok.pad_token_id is not None and tok.eos_token_id is not None
        assert tok.pad_token_id != tok.eos_token_id


def test_saved_tokenizer_reloads_with_autotokenizer(tiny_model_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    text = "Question: What is 21 + 47?\n#### 68"
    assert tok.decode(tok(text)["input_ids"]) == text
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token == "<|pad|>"
