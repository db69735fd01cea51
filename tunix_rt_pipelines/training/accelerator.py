"""Device selection for both backends: ``auto | cpu | gpu | tpu``.

``auto`` takes the best device present (TPU, then GPU, then CPU). An explicit device that is
not there is an error that says what was found, never a silent fall-back to the CPU: a
config that asks for a GPU and trains for a day on a CPU is worse than one that stops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEVICES = ("auto", "cpu", "gpu", "tpu")


class DeviceUnavailable(RuntimeError):
    """The config asks for a device this machine does not have."""


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # cpu | gpu | tpu
    description: str  # what is logged: platform, device names and count
    count: int  # devices of that kind visible to the process
    memory_bytes: int | None  # memory of one device (None where unknown)
    torch_device: str = "cpu"  # torch device string ("cuda:0"); unused on JAX
    supports_bf16: bool = False  # native bf16 matmuls (autocast is worthwhile)


def _check(requested: str) -> None:
    if requested not in DEVICES:
        raise ValueError(f"device: {requested!r} is not one of {', '.join(DEVICES)}")


def _host_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def resolve_torch_device(requested: str = "auto") -> DeviceInfo:
    import torch

    _check(requested)
    if requested == "tpu":
        raise DeviceUnavailable("device: tpu is not supported by the PyTorch backend; use backend: jax")
    has_cuda = torch.cuda.is_available()
    if requested == "gpu" and not has_cuda:
        raise DeviceUnavailable("device: gpu requested but torch sees no CUDA device "
                                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})")
    if has_cuda and requested in ("auto", "gpu"):
        props = torch.cuda.get_device_properties(0)
        return DeviceInfo(
            kind="gpu", description=f"cuda:0 ({props.name}) x{torch.cuda.device_count()}",
            count=torch.cuda.device_count(), memory_bytes=props.total_memory, torch_device="cuda:0",
            supports_bf16=torch.cuda.is_bf16_supported(),
        )
    return DeviceInfo(kind="cpu", description=f"cpu ({torch.get_num_threads()} threads)", count=1,
                      memory_bytes=_host_memory(), torch_device="cpu", supports_bf16=False)


def resolve_jax_devices(requested: str = "auto") -> DeviceInfo:
    from tunix_rt_pipelines.training import xla_flags  # noqa: F401, I001  (before jax starts a backend)
    import jax

    _check(requested)
    found: dict[str, list] = {}
    for platform in ("tpu", "gpu", "cpu"):
        try:
            found[platform] = jax.devices(platform)
        except RuntimeError:  # that backend is not installed or has no device
            continue
    if requested == "auto":
        requested = next((p for p in ("tpu", "gpu", "cpu") if found.get(p)), "cpu")
    devices = found.get(requested)
    if not devices:
        raise DeviceUnavailable(f"device: {requested} requested but JAX sees none "
                                f"(available: {', '.join(sorted(found)) or 'none'})")
    memory = None
    if requested != "cpu":
        stats = devices[0].memory_stats() or {}
        memory = stats.get("bytes_limit")
    else:
        memory = _host_memory()
    kinds = sorted({d.device_kind for d in devices})
    return DeviceInfo(
        kind=requested, description=f"{requested} ({', '.join(kinds)}) x{len(devices)}", count=len(devices),
        memory_bytes=memory, supports_bf16=requested in ("tpu", "gpu"),
    )
