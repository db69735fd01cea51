"""Device selection: auto takes what is there; an explicit device that is absent is an error."""

from __future__ import annotations

import pytest
import torch

from tunix_rt_pipelines.training.accelerator import DeviceUnavailable, resolve_jax_devices, resolve_torch_device

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


def test_auto_resolves_to_cpu_here() -> None:
    for info in (resolve_torch_device("auto"), resolve_jax_devices("auto")):
        assert info.kind == "cpu" and info.count >= 1 and info.memory_bytes


def test_absent_gpu_raises_naming_what_was_found() -> None:
    with pytest.raises(DeviceUnavailable, match=r"gpu requested but torch sees no CUDA device"):
        resolve_torch_device("gpu")
    with pytest.raises(DeviceUnavailable, match=r"gpu requested but JAX sees none \(available: cpu\)"):
        resolve_jax_devices("gpu")


def test_absent_tpu_raises_naming_what_was_found() -> None:
    with pytest.raises(DeviceUnavailable, match=r"tpu requested but JAX sees none \(available: cpu\)"):
        resolve_jax_devices("tpu")
    with pytest.raises(DeviceUnavailable, match=r"use backend: jax"):
        resolve_torch_device("tpu")


@pytest.mark.parametrize("resolve", [resolve_torch_device, resolve_jax_devices])
def test_invalid_device_name_raises_value_error(resolve) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=r"'cuda' is not one of auto, cpu, gpu, tpu"):
        resolve("cuda")
