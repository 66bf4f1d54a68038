"""Bedrock translation (Converse and Claude's InvokeModel) against the provider fixtures: requests
checked with botocore's own validator, outputs with the official openai / anthropic SDK types."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from asgi_llmroute.formats import TranslationError, TranslationOptions
from asgi_llmroute.formats.bedrock import BedrockTranslator, model_path, split_betas
from asgi_llmroute.formats.converse_request import converse_tool_id
from asgi_llmroute.formats.eventstream import encode_message

from ._helpers import sse_pairs

botocore_session = pytest.importorskip("botocore.session")
validate = pytest.importorskip("botocore.validate")

PROVIDERS = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
OPTIONS = TranslationOptions(clock=lambda: 1700000000)
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
EVENTS = TypeAdapter(RawMessageStreamEvent)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))

_MODEL = botocore_session.get_session().get_service_model("bedrock-runtime")


def read(rel: str) -> bytes:
    return (PROVIDERS / rel).read_bytes()


def _blobs_to_bytes(value: Any, key: str = "") -> Any:
    """Converse JSON carries blobs as base64 text; botocore's validator wants the bytes."""
    if isinstance(value, dict):
        return {k: _blobs_to_bytes(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_blobs_to_bytes(v) for v in value]
    if key in ("bytes", "redactedContent") and isinstance(value, str):
        return base64.b64decode(value)
    return value


def assert_valid_converse(body: dict[str, Any], stream: bool) -> None:
    operation = _MODEL.operation_model("ConverseStream" if stream else "Converse")
    params = _blobs_to_bytes(copy.deepcopy(body))
    params["modelId"] = MODEL
    report = validate.ParamValidator().validate(params, operation.input_shape)
    assert not report.has_errors(), report.generate_report()


def translator(client: str, api: str, body: dict[str, Any] | None = None, model: str = MODEL) -> BedrockTranslator:
    tr = BedrockTranslator(client, api, model, OPTIONS)  # type: ignore[arg-type]
    if body is None:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        if client == "openai":
            body["stream_options"] = {"include_usage": True}
        else:
            body["max_tokens"] = 100
    tr.request(body)
    return tr


def run_stream(tr: BedrockTranslator, raw: bytes, step: int = 0) -> bytes:
    stream = tr.stream()
    pieces = [raw[i : i + step] for i in range(0, len(raw), step)] if step else [raw]
    out = b"".join(stream.feed(p) for p in pieces)
    out += stream.close()
    assert stream.done
    return out


def check_anthropic_events(out: bytes) -> list[dict[str, Any]]:
    events = []
    for name, data in sse_pairs(out):
        assert name == data["type"]
        if name != "error":
            EVENTS.validate_python(data)
        events.append(data)
    return events


def check_openai_chunks(out: bytes) -> list[dict[str, Any]]:
    chunks = []
    for name, data in sse_pairs(out):
        assert name is None
        if data == "[DONE]":
            chunks.append({"done": True})
        elif "error" in data:
            chunks.append(data)
        else:
            ChatCompletionChunk.model_validate(data)
            chunks.append(data)
    return chunks


# -- requests --------------------------------------------------------------------------------


def test_openai_request_fixture_to_converse() -> None:
    body = json.loads(read("requests/openai_chat_request.json"))
    tr = BedrockTranslator("openai", "converse", MODEL, OPTIONS)
    out = tr.request(body)
    assert out == json.loads(read("requests/openai_chat_request.expected.bedrock-converse.json"))
    assert tr.path() == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
    assert_valid_converse(out, stream=True)


def test_openai_request_fixture_to_invoke() -> None:
    body = json.loads(read("requests/openai_chat_request.json"))
    tr = BedrockTranslator("openai", "invoke", "anthropic.claude-sonnet-4-5-20250929-v1:0", OPTIONS)
    assert tr.request(body) == json.loads(read("requests/openai_chat_request.expected.bedrock-claude.json"))
    assert tr.path() == "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream"


def test_model_ids_are_one_encoded_path_segment() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
    assert model_path(arn, "converse", False) == (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
        "us.anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    )
    assert model_path("global.anthropic.claude-x", "invoke", False) == "/model/global.anthropic.claude-x/invoke"
    assert model_path("a b?#", "invoke", True) == "/model/a%20b%3F%23/invoke-with-response-stream"
    with pytest.raises(TranslationError):
        model_path("", "converse", False)


def test_anthropic_request_with_everything() -> None:
    body = {
        "model": "claude",
        "max_tokens": 2048,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
                    {
                        "type": "document",
                        "title": "report.pdf",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
                    },
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "c2ln"},
                    {"type": "redacted_thinking", "data": "cmVk"},
                    {"type": "tool_use", "id": "toolu_01", "name": "a.b/c", "input": {"q": 1}},
                    {"type": "tool_use", "id": "x" * 80, "name": "other", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and"},
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "ok", "is_error": True},
                    {
                        "type": "tool_result",
                        "tool_use_id": "x" * 80,
                        "content": [{"type": "text", "text": "r"}],
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            },
        ],
        "tools": [
            {"name": "a.b/c", "description": "d", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search"},
        ],
        "tool_choice": {"type": "tool", "name": "a.b/c"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "temperature": 1.5,
        "top_p": 0.9,
        "top_k": 5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u"},
        "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"},
        "additionalModelRequestFields": {"top_k": 7},
        "stream": False,
    }
    tr = BedrockTranslator("anthropic", "converse", MODEL, OPTIONS, betas=["interleaved-thinking-2025-05-14"])
    out = tr.request(body)
    assert_valid_converse(out, stream=False)
    assert tr.path().endswith("/converse")
    assert out["system"] == [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}]
    user, assistant, results = out["messages"]
    assert user["content"][1] == {"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}}
    assert user["content"][2]["document"]["name"] == "report pdf 1"
    assert user["content"][3]["document"]["format"] == "txt"
    assert assistant["content"][0] == {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "c2ln"}}}
    assert assistant["content"][1] == {"reasoningContent": {"redactedContent": "cmVk"}}
    name = assistant["content"][2]["toolUse"]["name"]
    assert name == "a_b_c"
    long_id = assistant["content"][3]["toolUse"]["toolUseId"]
    assert long_id == converse_tool_id("x" * 80) and len(long_id) == 42
    # tool results come first in their turn; ids still pair up; is_error -> status error
    assert results["content"][0]["toolResult"] == {
        "toolUseId": "toolu_01",
        "content": [{"text": "ok"}],
        "status": "error",
    }
    assert results["content"][1]["toolResult"]["toolUseId"] == long_id
    assert results["content"][2] == {"cachePoint": {"type": "default"}}
    assert results["content"][3] == {"text": "and"}
    assert out["inferenceConfig"] == {"maxTokens": 2048, "temperature": 1, "topP": 0.9, "stopSequences": ["END"]}
    specs = [t["toolSpec"]["name"] for t in out["toolConfig"]["tools"]]
    assert specs == ["a_b_c", "other"]  # the hosted tool is dropped, the tool used in history declared
    assert out["toolConfig"]["toolChoice"] == {"tool": {"name": "a_b_c"}}
    assert out["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "top_k": 7,  # the client's explicit passthrough wins
        "anthropic_beta": ["interleaved-thinking-2025-05-14"],
    }
    assert out["guardrailConfig"] == {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"}
    assert "metadata" not in out and "model" not in out and "stream" not in out
    assert any("web_search" in w for w in tr.warnings)


def test_non_claude_models_get_no_anthropic_fields() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "reasoning_effort": "high",
        "top_k": 3,
    }
    tr = BedrockTranslator("openai", "converse", "amazon.nova-pro-v1:0", OPTIONS)
    out = tr.request(body)
    assert "additionalModelRequestFields" not in out
    assert "inferenceConfig" not in out  # no cap asked: the model's default applies
    assert any("thinking" in w for w in tr.warnings)


def test_openai_reasoning_effort_becomes_claude_thinking() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"}
    out = BedrockTranslator("openai", "converse", MODEL, OPTIONS).request(body)
    assert out["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert out["inferenceConfig"]["maxTokens"] > 1024


def test_thinking_and_tool_use_continue_with_the_signature() -> None:
    """An OpenAI client echoes thinking_blocks from a response; the signature goes back to Converse."""
    first = BedrockTranslator("openai", "converse", MODEL, OPTIONS)
    first.request({"model": "m", "messages": [{"role": "user", "content": "weather?"}], "reasoning_effort": "low"})
    answer = json.loads(first.response(read("bedrock-converse/response_tool_use.json")))
    message = answer["choices"][0]["message"]
    history = [
        {"role": "user", "content": "weather?"},
        message,
        *({"role": "tool", "tool_call_id": c["id"], "content": "fine"} for c in message["tool_calls"]),
    ]
    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in ("get_weather", "get_time")
    ]
    second = BedrockTranslator("openai", "converse", MODEL, OPTIONS)
    out = second.request({"model": "m", "messages": history, "tools": tools, "reasoning_effort": "low"})
    assert_valid_converse(out, stream=False)
    assistant = out["messages"][1]["content"]
    assert assistant[0]["reasoningContent"]["reasoningText"]["signature"] == (
        "Zml4dHVyZS1zaWduYXR1cmU6YmVkcm9jay1jb252ZXJzZTpyZWFzb25pbmc6MDE="
    )
    assert [b["toolUse"]["toolUseId"] for b in assistant[2:]] == ["tooluse_fixtureWeather01", "tooluse_fixtureTime01"]
    assert "thinking" in out["additionalModelRequestFields"]


def test_invoke_body_for_anthropic_clients() -> None:
    body = {
        "model": "claude",
        "max_tokens": 10,
        "stream": True,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        "metadata": {"user_id": "u", "other": 1},
        "some_future_field": 1,
    }
    tr = BedrockTranslator("anthropic", "invoke", "anthropic.claude-x", OPTIONS, betas=["a-1, b-2", "a-1"])
    out = tr.request(body)
    assert out == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 10,
        "messages": body["messages"],
        "metadata": {"user_id": "u"},
        "anthropic_beta": ["a-1", "b-2"],
    }
    assert tr.path() == "/model/anthropic.claude-x/invoke-with-response-stream"
    assert split_betas(["x,y", " y "]) == ["x", "y"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "http://x"}}]}
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "A"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages[0].content[0]"),
    ],
)
def test_bad_anthropic_requests_are_400s(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as info:
        BedrockTranslator("anthropic", "converse", MODEL, OPTIONS).request({"max_tokens": 5, **body})
    assert info.value.param == param


# -- non-stream responses ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["response_text", "response_tool_use"])
def test_converse_responses(name: str) -> None:
    raw = read(f"bedrock-converse/{name}.json")
    anthropic = translator(
        "anthropic", "converse", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]}
    )
    message = Message.model_validate_json(anthropic.response(raw))
    openai = translator("openai", "converse", {"model": "m", "messages": [{"role": "user", "content": "q"}]})
    completion = ChatCompletion.model_validate_json(openai.response(raw))
    upstream = json.loads(raw)
    usage = upstream["usage"]
    total_in = usage["inputTokens"] + usage["cacheReadInputTokens"] + usage["cacheWriteInputTokens"]
    assert total_in + usage["outputTokens"] == usage["totalTokens"]
    assert message.usage.input_tokens == usage["inputTokens"]
    assert message.usage.cache_read_input_tokens == usage["cacheReadInputTokens"]
    assert message.usage.cache_creation_input_tokens == usage["cacheWriteInputTokens"]
    assert completion.usage is not None and completion.usage.prompt_tokens == total_in
    assert completion.usage.total_tokens == usage["totalTokens"]
    assert (
        anthropic.usage
        == openai.usage
        == {
            "input_tokens": total_in,
            "output_tokens": usage["outputTokens"],
            "cache_read_tokens": usage["cacheReadInputTokens"],
            "cache_write_tokens": usage["cacheWriteInputTokens"],
        }
    )
    if name == "response_tool_use":
        assert message.stop_reason == "tool_use"
        assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
        assert completion.choices[0].finish_reason == "tool_calls"
        calls = completion.choices[0].message.tool_calls or []
        arguments = [json.loads(c.function.arguments) for c in calls if c.type == "function"]
        assert arguments == [{"location": "Paris, France"}, {"timezone": "Europe/Paris"}]
    else:
        assert message.stop_reason == "end_turn"
        assert completion.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("reason", "anthropic", "openai"),
    [
        ("guardrail_intervened", "refusal", "content_filter"),
        ("content_filtered", "refusal", "content_filter"),
        ("max_tokens", "max_tokens", "length"),
        ("model_context_window_exceeded", "model_context_window_exceeded", "length"),
        ("stop_sequence", "stop_sequence", "stop"),
        ("malformed_model_output", "end_turn", "stop"),
        ("something_new", "end_turn", "stop"),
    ],
)
def test_stop_reasons(reason: str, anthropic: str, openai: str) -> None:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
        "stopReason": reason,
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
        "additionalModelResponseFields": {"stop_sequence": "END"},
    }
    raw = json.dumps(body).encode()
    message = json.loads(translator("anthropic", "converse").response(raw))
    assert message["stop_reason"] == anthropic
    if reason == "stop_sequence":
        assert message["stop_sequence"] == "END"
    assert json.loads(translator("openai", "converse").response(raw))["choices"][0]["finish_reason"] == openai


def test_malformed_output_without_content_is_a_502() -> None:
    from asgi_llmroute.formats import UpstreamProtocolError

    raw = json.dumps({"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "malformed_tool_use"})
    with pytest.raises(UpstreamProtocolError, match="malformed_tool_use"):
        translator("openai", "converse").response(raw.encode())
    for bad in (b"[]", b"{", b'{"output":{}}'):
        with pytest.raises(UpstreamProtocolError):
            translator("anthropic", "converse").response(bad)


@pytest.mark.parametrize("name", ["response_text", "response_tool_use"])
def test_invoke_responses(name: str) -> None:
    raw = read(f"bedrock-claude/{name}.json")
    tr = translator(
        "anthropic", "invoke", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]}
    )
    assert tr.response(raw) == raw  # relayed as it is
    assert tr.usage is not None and tr.usage["input_tokens"] == 412 + 1830
    openai = translator("openai", "invoke", {"model": "m", "messages": [{"role": "user", "content": "q"}]})
    ChatCompletion.model_validate_json(openai.response(raw))


@pytest.mark.parametrize(
    ("folder", "name", "status", "anthropic_type", "openai_type"),
    [
        ("bedrock-converse", "error_429_throttling", 429, "rate_limit_error", "rate_limit_error"),
        ("bedrock-converse", "error_400_validation", 400, "invalid_request_error", "invalid_request_error"),
        ("bedrock-claude", "error_400_extraneous_key", 400, "invalid_request_error", "invalid_request_error"),
    ],
)
def test_http_errors(folder: str, name: str, status: int, anthropic_type: str, openai_type: str) -> None:
    raw = read(f"{folder}/{name}.json")
    headers = json.loads(read(f"{folder}/{name}.headers.json"))
    assert headers["status"] == status
    message = json.loads(raw)["message"]
    a = translator("anthropic", "converse")
    assert json.loads(a.error(status, raw)) == {"type": "error", "error": {"type": anthropic_type, "message": message}}
    o = translator("openai", "converse")
    o.error_type = headers["headers"]["x-amzn-ErrorType"].split(":")[0]
    err = json.loads(o.error(status, raw))["error"]
    assert err["message"] == message and err["type"] == openai_type and err["code"] == o.error_type


@pytest.mark.parametrize(
    ("status", "anthropic_type"),
    [
        (403, "permission_error"),
        (408, "timeout_error"),
        (424, "api_error"),
        (503, "overloaded_error"),
        (500, "api_error"),
    ],
)
def test_other_statuses(status: int, anthropic_type: str) -> None:
    body = json.loads(translator("anthropic", "converse").error(status, b'{"Message":"nope"}'))
    assert body["error"] == {"type": anthropic_type, "message": "nope"}
    assert json.loads(translator("openai", "invoke").error(status, b"<html>"))["error"]["message"] == (
        f"upstream returned HTTP {status}"
    )


# -- streams ---------------------------------------------------------------------------------


def _text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")


@pytest.mark.parametrize("api", ["converse", "invoke"])
@pytest.mark.parametrize("step", [0, 1, 5, 17])
def test_text_streams(api: str, step: int) -> None:
    folder = "bedrock-converse" if api == "converse" else "bedrock-claude"
    raw = read(f"{folder}/stream_text.bin")
    tr = translator("anthropic", api)
    events = check_anthropic_events(run_stream(tr, raw, step))
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    assert _text_of(events) == "Paris is the capital of France. Its café culture ☕ dates back to the 17th century."
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    assert events[-2]["usage"]["output_tokens"] == 23
    openai = translator("openai", api)
    chunks = check_openai_chunks(run_stream(openai, raw, step))
    assert chunks[-1] == {"done": True}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert text == _text_of(events)
    assert chunks[-2]["usage"]["prompt_tokens"] == 412 + 1830
    assert tr.stream().usage is None  # a fresh stream has seen nothing


@pytest.mark.parametrize("api", ["converse", "invoke"])
def test_tool_use_streams(api: str) -> None:
    folder = "bedrock-converse" if api == "converse" else "bedrock-claude"
    raw = read(f"{folder}/stream_tool_use.bin")
    events = check_anthropic_events(run_stream(translator("anthropic", api), raw, 3))
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use", "tool_use"]
    indexes = [e["index"] for e in events if e["type"] == "content_block_start"]
    assert indexes == [0, 1, 2, 3]
    signatures = [e["delta"]["signature"] for e in events if e.get("delta", {}).get("type") == "signature_delta"]
    assert len(signatures) == 1
    args: dict[int, str] = {}
    for e in events:
        if e.get("delta", {}).get("type") == "input_json_delta":
            args[e["index"]] = args.get(e["index"], "") + e["delta"]["partial_json"]
    assert [json.loads(v) for v in args.values()] == [{"location": "Paris, France"}, {"timezone": "Europe/Paris"}]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"

    options = TranslationOptions(clock=lambda: 1, thinking_blocks=True)
    tr = BedrockTranslator("openai", api, MODEL, options)  # type: ignore[arg-type]
    tr.request({"model": "m", "messages": [{"role": "user", "content": "q"}], "stream": True})
    chunks = check_openai_chunks(run_stream(tr, raw, 11))
    deltas = [c["choices"][0]["delta"] for c in chunks if c.get("choices")]
    calls: dict[int, str] = {}
    for d in deltas:
        for call in d.get("tool_calls") or ():
            calls[call["index"]] = calls.get(call["index"], "") + call["function"]["arguments"]
    assert [json.loads(v) for v in calls.values()] == [{"location": "Paris, France"}, {"timezone": "Europe/Paris"}]
    blocks = [b for d in deltas for b in d.get("thinking_blocks") or ()]
    assert blocks and blocks[0]["signature"] == signatures[0]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("path", "anthropic_type"),
    [
        ("bedrock-converse/stream_error_midstream.bin", "api_error"),
        ("bedrock-claude/stream_error_throttling.bin", "rate_limit_error"),
    ],
)
def test_exception_frames_end_the_stream_with_an_error(path: str, anthropic_type: str) -> None:
    raw = read(path)
    api = "converse" if "converse" in path else "invoke"
    events = check_anthropic_events(run_stream(translator("anthropic", api), raw, 7))
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] == anthropic_type
    assert not any(e["type"] == "message_stop" for e in events)
    chunks = check_openai_chunks(run_stream(translator("openai", api), raw, 7))
    assert chunks[-1]["error"]["type"] == anthropic_type
    assert {"done": True} not in chunks


def _frame(event: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(payload).encode())


@pytest.mark.parametrize("client", ["openai", "anthropic"])
@pytest.mark.parametrize(
    "tail",
    [
        b"\x00\x00\x00\x20garbage-prelude-with-bad-crc",  # corrupted frame
        _frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "x"}})[:-3],  # cut mid-frame
        encode_message({":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b""),
        _frame("contentBlockDelta", {"contentBlockIndex": 5, "delta": {"toolUse": {"input": "{"}}}),
        b"",  # EOF before messageStop
    ],
)
def test_broken_converse_streams_end_with_an_error_event(client: str, tail: bytes) -> None:
    raw = (
        _frame("messageStart", {"role": "assistant"})
        + _frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "partial"}})
        + tail
    )
    for step in (0, 1, 9):
        out = run_stream(translator(client, "converse"), raw, step)
        last = sse_pairs(out)[-1]
        if client == "anthropic":
            assert last[0] == "error"
        else:
            assert "error" in last[1]


def test_message_stop_without_metadata_still_finishes() -> None:
    raw = (
        _frame("messageStart", {"role": "assistant"})
        + _frame("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}})
        + _frame("contentBlockStop", {"contentBlockIndex": 0})
        + _frame("messageStop", {"stopReason": "tool_use"})
    )
    events = check_anthropic_events(run_stream(translator("anthropic", "converse"), raw))
    assert events[-2]["delta"]["stop_reason"] == "tool_use" and events[-2]["usage"] == {"output_tokens": 0}
    args = [e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"]
    assert args == ["{}"]  # a tool without input still carries valid JSON


def test_malformed_stop_without_content_is_an_error_event() -> None:
    raw = _frame("messageStart", {"role": "assistant"}) + _frame(
        "messageStop", {"stopReason": "malformed_model_output"}
    )
    raw += _frame("metadata", {"usage": {"inputTokens": 1, "outputTokens": 0, "totalTokens": 1}})
    events = check_anthropic_events(run_stream(translator("anthropic", "converse"), raw))
    assert events[-1]["type"] == "error"


def test_cut_short_and_done() -> None:
    stream = translator("openai", "converse").stream()
    out = stream.close()
    assert "error" in json.loads(out.decode()[6:])
    assert stream.done and stream.feed(b"x") == b"" and stream.close() == b""


# -- fuzz ------------------------------------------------------------------------------------

_EVENT_TYPES = [
    "messageStart",
    "contentBlockStart",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
    "x",
]
_payloads = st.fixed_dictionaries(
    {},
    optional={
        "contentBlockIndex": st.integers(-1, 3) | st.none() | st.text(max_size=2),
        "delta": st.sampled_from(
            [
                {"text": "a"},
                {"text": 1},
                {"toolUse": {"input": "{}"}},
                {"toolUse": {}},
                {"reasoningContent": {"text": "r"}},
                {"reasoningContent": {"signature": "s"}},
                {"reasoningContent": {"redactedContent": "cmVk"}},
                {"reasoningContent": 3},
                {},
                "x",
            ]
        ),
        "start": st.sampled_from([{"toolUse": {"toolUseId": "t", "name": "n"}}, {"toolUse": {}}, {}, None]),
        "stopReason": st.sampled_from(["end_turn", "tool_use", "malformed_tool_use", None, 5]),
        "usage": st.sampled_from([{"inputTokens": 3, "outputTokens": 2}, {"inputTokens": -1}, None, "x"]),
    },
)


@SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from(_EVENT_TYPES), _payloads), max_size=12),
    st.sampled_from(["openai", "anthropic"]),
    st.integers(0, 13),
)
def test_fuzzed_event_sequences_always_end_cleanly(
    events: list[tuple[str, dict[str, Any]]], client: str, step: int
) -> None:
    raw = b"".join(_frame(name, payload) for name, payload in events)
    out = run_stream(translator(client, "converse"), raw, step)
    pairs = sse_pairs(out)
    assert pairs, "a stream always ends with a terminal event"
    last_name, last = pairs[-1]
    if client == "anthropic":
        assert last_name in ("message_stop", "error")
        check_anthropic_events(out)
    else:
        assert last == "[DONE]" or "error" in last
        check_openai_chunks(out)


_text = st.text(max_size=6)
_blocks = st.lists(
    st.one_of(
        st.builds(lambda t: {"type": "text", "text": t}, _text),
        st.builds(lambda i: {"type": "tool_use", "id": i, "name": "f", "input": {}}, st.text(min_size=1, max_size=70)),
        st.builds(
            lambda i: {"type": "tool_result", "tool_use_id": i, "content": "r"}, st.text(min_size=1, max_size=70)
        ),
        st.just({"type": "thinking", "thinking": "t", "signature": "cw=="}),
        st.just({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}),
    ),
    max_size=4,
)


@SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from(["user", "assistant"]), st.one_of(_text, _blocks)), min_size=1, max_size=6),
    st.booleans(),
)
def test_fuzzed_anthropic_requests_give_valid_converse_bodies(messages: list[tuple[str, Any]], tools: bool) -> None:
    body: dict[str, Any] = {"max_tokens": 50, "messages": [{"role": r, "content": c} for r, c in messages]}
    if tools:
        body["tools"] = [{"name": "f", "input_schema": {"type": "object"}}]
    try:
        out = BedrockTranslator("anthropic", "converse", MODEL, OPTIONS).request(body)
    except TranslationError:
        return
    assert_valid_converse(out, stream=False)
    roles = [m["role"] for m in out["messages"]]
    assert roles[0] == "user" and all(a != b for a, b in zip(roles, roles[1:], strict=False))
