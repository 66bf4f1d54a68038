"""Claude on Vertex AI: the rawPredict body, passthrough responses and streams, both error shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from asgi_llmroute.formats import TranslationOptions, new_translator

from ._helpers import sse_pairs

PROVIDERS = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
OPTIONS = TranslationOptions(clock=lambda: 1700000000)


def read(rel: str) -> bytes:
    return (PROVIDERS / rel).read_bytes()


def test_openai_request_matches_the_fixture_body() -> None:
    tr = new_translator("openai", "vertex-anthropic", OPTIONS)
    body = tr.request(json.loads(read("requests/openai_chat_request.json")))
    assert body == json.loads(read("requests/openai_chat_request.expected.vertex-claude.json"))


def test_anthropic_request_loses_model_and_gains_the_version() -> None:
    tr = new_translator("anthropic", "vertex-anthropic", OPTIONS)
    body: dict[str, Any] = {"model": "claude-sonnet-4-5@20250929", "max_tokens": 5, "messages": [], "stream": True}
    assert tr.request(body) == {
        "max_tokens": 5,
        "messages": [],
        "stream": True,
        "anthropic_version": "vertex-2023-10-16",
    }


def test_count_tokens_keeps_the_model_and_gains_the_version() -> None:
    tr: Any = new_translator("anthropic", "vertex-anthropic", OPTIONS)
    body: dict[str, Any] = {"model": "claude-sonnet-4-5@20250929", "messages": [{"role": "user", "content": "x"}]}
    assert tr.count_tokens(body) == {**body, "anthropic_version": "vertex-2023-10-16"}
    with pytest.raises(ValueError, match="Anthropic client"):
        new_translator("openai", "vertex-anthropic", OPTIONS).count_tokens(body)  # type: ignore[attr-defined]


def test_anthropic_clients_get_bytes_unchanged() -> None:
    tr = new_translator("anthropic", "vertex-anthropic", OPTIONS)
    tr.request({"model": "m", "max_tokens": 5, "messages": []})
    body = read("vertex-claude/response_text.json")
    assert tr.response(body) == body and tr.usage is not None and tr.usage["cache_read_tokens"] == 1830
    raw = read("vertex-claude/stream_tool_use.sse")
    stream = tr.stream()
    out = b"".join(stream.feed(raw[i : i + 50]) for i in range(0, len(raw), 50)) + stream.close()
    assert out == raw and stream.usage is not None
    for name, data in sse_pairs(out):
        if name == "ping":
            continue
        assert TypeAdapter(RawMessageStreamEvent).validate_python(data).type == name
    cut = tr.stream()
    tail = cut.feed(raw[: raw.index(b"event: message_delta")]) + cut.close()
    assert sse_pairs(tail)[-1][0] == "error"


def test_openai_clients_are_translated() -> None:
    tr = new_translator("openai", "vertex-anthropic", OPTIONS)
    tr.request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    completion = openai.types.chat.ChatCompletion.model_validate_json(
        tr.response(read("vertex-claude/response_tool_use.json"))
    )
    assert completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_both_error_shapes(client: str) -> None:
    tr = new_translator(client, "vertex-anthropic", OPTIONS)  # type: ignore[arg-type]
    google = json.loads(tr.error(429, read("vertex-claude/error_429_resource_exhausted.json")))
    model_error = json.loads(tr.error(400, read("vertex-claude/error_400_invalid_request.json")))
    if client == "anthropic":
        assert google["type"] == "error" and google["error"]["type"] == "rate_limit_error"
        assert model_error == json.loads(read("vertex-claude/error_400_invalid_request.json"))
        assert json.loads(tr.error(502, b"<html>bad</html>"))["error"]["type"] == "api_error"
    else:
        assert google["error"]["code"] == "RESOURCE_EXHAUSTED" and "Quota exceeded" in google["error"]["message"]
        assert model_error["error"]["type"] == "invalid_request_error"
