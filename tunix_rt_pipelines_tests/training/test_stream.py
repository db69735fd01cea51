"""The token/label stream both backends train on: masks, packing, isolation, resume, fixed shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from tunix_rt_pipelines.training.stream import (
    TokenizedExample,
    iter_batches,
    make_batch,
    pack_rows,
    tokenize_pairs,
    training_batches,
)

PROMPT = "Question: What is 3 + 4?\nAnswer step by step.\n"
COMPLETION = "3 + 4 = 7\n#### 7"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):  # noqa: ANN201
    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def _examples(n: int, seed: int = 0) -> list[TokenizedExample]:
    """Synthetic examples of varied length (ids > 2 so none is a special token)."""
    rng = np.random.default_rng(seed)
    return [TokenizedExample(list(rng.integers(3, 50, rng.integers(2, 6))), list(rng.integers(3, 50, rng.integers(2, 8))))
            for _ in range(n)]


def test_golden_example_masks_prompt_and_padding_trains_completion_and_eos(tokenizer) -> None:  # noqa: ANN001
    (ex,), _ = tokenize_pairs(tokenizer, [(PROMPT, COMPLETION)], seq_len=64)
    batch = make_batch([ex], [[0]], batch_size=1, seq_len=64, pad_id=tokenizer.pad_token_id)
    n_p, n = len(ex.prompt_ids), len(ex)
    assert tokenizer.decode(batch.input_ids[0, n_p:n - 1]) == COMPLETION
    assert batch.input_ids[0, n - 1] == tokenizer.eos_token_id
    assert batch.loss_mask[0].tolist() == [0] * n_p + [1] * (n - n_p) + [0] * (64 - n)
    assert (batch.input_ids[0, n:] == tokenizer.pad_token_id).all()


def test_packing_puts_several_examples_in_a_row_with_restarting_positions() -> None:
    examples = _examples(3)
    batch = make_batch(examples, pack_rows(examples, 64), batch_size=1, seq_len=64, pad_id=0)
    lengths = [len(e) for e in examples]
    starts = np.cumsum([0, *lengths])
    assert batch.segment_ids[0, : starts[-1]].tolist() == sum(([s + 1] * n for s, n in enumerate(lengths)), [])
    assert batch.positions[0, : starts[-1]].tolist() == sum((list(range(n)) for n in lengths), [])
    assert (batch.segment_ids[0, starts[-1]:] == 0).all()


def test_attention_mask_blocks_cross_segment_attention() -> None:
    examples = _examples(2)
    batch = make_batch(examples, [[0, 1]], batch_size=1, seq_len=32, pad_id=0)
    mask = batch.attention_mask_3d()[0]
    a, b = len(examples[0]), len(examples[1])
    assert mask[a, a] and mask[a + b - 1, a]  # the second example sees itself, causally
    assert not mask[a:a + b, :a].any()  # and never the first
    assert not mask[a + b:].any()  # padding attends to nothing


def test_too_long_pairs_are_dropped_and_counted(tokenizer) -> None:  # noqa: ANN001
    pairs = [(PROMPT, COMPLETION), (PROMPT, COMPLETION * 20), (PROMPT * 20, COMPLETION)]
    kept, stats = tokenize_pairs(tokenizer, pairs, seq_len=64)
    assert (stats.n_examples, stats.n_kept, stats.n_too_long) == (3, 1, 2)
    assert len(kept) == 1 and all(len(e) <= 64 for e in kept)


def test_resume_yields_exactly_the_batches_after_start_step() -> None:
    examples = _examples(40)
    kw = dict(batch_size=2, seq_len=24, pad_id=0, seed=7)
    full = training_batches(examples, **kw)
    expected = [next(full) for _ in range(30)][12:]  # crosses epoch boundaries
    resumed = training_batches(examples, start_step=12, **kw)
    for want in expected:
        got = next(resumed)
        assert (got.input_ids == want.input_ids).all() and (got.loss_mask == want.loss_mask).all()
        assert (got.segment_ids == want.segment_ids).all()


def test_every_batch_has_the_same_shape() -> None:
    examples = _examples(25)
    shapes = {b.input_ids.shape for b in iter_batches(examples, batch_size=4, seq_len=20, pad_id=0)}
    shapes |= {b.loss_mask.shape for b in iter_batches(examples, batch_size=4, seq_len=20, pad_id=0, pack=False)}
    assert shapes == {(4, 20)}
