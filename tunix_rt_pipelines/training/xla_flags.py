"""XLA settings for the CPU, put in ``XLA_FLAGS`` before JAX starts a backend.

XLA reads ``XLA_FLAGS`` once, when JAX starts its first backend. Every module of ours that runs
JAX therefore imports this one before it imports ``jax``. Importing it after a backend has
started changes nothing for that process.

* ``--xla_cpu_experimental_ynn_fusion_type=`` (an empty list: no YNNPACK fusions). jaxlib 0.10's
  CPU backend hands dots, and the elementwise work around them, to YNNPACK by default. For the
  skinny matmuls of batched decoding (16 rows × 384) those fusions ran at about 10 GFLOP/s on
  this machine. With XLA's own dots, generation on the 10M bench model was 1.24–1.45× faster in
  alternating runs, and training tokens/s did not change (``bench/train``, two runs each).

A flag already in ``XLA_FLAGS`` is left as the user set it. Nothing is set where a GPU or TPU
plugin is installed: those runtimes parse ``XLA_FLAGS`` too, stop on a flag their XLA does not
know, and compute on the accelerator anyway.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from importlib.util import find_spec

CPU_FLAGS = {"xla_cpu_experimental_ynn_fusion_type": ""}


def apply(environ: MutableMapping[str, str] = os.environ) -> str:
    """Add each of ``CPU_FLAGS`` that ``environ["XLA_FLAGS"]`` does not set yet; returns the result."""
    flags = environ.get("XLA_FLAGS", "")
    for name, value in CPU_FLAGS.items():
        if f"--{name}=" not in flags and f"--{name} " not in f"{flags} ":
            flags = f"{flags} --{name}={value}".strip()
    environ["XLA_FLAGS"] = flags
    return flags


def accelerator_plugin_installed() -> bool:
    """A JAX GPU plugin (``jax_plugins``) or libtpu is importable."""
    return find_spec("jax_plugins") is not None or find_spec("libtpu") is not None


if not accelerator_plugin_installed():
    apply()
