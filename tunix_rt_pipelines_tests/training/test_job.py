"""A training run as a plain function: cheap checks refuse bad set-ups before any training starts."""

import json
import shutil

import pytest
import yaml

from tunix_rt_pipelines.training.config import ConfigError
from tunix_rt_pipelines.training.job import RESULT_FILE, TrainingJob, run_training
from tunix_rt_pipelines.training.memory import MemoryGuardrailError
from tunix_rt_pipelines_tests.training.conftest import TOKENIZER_TEXTS

TINY = {"model": {"family": "qwen3", "source": "build:tiny", "hidden_size": 64, "num_layers": 2, "num_heads": 4,
                  "num_kv_heads": 2, "head_dim": 16, "intermediate_size": 128, "vocab_size": 320,
                  "max_position_embeddings": 512},
        "backend": "torch", "seq_len": 64, "batch_size": 4, "steps": 6, "eval_every": 3, "eval_batches": 1,
        "checkpoint_every": 3, "log_every": 3}


def make_job(tmp_path, model_dir, **overrides):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump({**TINY, **overrides}))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": t.split("\n", 2)[0] + "\n", "completion": t.split("\n", 2)[2]}) + "\n"
                             for t in TOKENIZER_TEXTS[:40]))
    return TrainingJob(str(cfg_path), str(model_dir), str(pairs), str(pairs), str(tmp_path / "run"))


def test_a_run_writes_its_result_and_final_model(tmp_path, tiny_model_dir):
    result = run_training(make_job(tmp_path, tiny_model_dir), say=lambda _: None)
    written = json.loads((tmp_path / "run" / RESULT_FILE).read_text())
    assert result.steps == written["steps"] == 6
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_memory_guardrail_refuses_before_training(tmp_path, tiny_model_dir):
    with pytest.raises(MemoryGuardrailError, match="batch_size|seq_len|grad_accum"):
        run_training(make_job(tmp_path, tiny_model_dir, max_memory_fraction=1e-9), say=lambda _: None)
    assert not (tmp_path / "run").exists()


def test_missing_tokenizer_is_named_before_training(tmp_path, tiny_model_dir):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_model_dir, bare)
    (bare / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        run_training(make_job(tmp_path, bare), say=lambda _: None)


def test_sequence_longer_than_the_model_allows_is_a_config_error(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match="seq_len"):
        run_training(make_job(tmp_path, tiny_model_dir, seq_len=4096), say=lambda _: None)
