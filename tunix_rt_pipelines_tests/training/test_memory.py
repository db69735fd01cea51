"""The memory guardrail: oversized configs are refused naming the term and the knob to turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunix_rt_pipelines.training.base_model import count_parameters, read_hf_config
from tunix_rt_pipelines.training.config import load_config
from tunix_rt_pipelines.training.memory import (
    GIB,
    KNOWN_HF_CONFIGS,
    MemoryGuardrailError,
    check_fits,
    estimate_memory,
)

from .conftest import tiny_model_config

TRAINING_DIR = Path(__file__).resolve().parents[2] / "training"
GEMMA = KNOWN_HF_CONFIGS["google/gemma-3-1b-it"]


def test_gemma_at_the_seeds_failing_batch_is_refused_naming_logits() -> None:
    # The original system's TPU config (batch 8 x seq 512) that died on a 16 GB TPU v5e.
    cfg = load_config(TRAINING_DIR / "gemma3_1b.yaml").replace(batch_size=8, grad_accum_steps=1)
    with pytest.raises(MemoryGuardrailError) as err:
        check_fits(estimate_memory(cfg, GEMMA), 16 * GIB, cfg.max_memory_fraction)
    first_line = str(err.value).splitlines()[0]
    assert first_line.startswith("logits need 8.0 GiB (batch_size 8 × seq_len 512 × vocab 262144")
    assert "lower batch_size or seq_len, or raise grad_accum_steps" in first_line


@pytest.mark.parametrize("name", ["gemma3_1b", "qwen3_0_6b"])
def test_shipped_real_model_configs_fit_a_16_gb_accelerator(name: str) -> None:
    cfg = load_config(TRAINING_DIR / f"{name}.yaml")
    check_fits(estimate_memory(cfg), 16 * GIB, cfg.max_memory_fraction)


def test_smoke_config_fits() -> None:
    cfg = load_config(TRAINING_DIR / "smoke_tiny.yaml")
    est = estimate_memory(cfg)
    check_fits(est, 2 * GIB, cfg.max_memory_fraction)
    assert est.total < 0.2 * GIB and "logits" in est.table()


def test_lora_and_adafactor_lower_the_optimizer_state() -> None:
    full = load_config(TRAINING_DIR / "gemma3_1b.yaml").replace(**{"lora.enabled": False, "optimizer.name": "adamw"})
    adamw = estimate_memory(full, GEMMA)
    adafactor = estimate_memory(full.replace(**{"optimizer.name": "adafactor"}), GEMMA)
    lora = estimate_memory(full.replace(**{"lora.enabled": True}), GEMMA)
    assert adafactor.optimizer_state < adamw.optimizer_state / 100
    assert lora.optimizer_state < adamw.optimizer_state / 100 and lora.gradients < adamw.gradients / 50
    assert lora.parameters >= adamw.parameters  # the frozen base is still in memory


def test_parameter_estimate_matches_a_built_tiny_model(tiny_model_dir: Path, tiny_gemma_dir: Path) -> None:
    cfg = load_config(TRAINING_DIR / "smoke_tiny.yaml")
    for model_dir, family in ((tiny_model_dir, "qwen3"), (tiny_gemma_dir, "gemma3")):
        real = count_parameters(model_dir)
        assert estimate_memory(cfg, read_hf_config(model_dir)).n_params == real
        # From the YAML-level size alone (the tokenizer may learn a few tokens fewer than vocab_size).
        tiny = cfg.replace(**{f"model.{k}": v for k, v in vars(tiny_model_config(family)).items()})
        assert estimate_memory(tiny).n_params == pytest.approx(real, rel=0.05)
