"""Endpoints for the LLM judge: the tiny real model behind our server, and scripted ones that
reply with chosen text, slowly, or with an HTTP error. The judge itself is always the real one."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from tunix_rt_pipelines.inference.openai_server import OpenAIHandler, OpenAIServer, RequestError, chat_response
from tunix_rt_pipelines_tests.inference.conftest import chat_model_dir, running, tiny_server  # noqa: F401


class ScriptedChat:
    """A chat backend whose reply is ``reply(user message)``, after ``delay_s``; ``status`` answers every
    request with that HTTP error instead. Records each request body and its headers."""

    name = "scripted"

    def __init__(self, reply: Callable[[str], str] = lambda _: "", *, delay_s: float = 0.0,
                 status: int | None = None) -> None:
        self.reply, self.delay_s, self.status = reply, delay_s, status
        self.requests: list[dict] = []
        self.headers: list[dict] = []

    def chat(self, request: dict) -> dict:
        self.requests.append(request)
        time.sleep(self.delay_s)
        if self.status is not None:
            raise RequestError(self.status, "scripted failure", "server_error")
        text = self.reply(request["messages"][-1]["content"])
        return chat_response(self.name, text, finish_reason="stop", prompt_tokens=1, completion_tokens=1)


class RecordingHandler(OpenAIHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.server.backend.headers.append(dict(self.headers))
        super().do_POST()


@pytest.fixture
def scripted() -> Iterator[Callable[..., OpenAIServer]]:
    """``scripted(reply, delay_s=..., status=...)`` starts a scripted endpoint; all stop after the test."""
    servers = []

    def start(*args, **kwargs) -> OpenAIServer:  # noqa: ANN002, ANN003
        cm = running(OpenAIServer(ScriptedChat(*args, **kwargs), port=0, handler=RecordingHandler))
        servers.append(cm)
        return cm.__enter__()

    yield start
    for cm in servers:
        cm.__exit__(None, None, None)


@pytest.fixture
def refused_url() -> str:
    """A base URL on a port where nothing listens (bound, then closed: the OS refuses connections)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
