"""Our OpenAI-compatible server over a tiny real model: the standard shapes, greedy determinism, errors."""

from __future__ import annotations

import httpx

from tunix_rt_pipelines.inference.openai_server import OpenAIServer

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "What is 3 + 4?"}], "max_tokens": 8,
        "temperature": 0}


def test_models_lists_the_served_model(tiny_server: OpenAIServer) -> None:
    body = httpx.get(f"{tiny_server.url}/models").json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == ["tiny"]


def test_chat_completion_has_the_standard_shape_and_token_counts(tiny_server: OpenAIServer) -> None:
    body = httpx.post(f"{tiny_server.url}/chat/completions", json=CHAT, timeout=30).json()
    (choice,) = body["choices"]
    assert body["object"] == "chat.completion" and body["model"] == "tiny" and body["id"].startswith("chatcmpl-")
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert 0 < usage["completion_tokens"] <= 8 and usage["prompt_tokens"] > 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_greedy_replies_are_deterministic(tiny_server: OpenAIServer) -> None:
    with httpx.Client(base_url=tiny_server.url, timeout=30) as client:
        replies = [client.post("/chat/completions", json=CHAT).json()["choices"][0]["message"] for _ in range(3)]
    assert replies[0] == replies[1] == replies[2]


def test_stop_strings_cut_the_reply(tiny_server: OpenAIServer) -> None:
    full = httpx.post(f"{tiny_server.url}/chat/completions", json=CHAT, timeout=30).json()
    text = full["choices"][0]["message"]["content"]
    stop = text[len(text) // 2:]
    cut = httpx.post(f"{tiny_server.url}/chat/completions", json={**CHAT, "stop": [stop]}, timeout=30).json()
    assert cut["choices"][0] == {"index": 0, "message": {"role": "assistant", "content": text[:text.find(stop)]},
                                 "finish_reason": "stop"}


def test_bad_requests_get_openai_style_errors(tiny_server: OpenAIServer) -> None:
    url = f"{tiny_server.url}/chat/completions"
    cases = [({**CHAT, "model": "other"}, 404), ({**CHAT, "stream": True}, 400), ({**CHAT, "messages": []}, 400),
             ({**CHAT, "max_tokens": 0}, 400), ({**CHAT, "temperature": "hot"}, 400)]
    for body, status in cases:
        response = httpx.post(url, json=body, timeout=30)
        assert response.status_code == status and response.json()["error"]["code"] == status, body
    assert httpx.post(url, content=b"{not json", timeout=30).status_code == 400
    assert httpx.get(f"{tiny_server.url}/nothing").status_code == 404
