"""A tiny random-weight Qwen3 behind our OpenAI-compatible server, started once per test session.

``running(server)`` serves any ``OpenAIServer`` in a thread for the length of a ``with`` block:
the evaluation tests use it for scripted endpoints (slow, garbage, failing) beside the real one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tunix_rt_pipelines.inference.openai_server import LocalChatModel, OpenAIServer
from tunix_rt_pipelines.training.base_model import build_tiny_model
from tunix_rt_pipelines.training.config import ModelConfig

TOKENIZER_TEXTS = [
    f"Question: What is {a} + {b}?\nAnswer step by step.\n{a} + {b} = {a + b}\n#### {a + b}"
    for a in range(0, 60, 7) for b in range(3, 90, 11)
]


@contextmanager
def running(server: OpenAIServer) -> Iterator[OpenAIServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def chat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Qwen3 (hidden 64, 2 layers) with a locally trained tokenizer; built once per session
    even when several conftests import this fixture (it is kept under the session's base temp folder)."""
    out = tmp_path_factory.getbasetemp() / "tiny_chat_qwen3"
    if not (out / "model.safetensors").is_file():
        cfg = ModelConfig(family="qwen3", hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16,
                          intermediate_size=128, vocab_size=320, max_position_embeddings=512)
        build_tiny_model(cfg, TOKENIZER_TEXTS, out, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_server(chat_model_dir: Path) -> Iterator[OpenAIServer]:
    """Our server on an ephemeral port, serving the tiny model as ``tiny``."""
    with running(OpenAIServer(LocalChatModel(chat_model_dir, name="tiny", device="cpu"), port=0)) as server:
        yield server
