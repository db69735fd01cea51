"""Training configs: the shipped files load, and bad ones fail naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunix_rt_pipelines.training.config import ConfigError, config_from_dict, load_config

TRAINING_DIR = Path(__file__).resolve().parents[2] / "training"
SHIPPED = sorted(TRAINING_DIR.glob("*.yaml"))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_configs_are_present() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"smoke_tiny", "bench_10m", "gemma3_1b", "qwen3_0_6b"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_loads(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.name == path.stem


def test_unknown_key_error_names_file_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "optimizer:\n  learning_rte: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: optimizer\.learning_rte: unknown field"):
        load_config(path)


def test_wrong_type_names_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bad\.yaml: batch_size: expected an integer"):
        load_config(_write(tmp_path, "batch_size: eight\n"))


def test_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"model\.family: unknown family 'llama9'; supported: qwen3, gemma3"):
        config_from_dict({"model": {"family": "llama9"}})


def test_seq_len_longer_than_model_context_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"seq_len: 4096 is longer than the model allows"):
        config_from_dict({"seq_len": 4096, "model": {"max_position_embeddings": 2048}})


def test_replace_with_dotted_keys_changes_and_revalidates() -> None:
    cfg = load_config(TRAINING_DIR / "smoke_tiny.yaml")
    assert cfg.replace(**{"optimizer.lr": 1e-4}).optimizer.lr == 1e-4
    assert cfg.optimizer.lr == 3e-3  # the original is untouched
    with pytest.raises(ConfigError, match=r"optimizer\.lr: must be > 0"):
        cfg.replace(**{"optimizer.lr": 0.0})


def test_config_hash_is_stable_and_changes_with_any_field() -> None:
    cfg = load_config(TRAINING_DIR / "smoke_tiny.yaml")
    assert cfg.config_hash == load_config(TRAINING_DIR / "smoke_tiny.yaml").config_hash
    changed = [cfg.replace(seed=1), cfg.replace(**{"lora.rank": 4}), cfg.replace(**{"model.num_layers": 3}),
               cfg.replace(name="other")]
    hashes = {cfg.config_hash, *(c.config_hash for c in changed)}
    assert len(hashes) == 1 + len(changed)
