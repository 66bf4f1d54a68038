"""Non-stream responses and error bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_llmroute.formats import UpstreamProtocolError, anthropic_error_type, openai_error_type
from asgi_llmroute.formats.converse_response import bedrock_anthropic_type

from ._helpers import CLOCK, anthropic_client, openai_client


def message(content: list[dict[str, Any]], stop: str | None = "end_turn", **usage: Any) -> bytes:
    return json.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 2, **usage},
        }
    ).encode()


def completion(msg: dict[str, Any], finish: str | None = "stop", usage: Any = None) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt",
            "choices": [{"index": 0, "message": {"role": "assistant", **msg}, "finish_reason": finish}],
            "usage": usage,
        }
    ).encode()


def test_anthropic_thinking_becomes_reasoning_content_with_signed_blocks() -> None:
    tr = openai_client()
    body = message(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "A"},
            {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}},
            {"type": "text", "text": "B"},
        ],
        cache_read_input_tokens=10,
        cache_creation_input_tokens=3,
        output_tokens_details={"thinking_tokens": 1},
    )
    out = json.loads(tr.response(body))
    msg = out["choices"][0]["message"]
    assert msg["content"] == "AB" and msg["reasoning_content"] == "hmm"
    assert msg["thinking_blocks"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]
    assert out["created"] == CLOCK
    assert out["usage"] == {
        "prompt_tokens": 18,
        "completion_tokens": 2,
        "total_tokens": 20,
        "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 3},
        "completion_tokens_details": {"reasoning_tokens": 1},
    }
    assert tr.usage == {"input_tokens": 18, "output_tokens": 2, "cache_read_tokens": 10, "cache_write_tokens": 3}


def test_anthropic_tool_only_message_has_null_content() -> None:
    out = json.loads(
        openai_client().response(
            message([{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, "é"]}}], "tool_use")
        )
    )
    msg = out["choices"][0]["message"]
    assert msg["content"] is None
    assert msg["tool_calls"][0]["function"]["arguments"] == '{"a":[1,"é"]}'
    assert out["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"content": "x"}',
        b'{"content": [1]}',
        b'{"type":"error","error":{"type":"x"}}',
        b'{"content": [{"type": "tool_use"}]}',
        b"\xff\xfe",
    ],
)
def test_anthropic_bad_bodies(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError) as info:
        openai_client().response(body)
    assert "upstream" in info.value.message


def test_openai_reasoning_only_when_thinking_requested() -> None:
    body = completion({"content": "answer", "reasoning_content": "why"})
    out = json.loads(anthropic_client(thinking=True).response(body))
    assert out["content"] == [
        {"type": "thinking", "thinking": "why", "signature": ""},
        {"type": "text", "text": "answer"},
    ]
    out = json.loads(anthropic_client().response(body))
    assert out["content"] == [{"type": "text", "text": "answer"}]
    assert out["usage"] == {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }


def test_openai_refusal_and_empty_content() -> None:
    out = json.loads(anthropic_client().response(completion({"content": None, "refusal": "No."})))
    assert out["content"] == [{"type": "text", "text": "No."}] and out["stop_reason"] == "refusal"
    out = json.loads(anthropic_client().response(completion({"content": ""}, "length")))
    assert out["content"] == [] and out["stop_reason"] == "max_tokens"


def test_openai_tool_calls_with_stop_bad_arguments_and_names() -> None:
    tr = anthropic_client(tools=[{"name": "x" * 90, "input_schema": {"type": "object"}}])
    upstream_name = tr.context.tool_names.upstream("x" * 90)
    body = completion(
        {
            "content": None,
            "tool_calls": [
                {"id": "call.1", "type": "function", "function": {"name": upstream_name, "arguments": "{oops"}},
                {"type": "function", "function": {"name": "y", "arguments": ""}},
            ],
        },
        "stop",
        {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": None},
    )
    out = json.loads(tr.response(body))
    assert out["stop_reason"] == "tool_use"
    first, second = out["content"]
    assert first == {"type": "tool_use", "id": "call_1", "name": "x" * 90, "input": {"_raw_arguments": "{oops"}}
    assert second["id"].startswith("toolu_") and second["input"] == {}
    assert out["usage"]["input_tokens"] == 10 and tr.usage is not None and tr.usage["output_tokens"] == 3


@pytest.mark.parametrize(
    "body", [b"{}", b'{"choices": []}', b'{"choices": [{"message": 3}]}', b'{"error": {"message": "x"}}', b"nope"]
)
def test_openai_bad_bodies(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        anthropic_client().response(body)


@pytest.mark.parametrize(
    ("status", "anthropic", "openai"),
    [
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "authentication_error"),
        (402, "billing_error", "invalid_request_error"),
        (403, "permission_error", "permission_error"),
        (404, "not_found_error", "invalid_request_error"),
        (409, "conflict_error", "invalid_request_error"),
        (413, "request_too_large", "invalid_request_error"),
        (422, "invalid_request_error", "invalid_request_error"),
        (429, "rate_limit_error", "rate_limit_error"),
        (500, "api_error", "server_error"),
        (502, "api_error", "server_error"),
        (503, "api_error", "server_error"),
        (504, "timeout_error", "server_error"),
        (529, "overloaded_error", "server_error"),
        (418, "invalid_request_error", "invalid_request_error"),
    ],
)
def test_error_type_tables(status: int, anthropic: str, openai: str) -> None:
    assert anthropic_error_type(status) == anthropic
    assert openai_error_type(status) == openai


@pytest.mark.parametrize(
    ("status", "anthropic"),
    [
        (400, "invalid_request_error"),
        (402, "invalid_request_error"),
        (408, "timeout_error"),
        (424, "api_error"),
        (429, "rate_limit_error"),
        (503, "overloaded_error"),
        (504, "api_error"),
        (529, "api_error"),
        (418, "invalid_request_error"),
        (200, "api_error"),
    ],
)
def test_bedrock_error_types(status: int, anthropic: str) -> None:
    assert bedrock_anthropic_type(status) == anthropic


def test_openai_error_bodies_to_anthropic() -> None:
    out = json.loads(
        anthropic_client().error(
            404, b'{"error":{"message":"no model","type":"invalid_request_error","code":"model_not_found"}}'
        )
    )
    assert out == {"type": "error", "error": {"type": "not_found_error", "message": "no model"}}
    out = json.loads(anthropic_client().error(422, b'{"detail": "bad field"}'))
    assert out["error"] == {"type": "invalid_request_error", "message": "bad field"}
    msg = "This model's maximum context length is 32768 tokens. Please reduce the length of the messages."
    out = json.loads(anthropic_client().error(400, json.dumps({"error": {"message": msg}}).encode()))
    assert out["error"]["message"] == msg  # numbers not parseable: message kept


def test_anthropic_error_bodies_to_openai() -> None:
    body = b'{"type":"error","error":{"type":"not_found_error","message":"model: x"},"request_id":"r"}'
    out = json.loads(openai_client().error(404, body))
    assert out == {"error": {"message": "model: x", "type": "not_found_error", "param": None, "code": None}}
    out = json.loads(openai_client().error(413, b"<html>too large</html>"))
    assert out["error"]["type"] == "request_too_large"


def test_vllm_style_context_error_is_reworded() -> None:
    body = json.dumps(
        {
            "object": "error",
            "message": "This model's maximum context length is 32768 tokens. However, you requested 33000 tokens "
            "(1000 in the messages, 32000 in the completion). Please reduce the length of the messages or completion.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    ).encode()
    out = json.loads(anthropic_client().error(400, body))
    assert out["error"] == {
        "type": "invalid_request_error",
        "message": "input length and `max_tokens` exceed context limit: 1000 + 32000 > 32768, "
        "decrease input length or `max_tokens` and try again",
    }
