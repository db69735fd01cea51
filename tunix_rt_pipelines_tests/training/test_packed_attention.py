"""Per-example attention over packed rows: the layout, and equality with transformers' masked SDPA."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunix_rt_pipelines.training import packed_attention, stream

CPU = torch.device("cpu")


def _batch_of_lengths(rows: list[list[int]], seq_len: int = 8) -> stream.TokenBatch:
    """A batch whose rows hold examples of the given lengths (1 prompt token each, then completion)."""
    examples = [stream.TokenizedExample([5], list(range(6, 5 + n))) for row in rows for n in row]
    numbered, k = [], 0
    for row in rows:
        numbered.append(list(range(k, k + len(row))))
        k += len(row)
    return stream.make_batch(examples, numbered, batch_size=len(rows), seq_len=seq_len, pad_id=0)


def test_layout_lists_each_examples_positions_in_row_order() -> None:
    batch = _batch_of_lengths([[3, 2], [5]])  # row 0: 3 + 2 tokens, 3 pads; row 1: 5 tokens, 3 pads
    layout = packed_attention.example_layout(batch.segment_ids, batch.positions)
    assert layout.gather.tolist() == [[0, 1, 2, 0, 0], [3, 4, 0, 0, 0], [8, 9, 10, 11, 12]]
    # Real positions point at their slot (example * 5 + offset); padding at slot 0.
    assert layout.scatter.tolist() == [0, 1, 2, 5, 6, 0, 0, 0, 10, 11, 12, 13, 14, 0, 0, 0]


def test_scatter_undoes_gather_on_every_real_token() -> None:
    batch = _batch_of_lengths([[1, 4, 2], [], [7], [2, 2, 2, 2]])
    layout = packed_attention.example_layout(batch.segment_ids, batch.positions)
    real = np.flatnonzero(batch.segment_ids.reshape(-1))
    assert (layout.gather.reshape(-1)[layout.scatter[real]] == real).all()
    assert layout.gather.shape == (8, 7)  # eight examples, the longest has 7 tokens


def test_batch_without_tokens_is_refused() -> None:
    empty = np.zeros((2, 8), dtype=np.int32)
    with pytest.raises(ValueError, match="without tokens"):
        packed_attention.example_layout(empty, empty)


def _hidden_and_grads(model: torch.nn.Module, batch: stream.TokenBatch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Last hidden states at real positions, and the gradients of a fixed random projection of them.

    Not of their sum of squares: after the final RMSNorm that is nearly constant, so its
    gradients are mostly float32 cancellation noise.
    """
    kwargs = packed_attention.layout_kwargs(batch.segment_ids, batch.positions, CPU)
    out = model.get_decoder()(input_ids=torch.from_numpy(batch.input_ids).long(),
                              position_ids=torch.from_numpy(batch.positions).long(), use_cache=False, **kwargs)
    hidden = out.last_hidden_state[torch.from_numpy(batch.segment_ids > 0)]  # [N, H]
    weights = torch.randn(hidden.shape, generator=torch.Generator().manual_seed(0))  # [N, H]
    (hidden * weights).sum().backward()
    return hidden.detach(), [p.grad for p in model.parameters()]


def _packed_batch(model_dir: Path) -> stream.TokenBatch:
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    pairs = [(f"Question: What is {a} + {b}?\n", f"{a} + {b} = {a + b}\n#### {a + b}") for a, b in
             [(1, 3), (12, 40), (7, 7), (30, 58), (2, 9), (41, 4)]]
    examples, _ = stream.tokenize_pairs(tok, pairs, seq_len=128)
    return stream.make_batch(examples, [[0, 1, 2], [3], [4, 5]], batch_size=4, seq_len=128, pad_id=0)


def _models(model_dir: Path, **overrides: object) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(transformers' own SDPA, ours) from the same weights."""
    stock = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, **overrides)
    ours = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, **overrides)
    packed_attention.enable(ours)
    return stock, ours


def _assert_same(stock: torch.nn.Module, ours: torch.nn.Module, batch: stream.TokenBatch) -> None:
    h_stock, g_stock = _hidden_and_grads(stock, batch)
    h_ours, g_ours = _hidden_and_grads(ours, batch)
    torch.testing.assert_close(h_ours, h_stock, rtol=1e-5, atol=1e-5)
    for x, y in zip(g_ours, g_stock, strict=True):  # float32 through other kernels: close, not equal
        assert (x is None and y is None) or (x - y).norm() <= 1e-5 * y.norm()  # None: the unused lm_head


@pytest.mark.parametrize(("model_fixture", "overrides"), [
    ("tiny_model_dir", {}),
    ("tiny_gemma_dir", {}),
    ("tiny_gemma_dir", {"query_pre_attn_scalar": 4}),  # a scale other than 1/sqrt(head_dim)
])
def test_packed_attention_equals_transformers_masked_sdpa(
    model_fixture: str, overrides: dict, request: pytest.FixtureRequest
) -> None:
    model_dir = request.getfixturevalue(model_fixture)
    batch = _packed_batch(model_dir)
    assert packed_attention.layout_kwargs(batch.segment_ids, batch.positions, CPU)  # the gathered path runs
    _assert_same(*_models(model_dir, **overrides), batch)


def test_batch_where_gathering_costs_more_runs_the_masked_path(tiny_model_dir: Path) -> None:
    # One example of 120 tokens among many of 4: gathered, all would be padded to 120.
    long_one = stream.TokenizedExample([5], list(range(6, 125)))
    short = [stream.TokenizedExample([5], [6, 7, 8]) for _ in range(30)]
    batch = stream.make_batch([long_one, *short], [[0], list(range(1, 31))], batch_size=2, seq_len=128, pad_id=0)
    layout = packed_attention.example_layout(batch.segment_ids, batch.positions)
    assert not packed_attention.gathered_is_cheaper(layout, batch.segment_ids.shape)
    assert packed_attention.layout_kwargs(batch.segment_ids, batch.positions, CPU) == {}
    _assert_same(*_models(tiny_model_dir), batch)


def test_batch_of_one_example_gathers_two_rows() -> None:
    batch = _batch_of_lengths([[4], []])  # a second dimension of 1 would recompile under torch.compile
    layout = packed_attention.example_layout(batch.segment_ids, batch.positions)
    assert layout.gather.shape == (2, 4) and layout.gather[1].tolist() == [0, 0, 0, 0]
    assert layout.scatter[:4].tolist() == [0, 1, 2, 3]


def test_sliding_window_shorter_than_an_example_is_applied(tiny_gemma_dir: Path) -> None:
    batch = _packed_batch(tiny_gemma_dir)
    stock, local = _models(tiny_gemma_dir, sliding_window=4, layer_types=["sliding_attention"] * 2)
    _assert_same(stock, local, batch)
    _, wide = _models(tiny_gemma_dir, sliding_window=128, layer_types=["sliding_attention"] * 2)
    h_local, _ = _hidden_and_grads(local, batch)
    h_wide, _ = _hidden_and_grads(wide, batch)
    assert (h_local - h_wide).abs().max() > 1e-3  # the window did change what was attended


def test_forward_without_a_layout_runs_transformers_own_attention(tiny_model_dir: Path) -> None:
    stock, ours = _models(tiny_model_dir)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, stock(ids).logits)


def test_saved_model_does_not_ask_for_packed_attention(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    packed_attention.enable(model)
    model.save_pretrained(str(tmp_path))
    assert packed_attention.NAME not in (tmp_path / "config.json").read_text()
    reloaded = AutoModelForCausalLM.from_pretrained(str(tmp_path))
    assert reloaded.config._attn_implementation != packed_attention.NAME
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "qwen3"


def test_attention_dropout_applies_in_training_only(tiny_model_dir: Path) -> None:
    batch = _packed_batch(tiny_model_dir)
    stock, ours = _models(tiny_model_dir, attention_dropout=0.5)
    _assert_same(stock, ours, batch)  # eval mode: transformers passes no dropout, and neither do we
    h_eval, _ = _hidden_and_grads(stock, batch)
    ours.train()
    torch.manual_seed(0)
    h_first, _ = _hidden_and_grads(ours, batch)
    torch.manual_seed(0)
    h_again, _ = _hidden_and_grads(ours, batch)
    torch.testing.assert_close(h_first, h_again)  # the dropout mask comes from torch's generator
    assert (h_first - h_eval).abs().max() > 1e-3
