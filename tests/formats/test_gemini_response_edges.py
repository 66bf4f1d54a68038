"""Gemini answers and errors at the edges: malformed bodies are upstream protocol errors, errors keep
their message and status in the client's format, RetryInfo delays in either encoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_llmroute.formats import TranslationOptions, UpstreamProtocolError
from asgi_llmroute.formats.gemini import GeminiTranslator

OPTIONS = TranslationOptions(clock=lambda: 1700000000)
MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def tr(client: str, **extra: Any) -> GeminiTranslator:
    translator = GeminiTranslator(client, OPTIONS)  # type: ignore[arg-type]
    body: dict[str, Any] = {"model": "gemini-2.5-flash", "messages": MESSAGES, "max_tokens": 10, **extra}
    translator.request(body)
    return translator


def answer(parts: Any, finish: str | None = "STOP", **extra: Any) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
    if finish:
        candidate["finishReason"] = finish
    return json.dumps({"candidates": [candidate], "responseId": "abc", "modelVersion": "gemini-x", **extra}).encode()


@pytest.mark.parametrize("client", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"candidates": [3]}', "candidate is not an object"),
        (b'{"candidates": [{"content": "text"}]}', "content is not an object"),
        (answer([{"functionCall": {"args": {}}}]), "functionCall has no name"),
        (answer([{"functionCall": {"name": "f", "args": [1]}}]), "args are not an object"),
    ],
)
def test_malformed_answers_are_protocol_errors(client: str, body: bytes, message: str) -> None:
    with pytest.raises(UpstreamProtocolError, match=message):
        tr(client).response(body)


def test_a_blocked_prompt_is_a_content_filter_stop() -> None:
    body = json.dumps({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}})
    out = json.loads(tr("openai").response(body.encode()))
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["content"] is None
    assert out["usage"]["prompt_tokens"] == 3


def test_candidates_without_content_or_parts_are_empty_answers() -> None:
    for body in (b'{"candidates": [{"finishReason": "STOP"}]}', b'{"candidates": [{"content": {}}]}'):
        chat = json.loads(tr("openai").response(body))
        assert chat["choices"][0]["message"]["content"] is None and chat["choices"][0]["finish_reason"] == "stop"
        message = json.loads(tr("anthropic").response(body))
        assert message["content"] == [] and message["stop_reason"] == "end_turn"


def test_openai_answer_ids_calls_and_thoughts() -> None:
    parts = [
        {"text": "thinking...", "thought": True},
        {"text": "Hi"},
        {"functionCall": {"name": "f"}, "thoughtSignature": "sig"},
    ]
    out = json.loads(tr("openai").response(answer(parts, responseId="chatcmpl-xyz")))
    assert out["id"] == "chatcmpl-xyz"  # already prefixed: kept
    message = out["choices"][0]["message"]
    assert message["reasoning_content"] == "thinking..." and message["content"] == "Hi"
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert out["choices"][0]["finish_reason"] == "tool_calls"
    unnamed = json.loads(
        tr("openai").response(json.dumps({"candidates": [{"content": {"parts": [{"text": "x"}]}}]}).encode())
    )
    assert unnamed["id"].startswith("chatcmpl-") and len(unnamed["id"]) > len("chatcmpl-")


def test_anthropic_answer_merges_runs_and_drops_unasked_thoughts() -> None:
    parts = [
        {"text": "a", "thought": True},
        {"text": "b", "thought": True},
        {"text": ""},
        {"text": "one "},
        {"text": "two"},
    ]
    thinking = tr("anthropic", thinking={"type": "enabled", "budget_tokens": 1024})
    content = json.loads(thinking.response(answer(parts)))["content"]
    assert content == [{"type": "thinking", "thinking": "ab", "signature": ""}, {"type": "text", "text": "one two"}]
    plain = json.loads(tr("anthropic").response(answer(parts)))["content"]
    assert plain == [{"type": "text", "text": "one two"}]


@pytest.mark.parametrize(
    ("status", "body", "message", "code"),
    [
        (500, b"internal oops", "internal oops", None),  # short plain text is kept
        (502, b"x" * 2000, "upstream returned HTTP 502", None),  # long text is not
        (400, b'{"error": "flat"}', '{"error": "flat"}', None),  # not Google's shape: the short text as it is
        (400, b"<html>oops</html>", "upstream returned HTTP 400", None),
        (
            0,
            b'{"error": {"code": 404, "message": "", "status": "NOT_FOUND"}}',
            "upstream returned HTTP 404",
            "NOT_FOUND",
        ),
        (
            400,
            b'{"error": {"code": 400, "message": "k", "details": [{"reason": "API_KEY_SERVICE_BLOCKED"}]}}',
            "the upstream provider rejected the gateway's credentials",
            None,
        ),
        (
            403,
            b'{"error": {"code": 403, "message": "secret detail", "status": "PERMISSION_DENIED"}}',
            "the upstream provider rejected the gateway's credentials",
            "PERMISSION_DENIED",
        ),
    ],
)
def test_error_messages(status: int, body: bytes, message: str, code: str | None) -> None:
    out = json.loads(tr("openai").error(status, body))["error"]
    assert out["message"] == message and out["code"] == code


@pytest.mark.parametrize(
    ("details", "seconds"),
    [
        ([{"retryDelay": {"seconds": 4, "nanos": 500_000_000}}], 5),
        (["junk", {"retryDelay": "soon-s"}, {"retryDelay": "3s"}], 3),
        ([{"retryDelay": {"seconds": "x"}}], None),
        ([{"retryDelay": "-1s"}], None),
        ("not a list", None),
        ([{"retryDelay": "99999s"}], None),  # capped (checked below)
    ],
)
def test_retry_delays(details: Any, seconds: int | None) -> None:
    translator = tr("anthropic")
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "q", "details": details}}
    out = json.loads(translator.error(429, json.dumps(body).encode()))
    assert out["error"]["type"] == "rate_limit_error"
    if details == [{"retryDelay": "99999s"}]:
        assert translator.retry_after is not None and 0 < translator.retry_after < 99999
    else:
        assert translator.retry_after == seconds


def _counting(vertex: bool = False) -> tuple[GeminiTranslator, dict[str, Any]]:
    translator = GeminiTranslator("anthropic", OPTIONS)
    translator.vertex = vertex
    body = translator.count_tokens({"model": "models/gemini-2.5-flash", "messages": MESSAGES, "system": "s"})
    return translator, body


def test_count_tokens_bodies_for_the_gemini_api_and_vertex() -> None:
    translator, body = _counting()
    assert translator.count_tokens_path == ":countTokens"
    request = body["generateContentRequest"]
    assert request["model"] == "models/gemini-2.5-flash"  # one models/ prefix, whichever way it was named
    assert request["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert request["systemInstruction"]["parts"] == [{"text": "s"}]
    _, vertex = _counting(vertex=True)
    assert set(vertex) == {"contents", "systemInstruction"}
    with pytest.raises(ValueError):
        GeminiTranslator("openai", OPTIONS).count_tokens({"model": "m", "messages": MESSAGES})


@pytest.mark.parametrize(
    ("answer", "tokens"),
    [(b'{"totalTokens": 42, "promptTokensDetails": []}', 42), (b"{}", 0)],  # 0 is left out of proto3 JSON
)
def test_a_token_count_is_anthropics_input_tokens(answer: bytes, tokens: int) -> None:
    translator, _ = _counting()
    assert json.loads(translator.response(answer)) == {"input_tokens": tokens}
    assert translator.usage is None  # a count is not spend


@pytest.mark.parametrize("answer", [b'{"totalTokens": "42"}', b'{"totalTokens": -1}', b"[1]", b"not json"])
def test_a_malformed_token_count_is_an_upstream_protocol_error(answer: bytes) -> None:
    translator, _ = _counting()
    with pytest.raises(UpstreamProtocolError):
        translator.response(answer)
