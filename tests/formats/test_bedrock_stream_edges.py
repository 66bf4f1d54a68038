"""Bedrock event streams (Converse and InvokeModel) that break the protocol end with one error
event naming what was wrong, in the client's format; rarer valid events translate."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from asgi_llmroute.formats import TranslationOptions
from asgi_llmroute.formats.bedrock import BedrockTranslator
from asgi_llmroute.formats.eventstream import encode_message

from ._helpers import sse_pairs

OPTIONS = TranslationOptions(clock=lambda: 1700000000)
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def translator(client: str, api: str) -> BedrockTranslator:
    tr = BedrockTranslator(client, api, MODEL, OPTIONS)  # type: ignore[arg-type]
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    if client == "anthropic":
        body["max_tokens"] = 100
    tr.request(body)
    return tr


def frame(event: str, payload: Any, *, raw: bytes | None = None) -> bytes:
    headers = {":event-type": event, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, raw if raw is not None else json.dumps(payload).encode())


def chunk(event: Any) -> bytes:
    text = event if isinstance(event, str) else json.dumps(event)
    return frame("chunk", {"bytes": base64.b64encode(text.encode()).decode()})


def run(client: str, api: str, raw: bytes) -> list[tuple[str | None, Any]]:
    stream = translator(client, api).stream()
    out = stream.feed(raw) + stream.close()
    assert stream.done
    assert stream.feed(b"more") == b""  # nothing after the end
    return sse_pairs(out)


START = frame("messageStart", {"role": "assistant"})

CONVERSE_BROKEN = [
    (frame("contentBlockDelta", {"contentBlockIndex": 0}), "carries no delta"),
    (frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": 5}}), "text delta is not a string"),
    (frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {}}}), "toolUse delta carries no input"),
    (frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": "x"}}), "not an object"),
    (frame("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {"name": "f"}}}), "lacks toolUseId"),
    (encode_message({":message-type": "event"}, b"{}"), "no :event-type"),
    (frame("metadata", None, raw=b"{broken"), "not valid JSON"),
    (frame("metadata", None, raw=b"[1]"), "not a JSON object"),
    (encode_message({":message-type": "surprise"}, b""), "unknown type"),
]


@pytest.mark.parametrize("client", ["anthropic", "openai"])
@pytest.mark.parametrize(("tail", "message"), CONVERSE_BROKEN)
def test_broken_converse_events(client: str, tail: bytes, message: str) -> None:
    pairs = run(client, "converse", START + tail)
    name, data = pairs[-1]
    assert message in data["error"]["message"]
    if client == "anthropic":
        assert name == "error" and data["error"]["type"] == "api_error"
    assert not any(d == "[DONE]" for _, d in pairs)


@pytest.mark.parametrize("client", ["anthropic", "openai"])
def test_exception_frames_keep_their_type_and_message(client: str) -> None:
    exc = encode_message(
        {":message-type": "exception", ":exception-type": "throttlingException"}, b'{"Message":"slow down"}'
    )
    pairs = run(client, "converse", START + exc)
    error = pairs[-1][1]["error"]
    assert error["message"] == "slow down"
    assert error["type"] == "rate_limit_error"
    unreadable = encode_message({":message-type": "exception"}, b"not json")
    error = run(client, "converse", START + unreadable)[-1][1]["error"]
    assert error["message"] == "upstream reported an error in the stream"


def test_reasoning_redacted_and_stop_sequence_events() -> None:
    raw = (
        START
        + frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hm"}}})
        + frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}})
        + frame("contentBlockStop", {"contentBlockIndex": 0})
        + frame("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"reasoningContent": {"redactedContent": "r"}}})
        + frame("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"reasoningContent": {"text": "ignored"}}})
        + frame("contentBlockStop", {"contentBlockIndex": 1})
        + frame("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"text": "done"}})
        + frame("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"citation": {}}})
        + frame("somethingNew", {})
        + frame(
            "messageStop", {"stopReason": "stop_sequence", "additionalModelResponseFields": {"stop_sequence": "END"}}
        )
        + frame("metadata", {"usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}})
    )
    events = [data for _, data in run("anthropic", "converse", raw)]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts == [
        {"type": "thinking", "thinking": "", "signature": ""},
        {"type": "redacted_thinking", "data": "r"},
        {"type": "text", "text": ""},
    ]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert deltas == [
        {"type": "thinking_delta", "thinking": "hm"},
        {"type": "signature_delta", "signature": "sig"},
        {"type": "text_delta", "text": "done"},
    ]
    final = next(e for e in events if e["type"] == "message_delta")
    assert final["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}
    assert final["usage"]["output_tokens"] == 2
    assert events[-1] == {"type": "message_stop"}


INVOKE_BROKEN = [
    (frame("chunk", {}), "carries no bytes"),
    (frame("chunk", {"bytes": "%%%"}), "not a base64 JSON event"),
    (chunk("[1, 2]"), "not an Anthropic stream event"),
    (b"", "ended before message_stop"),
]


@pytest.mark.parametrize("client", ["anthropic", "openai"])
@pytest.mark.parametrize(("tail", "message"), INVOKE_BROKEN)
def test_broken_invoke_chunks(client: str, tail: bytes, message: str) -> None:
    start = chunk(
        {
            "type": "message_start",
            "message": {
                "id": "m",
                "type": "message",
                "role": "assistant",
                "model": "c",
                "content": [],
                "usage": {"input_tokens": 1, "output_tokens": 0},
            },
        }
    )
    pairs = run(client, "invoke", start + frame("somethingElse", {}) + tail)
    assert message in pairs[-1][1]["error"]["message"]


def test_invoke_usage_from_invocation_metrics_and_multiline_events() -> None:
    tr = translator("anthropic", "invoke")
    stream = tr.stream()
    message: dict[str, Any] = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "c",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    raw = (
        chunk({"type": "message_start", "message": message})
        + chunk({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
        + chunk(
            json.dumps(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}}, indent=1
            )
        )
        + chunk({"type": "content_block_stop", "index": 0})
        + chunk({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": None}})
        + chunk(
            {
                "type": "message_stop",
                "amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": 12,
                    "outputTokenCount": 4,
                    "cacheReadInputTokenCount": 2,
                },
            }
        )
    )
    out = stream.feed(raw) + stream.close()
    pairs = sse_pairs(out)
    assert [name for name, _ in pairs][-1] == "message_stop"
    assert b'{\n "type"' not in out  # an event spanning lines is re-serialised on one data line
    assert stream.usage is not None and stream.usage["output_tokens"] == 4 and stream.usage["input_tokens"] >= 12


@pytest.mark.parametrize("client", ["anthropic", "openai"])
@pytest.mark.parametrize("api", ["converse", "invoke"])
def test_a_lone_surrogate_in_bedrock_text_is_relayed_as_its_json_escape(client: str, api: str) -> None:
    # JSON may escape half of a surrogate pair; UTF-8 cannot carry it raw, so it goes on as the same escape.
    if api == "converse":
        raw = START + frame("contentBlockDelta", None, raw=b'{"contentBlockIndex": 0, "delta": {"text": "a\\ud800b"}}')
    else:
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 1, "output_tokens": 0},
            },
        }
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        delta = '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a\\ud800b"}}'
        raw = chunk(start) + chunk(block) + chunk(delta)
    stream = translator(client, api).stream()
    out = stream.feed(raw)
    assert b"a\\ud800b" in out
    texts = [d for _, d in sse_pairs(out) if isinstance(d, dict)]
    assert "a\ud800b" in json.dumps(texts, ensure_ascii=False)
