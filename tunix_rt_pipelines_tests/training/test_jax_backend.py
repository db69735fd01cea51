"""The Tunix backend on tiny random models: parity with transformers, training, resume, export, LoRA."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, Gemma3TextConfig

from tunix_rt_pipelines.training import jax_backend as jb
from tunix_rt_pipelines.training import stream
from tunix_rt_pipelines.training.backend import CheckpointError, NonFiniteLoss
from tunix_rt_pipelines.training.config import ConfigError, config_from_dict

PROMPT = "Question: What is 12 + 30?\nAnswer step by step.\n12 + 30 = 42"


def tiny_gemma(tokenizer_dir: Path, out_dir: Path, *, num_kv_heads: int) -> Path:
    """A 6-layer Gemma 3 with a 4-token sliding window, so both local and global layers are exercised.

    Tied embeddings: Tunix's Gemma 3 always decodes with the input embedding.
    """
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=6,
                           num_attention_heads=4, num_key_value_heads=num_kv_heads, head_dim=16,
                           query_pre_attn_scalar=16, sliding_window=4, tie_word_embeddings=True,
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.bos_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    with torch.no_grad():  # HF initialises norms at 0 (scale 1 + w); random ones test the +1 convention
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(0, 0.5)
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    return out_dir


@pytest.fixture(scope="module")
def gemma_dirs(tiny_gemma_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("gemma_tied")
    return {kv: tiny_gemma(tiny_gemma_dir, root / f"kv{kv}", num_kv_heads=kv) for kv in (2, 4)}


def tunix_logits(model, ids: np.ndarray) -> np.ndarray:  # noqa: ANN001
    t = ids.shape[1]
    positions = np.broadcast_to(np.arange(t), ids.shape)
    mask = np.broadcast_to(np.tril(np.ones((t, t), bool)), (ids.shape[0], t, t))
    logits, _ = model(jnp.asarray(ids), jnp.asarray(positions), None, jnp.asarray(mask))
    return np.asarray(logits)


def hf_logits(model_dir: Path, ids: np.ndarray) -> np.ndarray:
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    with torch.no_grad():
        return model(torch.as_tensor(ids, dtype=torch.long)).logits.numpy()


def prompt_ids(model_dir: Path) -> np.ndarray:
    return np.array([AutoTokenizer.from_pretrained(model_dir)(PROMPT)["input_ids"]], dtype=np.int32)


def test_qwen3_logits_match_transformers(tiny_model_dir: Path) -> None:
    ids = prompt_ids(tiny_model_dir)
    np.testing.assert_allclose(tunix_logits(jb.load_model(tiny_model_dir), ids), hf_logits(tiny_model_dir, ids),
                               atol=1e-4)


@pytest.mark.parametrize("kv_heads", [2, 4])  # 4 = heads: Tunix fuses q, k, v into one einsum
def test_gemma3_logits_match_transformers(gemma_dirs: dict[int, Path], kv_heads: int) -> None:
    model_dir = gemma_dirs[kv_heads]
    ids = prompt_ids(model_dir)
    assert ids.shape[1] > 4  # longer than the sliding window
    np.testing.assert_allclose(tunix_logits(jb.load_model(model_dir), ids), hf_logits(model_dir, ids), atol=1e-4)


@pytest.mark.parametrize(("model_type", "change", "field"), [
    ("qwen3", {"rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}}, "rope_theta"),
    ("qwen3", {"attention_bias": True}, "attention_bias"),
    ("gemma3_text", {"tie_word_embeddings": False}, "tie_word_embeddings"),
    ("gemma3_text", {"final_logit_softcapping": 30.0}, "final_logit_softcapping"),
    ("llama", {}, "model_type"),
])
def test_unsupported_config_is_an_error_naming_the_field(
    tiny_model_dir: Path, gemma_dirs: dict[int, Path], model_type: str, change: dict, field: str
) -> None:
    base = jb.read_hf_config(gemma_dirs[2] if model_type == "gemma3_text" else tiny_model_dir)
    hf = {**base, **change, "model_type": model_type}
    with pytest.raises(ConfigError, match=rf"config\.json: .*{field}"):
        jb.tunix_config_from_hf(hf)


def test_attention_mask_is_the_stream_segment_mask() -> None:
    seg = np.array([[1, 1, 1, 2, 2, 0], [1, 1, 1, 1, 1, 1]], dtype=np.int32)
    batch = stream.TokenBatch(np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg), seg)
    np.testing.assert_array_equal(np.asarray(jb.attention_mask(jnp.asarray(seg))), batch.attention_mask_3d())


# --- training ---------------------------------------------------------------------------------


def examples(model_dir: Path, n: int = 24) -> list[stream.TokenizedExample]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    pairs = [(f"Question: What is {a} + {b}?\n", f"{a} + {b} = {a + b}\n#### {a + b}")
             for a in range(6) for b in range(4)][:n]
    return stream.tokenize_pairs(tok, pairs, seq_len=64)[0]


def run_cfg(**changes):  # noqa: ANN201
    base = {"name": "t", "backend": "jax", "steps": 8, "seq_len": 64, "batch_size": 4, "log_every": 2,
            "eval_every": 4, "eval_batches": 2, "checkpoint_every": 4, "keep_checkpoints": 2,
            "optimizer": {"lr": 3e-3, "warmup_steps": 2}}
    for key, value in changes.items():
        if isinstance(value, dict):
            base[key] = {**base.get(key, {}), **value}
        else:
            base[key] = value
    return config_from_dict(base)


class Interrupt(Exception):
    """Stands in for a killed process."""


def interrupt_at(step: int):  # noqa: ANN201
    def log(entry) -> None:  # noqa: ANN001
        if entry.step == step:
            raise Interrupt

    return log


def test_training_lowers_the_loss_and_writes_an_hf_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    ex = examples(tiny_model_dir)
    logs = []
    result = jb.train(run_cfg(steps=24, eval_every=12, checkpoint_every=12), tiny_model_dir, ex, ex[:8],
                      tmp_path, log=logs.append)
    assert result.steps == 24 and [e.step for e in logs] == [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]
    assert result.final_loss < 0.6 * logs[0].loss
    assert result.final_val_loss is not None and result.final_val_loss < logs[5].val_loss
    assert result.compile_s > 0 and result.tokens_per_s > 0 and result.resumed_from is None
    assert (tmp_path / "final" / "model.safetensors").is_file()
    assert (tmp_path / "checkpoints" / "step_24" / jb.COMPLETE).is_file()


def test_exported_model_loads_in_transformers_with_matching_logits(tiny_model_dir: Path, tmp_path: Path) -> None:
    ex = examples(tiny_model_dir)
    result = jb.train(run_cfg(steps=4, eval_every=0), tiny_model_dir, ex, [], tmp_path, log=lambda e: None)
    final = Path(result.final_dir)
    ids = prompt_ids(final)
    trained = hf_logits(final, ids)
    np.testing.assert_allclose(tunix_logits(jb.load_model(final), ids), trained, atol=1e-4)
    assert np.abs(trained - hf_logits(tiny_model_dir, ids)).max() > 1e-2  # the export holds the trained weights


@pytest.mark.parametrize("which", ["qwen3", "gemma3"])
def test_export_of_an_untrained_model_reproduces_the_base_tensors(
    tiny_model_dir: Path, gemma_dirs: dict[int, Path], tmp_path: Path, which: str
) -> None:
    dirs = [tiny_model_dir] if which == "qwen3" else list(gemma_dirs.values())
    for model_dir in dirs:
        out = jb.export_hf(jb.load_model(model_dir), model_dir, tmp_path / model_dir.name)
        base, exported = load_file(str(model_dir / "model.safetensors")), load_file(str(out / "model.safetensors"))
        if which == "gemma3":
            base.pop("lm_head.weight", None)  # tied: the embedding is the head
        assert sorted(exported) == sorted(base)
        for name, value in base.items():
            np.testing.assert_array_equal(exported[name], value, err_msg=name)
        assert (out / "tokenizer.json").is_file()


def test_resume_after_interruption_ends_like_an_uninterrupted_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    ex = examples(tiny_model_dir)
    cfg = run_cfg(grad_accum_steps=2, batch_size=2)
    straight = jb.train(cfg, tiny_model_dir, ex, ex[:8], tmp_path / "a", log=lambda e: None)

    with pytest.raises(Interrupt):
        jb.train(cfg, tiny_model_dir, ex, ex[:8], tmp_path / "b", log=interrupt_at(6))
    resumed = jb.train(cfg, tiny_model_dir, ex, ex[:8], tmp_path / "b", log=lambda e: None)

    assert resumed.resumed_from == 4 and resumed.steps == 8
    assert resumed.history[0]["step"] == 2  # the curve before the interruption comes from the checkpoint
    assert math.isclose(resumed.final_loss, straight.final_loss, rel_tol=1e-4)
    assert math.isclose(resumed.final_val_loss, straight.final_val_loss, rel_tol=1e-4)


def corrupt(folder: Path) -> None:
    for f in (folder / "model_params").rglob("*"):
        if f.is_file():
            f.write_bytes(b"\x00garbage")


def test_corrupt_or_half_written_newest_checkpoint_falls_back_to_an_older_one(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    ex = examples(tiny_model_dir)
    cfg = run_cfg(steps=8, checkpoint_every=2, keep_checkpoints=3, eval_every=0)
    with pytest.raises(Interrupt):
        jb.train(cfg, tiny_model_dir, ex, [], tmp_path, log=interrupt_at(8))  # step 8 is logged before it is saved
    root = tmp_path / "checkpoints"
    assert jb.checkpoint_steps(root) == [6, 4, 2]
    corrupt(root / "step_6")
    (root / "step_4" / jb.COMPLETE).unlink()  # as if killed mid-save

    result = jb.train(cfg, tiny_model_dir, ex, [], tmp_path, log=lambda e: None)
    assert result.resumed_from == 2 and result.steps == 8
    assert sorted(p.name.split(".")[0] for p in (tmp_path / "checkpoints_rejected").iterdir()) == ["step_4", "step_6"]


def test_no_restorable_checkpoint_is_a_checkpoint_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    ex = examples(tiny_model_dir)
    cfg = run_cfg(steps=2, checkpoint_every=2, eval_every=0)
    jb.train(cfg, tiny_model_dir, ex, [], tmp_path, log=lambda e: None)
    corrupt(tmp_path / "checkpoints" / "step_2")
    with pytest.raises(CheckpointError, match="no checkpoint could be restored"):
        jb.train(cfg, tiny_model_dir, ex, [], tmp_path, log=lambda e: None)


def test_checkpoint_of_another_config_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    ex = examples(tiny_model_dir)
    jb.train(run_cfg(steps=2, eval_every=0), tiny_model_dir, ex, [], tmp_path, log=lambda e: None)
    with pytest.raises(CheckpointError, match="another config"):
        jb.train(run_cfg(steps=2, eval_every=0, seed=1), tiny_model_dir, ex, [], tmp_path, log=lambda e: None)


def test_nan_loss_stops_training_before_any_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    tensors = load_file(str(broken / "model.safetensors"))
    tensors["model.norm.weight"][:] = np.nan
    save_file(tensors, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(NonFiniteLoss, match="step 1"):
        jb.train(run_cfg(checkpoint_every=1), broken, examples(tiny_model_dir), [], tmp_path / "run",
                 log=lambda e: None)
    assert jb.checkpoint_steps(tmp_path / "run" / "checkpoints") == []


def test_lora_trains_only_adapters_and_exports_merged_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    ex = examples(tiny_model_dir)
    cfg = run_cfg(steps=6, eval_every=0, lora={"enabled": True, "rank": 4, "alpha": 8.0},
                  optimizer={"lr": 1e-2})
    result = jb.train(cfg, tiny_model_dir, ex, [], tmp_path, log=lambda e: None)
    base = load_file(str(tiny_model_dir / "model.safetensors"))
    merged = load_file(str(Path(result.final_dir) / "model.safetensors"))
    changed = {k for k in base if not np.array_equal(base[k], merged[k])}
    assert changed and all(k.endswith(("_proj.weight",)) for k in changed)  # embeddings, norms, head untouched
    assert any("self_attn.q_proj" in k for k in changed) and any("mlp.down_proj" in k for k in changed)
    ids = prompt_ids(tiny_model_dir)
    np.testing.assert_allclose(tunix_logits(jb.load_model(Path(result.final_dir)), ids),
                               hf_logits(Path(result.final_dir), ids), atol=1e-4)


@pytest.mark.parametrize("which", ["qwen3", "gemma3_fused_qkv"])
def test_lora_merge_reproduces_the_adapted_model(
    tiny_model_dir: Path, gemma_dirs: dict[int, Path], tmp_path: Path, which: str
) -> None:
    model_dir = tiny_model_dir if which == "qwen3" else gemma_dirs[4]
    family = "qwen3" if which == "qwen3" else "gemma3"
    model = jb.apply_lora(jb.load_model(model_dir), family, rank=4, alpha=8.0,
                          target_modules=".*(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj).*", seed=0)
    from flax import nnx

    lora = nnx.state(model, nnx.LoRAParam)  # B starts at 0: randomise so the adapters matter
    keys = iter(jax.random.split(jax.random.key(1), len(jax.tree.leaves(lora))))
    nnx.update(model, jax.tree.map(lambda x: 0.1 * jax.random.normal(next(keys), x.shape, x.dtype), lora))
    ids = prompt_ids(model_dir)
    out = jb.export_hf(model, model_dir, tmp_path / "merged", lora_alpha=8.0)
    np.testing.assert_allclose(hf_logits(out, ids), tunix_logits(model, ids), atol=1e-4)
