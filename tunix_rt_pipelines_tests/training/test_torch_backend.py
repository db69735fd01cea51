"""The PyTorch training loop on a tiny Qwen3 on CPU: learning, exact accumulation, packing, resume, export, LoRA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunix_rt_pipelines.training import packed_attention, stream, torch_backend
from tunix_rt_pipelines.training.backend import CheckpointError, NonFiniteLoss, StepLog
from tunix_rt_pipelines.training.config import TrainingConfig
from tunix_rt_pipelines.training.torch_backend import (
    COMPLETE, accumulate_gradients, add_lora, token_loss_sum, train,
)

SEQ_LEN = 64
CPU = torch.device("cpu")


def _cfg(**changes: object) -> TrainingConfig:
    base = TrainingConfig(name="torch-test", seq_len=SEQ_LEN, batch_size=4, steps=30, device="cpu", log_every=5,
                          eval_every=0, checkpoint_every=100)
    return base.replace(**{"optimizer.warmup_steps": 2, **changes})


def _tokenize(model_dir: Path) -> list[stream.TokenizedExample]:
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    pairs = [(f"Question: What is {a} + {b}?\nAnswer step by step.\n", f"{a} + {b} = {a + b}\n#### {a + b}")
             for a in range(4) for b in (3, 17, 42, 58)]
    kept, stats = stream.tokenize_pairs(tokenizer, pairs, seq_len=SEQ_LEN)
    assert stats.n_too_long == 0
    return kept


@pytest.fixture(scope="module")
def examples(tiny_model_dir: Path) -> list[stream.TokenizedExample]:
    return _tokenize(tiny_model_dir)


def _stock_model(model_dir: Path) -> torch.nn.Module:
    """The model as transformers loads it, with its own attention: what a user's forward runs."""
    return AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)


def _model(model_dir: Path) -> torch.nn.Module:
    """The model as ``load_for_training`` prepares it (per-example attention for packed batches)."""
    model = _stock_model(model_dir)
    packed_attention.enable(model)
    return model


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _no_log(_: StepLog) -> None:
    return None


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, examples: list, tmp_path_factory: pytest.TempPathFactory):
    logs: list[StepLog] = []
    cfg = _cfg(eval_every=10, eval_batches=2)
    result = train(cfg, tiny_model_dir, examples, examples[:8], tmp_path_factory.mktemp("run"), log=logs.append)
    return result, logs


def test_training_lowers_the_loss_on_a_repeated_dataset(trained) -> None:
    result, logs = trained
    assert result.steps == 30
    assert [log.step for log in logs] == [5, 10, 15, 20, 25, 30]
    assert logs[-1].loss < 0.6 * logs[0].loss
    assert result.final_val_loss is not None and result.final_val_loss < logs[0].loss
    assert [log.step for log in logs if log.val_loss is not None] == [10, 20, 30]
    assert result.tokens_per_s > 0 and result.resumed_from is None


def test_exported_final_folder_loads_with_auto_classes(trained, examples: list) -> None:
    result, _ = trained
    model = _model(Path(result.final_dir))
    batch = stream.make_batch(examples, [[0]], batch_size=1, seq_len=SEQ_LEN, pad_id=0)
    with torch.no_grad():
        loss = token_loss_sum(model, batch, CPU).item() / batch.loss_mask[:, 1:].sum()
    assert loss < result.history[0]["loss"]  # the trained weights, not the base ones
    assert AutoTokenizer.from_pretrained(result.final_dir).eos_token_id is not None


@pytest.mark.parametrize("model_fixture", ["tiny_model_dir", "tiny_gemma_dir"])
def test_packed_row_gives_each_example_its_own_loss(model_fixture: str, request: pytest.FixtureRequest) -> None:
    model_dir = request.getfixturevalue(model_fixture)
    model, examples = _model(model_dir), _tokenize(model_dir)
    stock = _stock_model(model_dir)
    a, b = examples[0], examples[5]
    packed = stream.make_batch([a, b], [[0, 1]], batch_size=1, seq_len=SEQ_LEN, pad_id=0)
    with torch.no_grad():
        packed_loss = token_loss_sum(model, packed, CPU).item()
        alone = 0.0
        for ex in (a, b):  # reference: HF's own logits on the example by itself, no packing, no padding
            ids = torch.tensor([ex.prompt_ids + ex.completion_ids])
            logits = stock(ids).logits[0, len(ex.prompt_ids) - 1 : -1]  # [n_completion, V]
            alone += F.cross_entropy(logits, torch.tensor(ex.completion_ids), reduction="sum").item()
        # Positions that run on across the boundary make one long sequence: b then sees a.
        leaky = stream.TokenBatch(packed.input_ids, packed.loss_mask,
                                  np.where(packed.segment_ids > 0, np.arange(SEQ_LEN), 0).astype(np.int32),
                                  packed.segment_ids)
        leaky_loss = token_loss_sum(model, leaky, CPU).item()
    assert packed_loss == pytest.approx(alone, rel=1e-5)
    assert abs(leaky_loss - alone) > 1e-3


def test_grad_accumulation_weights_micro_batches_by_target_tokens(tiny_model_dir: Path, examples: list) -> None:
    # Micro-batches with very different target counts: a per-micro-batch mean would weight them wrongly.
    small = stream.make_batch(examples, [[0]], batch_size=2, seq_len=SEQ_LEN, pad_id=0)
    big = stream.make_batch(examples, [[1], [2]], batch_size=2, seq_len=SEQ_LEN, pad_id=0)
    both = stream.make_batch(examples, [[0], [], [1], [2]], batch_size=4, seq_len=SEQ_LEN, pad_id=0)

    def grads(micro: list[stream.TokenBatch]) -> tuple[float, list[torch.Tensor]]:
        model = _model(tiny_model_dir)
        loss = accumulate_gradients(model, micro, CPU).item()
        return loss, [p.grad for p in model.parameters()]

    loss_acc, g_acc = grads([small, big])
    loss_one, g_one = grads([both])
    assert loss_acc == pytest.approx(loss_one, rel=1e-5)
    for x, y in zip(g_acc, g_one, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)


def test_chunked_lm_head_gives_the_same_loss_and_gradients(
    tiny_model_dir: Path, examples: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = stream.make_batch(examples, [[0], [1], [2]], batch_size=3, seq_len=SEQ_LEN, pad_id=0)

    def loss_and_grads() -> tuple[float, list[torch.Tensor]]:
        model = _model(tiny_model_dir)
        loss = accumulate_gradients(model, [batch], CPU).item()
        return loss, [p.grad for p in model.parameters()]

    whole, g_whole = loss_and_grads()
    monkeypatch.setattr(torch_backend, "_LOGIT_CHUNK_ROWS", 7)  # ~40 targets: several chunks and a ragged tail
    chunked, g_chunked = loss_and_grads()
    assert chunked == pytest.approx(whole, rel=1e-6)
    for x, y in zip(g_chunked, g_whole, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-7)


def test_two_accumulated_micro_batches_make_the_same_update_as_one_double_batch(
    tiny_model_dir: Path, examples: list, tmp_path: Path
) -> None:
    one = train(_cfg(steps=3, batch_size=4, pack=False), tiny_model_dir, examples, [], tmp_path / "one", log=_no_log)
    acc = train(_cfg(steps=3, batch_size=2, grad_accum_steps=2, pack=False), tiny_model_dir, examples, [],
                tmp_path / "acc", log=_no_log)
    assert acc.final_loss == pytest.approx(one.final_loss, rel=1e-5)
    w_one, w_acc = _weights(Path(one.final_dir)), _weights(Path(acc.final_dir))
    for name, w in w_one.items():
        torch.testing.assert_close(w_acc[name], w, rtol=1e-4, atol=1e-5)


class _Interrupt(Exception):
    pass


def test_resumed_run_matches_an_uninterrupted_one(tiny_model_dir: Path, examples: list, tmp_path: Path) -> None:
    cfg = _cfg(steps=40, checkpoint_every=5, keep_checkpoints=2)
    straight = train(cfg, tiny_model_dir, examples, [], tmp_path / "straight", log=_no_log)

    def crash_at_20(entry: StepLog) -> None:  # the job dies right after step 20's checkpoint
        if entry.step == 20:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(cfg, tiny_model_dir, examples, [], tmp_path / "resumed", log=crash_at_20)
    resumed = train(cfg, tiny_model_dir, examples, [], tmp_path / "resumed", log=_no_log)

    assert resumed.resumed_from == 20 and resumed.steps == 40
    assert [h["step"] for h in resumed.history] == [h["step"] for h in straight.history]
    assert resumed.final_loss == pytest.approx(straight.final_loss, rel=1e-4)
    w_straight, w_resumed = _weights(Path(straight.final_dir)), _weights(Path(resumed.final_dir))
    for name, w in w_straight.items():
        torch.testing.assert_close(w_resumed[name], w, rtol=1e-4, atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == ["step_35", "step_40"]


@pytest.fixture
def run_with_two_checkpoints(tiny_model_dir: Path, examples: list, tmp_path: Path) -> tuple[TrainingConfig, Path]:
    cfg = _cfg(steps=10, checkpoint_every=5, keep_checkpoints=3)
    train(cfg, tiny_model_dir, examples, [], tmp_path, log=_no_log)
    assert (tmp_path / "checkpoints" / "step_5" / COMPLETE).is_file()
    return cfg, tmp_path


def test_half_written_newest_checkpoint_is_skipped(tiny_model_dir: Path, examples: list,
                                                   run_with_two_checkpoints) -> None:
    cfg, run_dir = run_with_two_checkpoints
    (run_dir / "checkpoints" / "step_10" / COMPLETE).unlink()
    result = train(cfg, tiny_model_dir, examples, [], run_dir, log=_no_log)
    assert result.resumed_from == 5 and result.steps == 10
    assert (run_dir / "checkpoints" / "step_10" / COMPLETE).is_file()


def test_corrupt_weights_in_newest_checkpoint_fall_back_to_the_previous(
    tiny_model_dir: Path, examples: list, run_with_two_checkpoints
) -> None:
    cfg, run_dir = run_with_two_checkpoints
    weights = run_dir / "checkpoints" / "step_10" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100:] = bytes(100)  # tensor bytes, not the header: only the checksum can tell
    weights.write_bytes(bytes(data))
    result = train(cfg, tiny_model_dir, examples, [], run_dir, log=_no_log)
    assert result.resumed_from == 5 and result.steps == 10


def test_checkpoint_of_another_config_is_refused(tiny_model_dir: Path, examples: list,
                                                 run_with_two_checkpoints) -> None:
    cfg, run_dir = run_with_two_checkpoints
    with pytest.raises(CheckpointError, match="config"):
        train(cfg.replace(**{"optimizer.lr": 1e-3}), tiny_model_dir, examples, [], run_dir, log=_no_log)


def test_exploding_loss_raises_non_finite_loss(tiny_model_dir: Path, examples: list, tmp_path: Path) -> None:
    cfg = _cfg(steps=5, **{"optimizer.lr": 1e30, "optimizer.warmup_steps": 0, "optimizer.grad_clip": 0.0})
    with pytest.raises(NonFiniteLoss):
        train(cfg, tiny_model_dir, examples, [], tmp_path, log=_no_log)
    assert not (tmp_path / "final").exists()


def test_lora_trains_only_adapters_and_the_merged_export_matches_the_adapted_model(
    tiny_model_dir: Path, examples: list, tmp_path: Path
) -> None:
    cfg = _cfg(steps=10, **{"lora.enabled": True, "lora.rank": 4, "optimizer.lr": 1e-2})
    result = train(cfg, tiny_model_dir, examples, [], tmp_path, log=_no_log)

    adapters = _weights(tmp_path / "checkpoints" / "step_10")
    assert adapters and all(name.endswith(("lora_A", "lora_B")) for name in adapters)
    base, merged = _weights(tiny_model_dir), _weights(Path(result.final_dir))
    assert set(merged) == set(base)
    for name, w in base.items():
        changed = not torch.equal(merged[name], w)
        assert changed == ("_proj" in name), name  # only adapted linears moved

    adapted = _stock_model(tiny_model_dir)
    add_lora(adapted, cfg.lora)
    adapted.load_state_dict(adapters, strict=False)
    ids = torch.tensor([examples[0].prompt_ids + examples[0].completion_ids])
    with torch.no_grad():
        torch.testing.assert_close(_stock_model(Path(result.final_dir))(ids).logits, adapted(ids).logits,
                                   rtol=1e-4, atol=1e-5)


def test_compiled_decoder_trains_like_the_eager_one(tiny_model_dir: Path, examples: list, tmp_path: Path) -> None:
    cfg = _cfg(steps=6, log_every=2, eval_every=3, eval_batches=1)
    eager = train(cfg, tiny_model_dir, examples, examples[:4], tmp_path / "eager", log=_no_log)
    compiled = train(cfg.replace(compile=True), tiny_model_dir, examples, examples[:4], tmp_path / "compiled",
                     log=_no_log)
    assert compiled.compile_s > 0 and eager.compile_s == 0
    assert [h["loss"] for h in compiled.history] == pytest.approx([h["loss"] for h in eager.history], rel=1e-3)
    assert compiled.final_val_loss == pytest.approx(eager.final_val_loss, rel=1e-3)
    w_eager, w_compiled = _weights(Path(eager.final_dir)), _weights(Path(compiled.final_dir))
    assert w_compiled.keys() == w_eager.keys()  # compiled in place: no "_orig_mod." in checkpoint names
    for name, w in w_eager.items():
        torch.testing.assert_close(w_compiled[name], w, rtol=1e-3, atol=1e-4)
