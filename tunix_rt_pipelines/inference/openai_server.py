"""A minimal OpenAI-compatible server for a local HF model folder: ``GET /v1/models`` and
``POST /v1/chat/completions``, so anything that speaks that API (our ``llm_judge``, an SDK)
can use a registry download or any HF folder.

    python -m tunix_rt_pipelines.inference.openai_server MODEL_DIR --port 8000

Generation goes through :func:`~tunix_rt_pipelines.inference.torch_generate.generate`, one
request at a time (a lock: predictable memory, and the tokenizer is not safe to share between
threads). That function loads the model for each call: fine for the small models this project
trains, seconds per request for a large one.

Requests: ``messages`` (``role``/``content``; content may be a list of ``{"type": "text"}``
parts), ``max_tokens`` (or ``max_completion_tokens``; default 256), ``temperature`` (default 1,
as OpenAI; 0 is greedy and deterministic), ``top_p``, ``seed``, ``stop``. ``model`` must be
the served name when given (404 otherwise, as vLLM does). ``stream`` and ``n > 1`` are refused
(400). ``response_format`` is accepted but not enforced: there is no constrained decoding.
Chat rendering: the tokenizer's chat template when it has one, else ``role: content`` lines
followed by ``assistant:``. ``stop`` strings cut the text after generation (finish ``stop``).
Errors use OpenAI's shape: ``{"error": {"message", "type", "code"}}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 256
MAX_BODY_BYTES = 8 << 20  # a chat request larger than this is refused (413) rather than read into memory


class RequestError(Exception):
    """A request the server refuses: HTTP ``status`` and a message for the client."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


class ChatBackend(Protocol):
    name: str  # the model name clients send and /v1/models lists

    def chat(self, request: Mapping) -> dict: ...  # a chat.completion body; raises RequestError


def chat_response(model: str, text: str, *, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> dict:
    """The standard ``chat.completion`` body for one choice."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _text(content: object) -> str:
    """A message's content as text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise RequestError(400, "messages[].content must be a string or a list of text parts")


def _number(request: Mapping, key: str, default: float, *, low: float, integer: bool = False) -> float:
    value = request.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) or value < low:
        raise RequestError(400, f"{key} must be {'an integer' if integer else 'a number'} >= {low:g}")
    return value


class LocalChatModel:
    """Chat completions from an HF model folder through ``torch_generate``."""

    def __init__(self, model_dir: Path, *, name: str | None = None, device: str = "auto", dtype: str = "fp32") -> None:
        from transformers import AutoTokenizer

        self.model_dir = Path(model_dir)
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir}: not an HF model folder (no config.json)")
        self.name = name or self.model_dir.name
        self.device, self.dtype = device, dtype
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))  # rendering and prompt token counts
        self._lock = threading.Lock()

    def render(self, messages: list[dict]) -> str:
        """The prompt for ``messages`` (see the module docstring)."""
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    def chat(self, request: Mapping) -> dict:
        from tunix_rt_pipelines.inference.torch_generate import generate

        if request.get("model") not in (None, self.name):
            raise RequestError(404, f"model {request['model']!r} is not served here; this server has {self.name!r}",
                               "not_found_error")
        if request.get("stream"):
            raise RequestError(400, "stream is not supported")
        if request.get("n", 1) != 1:
            raise RequestError(400, "only n = 1 is supported")
        messages = request.get("messages")
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
            raise RequestError(400, "messages must be a non-empty list of {role, content}")
        messages = [{"role": m["role"], "content": _text(m.get("content"))} for m in messages]
        tokens_key = "max_completion_tokens" if request.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = _number(request, tokens_key, DEFAULT_MAX_TOKENS, low=1, integer=True)
        temperature = _number(request, "temperature", 1.0, low=0)
        top_p = _number(request, "top_p", 1.0, low=0)
        seed = _number(request, "seed", 0, low=0, integer=True)
        stop = request.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
            raise RequestError(400, "stop must be a string or a list of non-empty strings")

        with self._lock:
            prompt = self.render(messages)
            prompt_tokens = len(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])
            (gen,) = generate(self.model_dir, [prompt], max_new_tokens=max_tokens, batch_size=1,
                              temperature=float(temperature), top_p=float(top_p), seed=seed,
                              device=self.device, dtype=self.dtype)
        text, finish = gen.text, "stop" if gen.stopped_at_eos else "length"
        cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
        if cuts:
            text, finish = text[: min(cuts)], "stop"
        return chat_response(self.name, text, finish_reason=finish, prompt_tokens=prompt_tokens,
                             completion_tokens=gen.n_tokens)


class OpenAIHandler(BaseHTTPRequestHandler):
    """Routes the two endpoints to ``self.server.backend``; everything else is 404."""

    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse one connection for many requests
    server: OpenAIServer

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, e: RequestError) -> None:
        self._send(e.status, {"error": {"message": str(e), "type": e.kind, "code": e.status}})

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.rstrip("/") != "/v1/models":
            return self._error(RequestError(404, f"no route {self.path}", "not_found_error"))
        self._send(200, {"object": "list", "data": [
            {"id": self.server.backend.name, "object": "model", "created": self.server.started, "owned_by": "local"}]})

    def do_POST(self) -> None:  # noqa: N802
        try:
            if self.path.rstrip("/") != "/v1/chat/completions":
                raise RequestError(404, f"no route {self.path}", "not_found_error")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True  # the unread body would otherwise be parsed as the next request
                raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes")
            try:
                request = json.loads(self.rfile.read(length) or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise RequestError(400, "the body is not valid JSON") from None
            if not isinstance(request, dict):
                raise RequestError(400, "the body must be a JSON object")
            self._send(200, self.server.backend.chat(request))
        except RequestError as e:
            self._error(e)
        except Exception as e:  # a generation failure is the server's fault: 500 with the cause, server keeps running
            log.exception("chat completion failed")
            self._error(RequestError(500, f"{type(e).__name__}: {e}", "server_error"))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)  # not to stderr on every request


class OpenAIServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` serving ``backend``; port 0 picks a free one (see ``url``)."""

    daemon_threads = True  # request threads never block interpreter exit

    def __init__(self, backend: ChatBackend, host: str = "127.0.0.1", port: int = 8000,
                 handler: type[OpenAIHandler] = OpenAIHandler) -> None:
        super().__init__((host, port), handler)
        self.backend = backend
        self.started = int(time.time())

    @property
    def url(self) -> str:
        """The OpenAI base URL, ``http://host:port/v1``."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


def serve(model_dir: Path, host: str = "127.0.0.1", port: int = 8000, *, name: str | None = None,
          device: str = "auto", dtype: str = "fp32") -> None:
    """Serve ``model_dir`` until interrupted."""
    server = OpenAIServer(LocalChatModel(model_dir, name=name, device=device, dtype=dtype), host, port)
    print(f"serving {server.backend.name!r} at {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Serve an HF model folder behind a minimal OpenAI-compatible API.")
    p.add_argument("model_dir", type=Path)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--name", help="the model name clients use (default: the folder's name)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    args = p.parse_args(argv)
    serve(args.model_dir, args.host, args.port, name=args.name, device=args.device, dtype=args.dtype)


if __name__ == "__main__":
    main()
