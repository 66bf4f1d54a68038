"""Chat completion -> Response object, and error bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.responses import Response

from asgi_llmroute.formats import ResponsesTranslator, UpstreamProtocolError

from ._helpers import OPTIONS, read


def translate(completion: dict[str, Any] | bytes, **request: Any) -> dict[str, Any]:
    tr = ResponsesTranslator(OPTIONS)
    tr.request({"model": "m", "input": "hi", **request})
    raw = completion if isinstance(completion, bytes) else json.dumps(completion).encode()
    out: dict[str, Any] = json.loads(tr.response(raw))
    Response.model_validate(out)  # every required field of the SDK's model is there
    return out


def test_text_completion() -> None:
    out = translate(read("openai/completion_text.json"), instructions="Be brief.", temperature=0.5)
    completion = json.loads(read("openai/completion_text.json"))
    assert out["id"] == "resp_" + completion["id"].removeprefix("chatcmpl-")
    assert out["object"] == "response" and out["status"] == "completed" and out["error"] is None
    assert out["created_at"] == completion["created"] and out["model"] == completion["model"]
    [message] = out["output"]
    assert message["type"] == "message" and message["role"] == "assistant" and message["status"] == "completed"
    assert message["id"].startswith("msg_")
    assert message["content"] == [
        {
            "type": "output_text",
            "text": completion["choices"][0]["message"]["content"],
            "annotations": [],
            "logprobs": [],
        }
    ]
    usage = completion["usage"]
    assert out["usage"]["input_tokens"] == usage["prompt_tokens"]
    assert out["usage"]["output_tokens"] == usage["completion_tokens"]
    assert out["usage"]["total_tokens"] == usage["total_tokens"]
    assert out["instructions"] == "Be brief." and out["temperature"] == 0.5 and out["tools"] == []


def test_tool_call_completion() -> None:
    out = translate(read("openai/completion_tool_calls.json"))
    calls = json.loads(read("openai/completion_tool_calls.json"))["choices"][0]["message"]["tool_calls"]
    assert [(i["type"], i["call_id"], i["name"], i["arguments"]) for i in out["output"]] == [
        ("function_call", c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls
    ]
    assert all(i["id"].startswith("fc_") for i in out["output"])
    assert len({i["id"] for i in out["output"]}) == 2
    assert out["status"] == "completed"


def test_reasoning_refusal_cached_and_reasoning_tokens() -> None:
    out = translate(
        {
            "id": "chatcmpl-1",
            "created": 1,
            "model": "x",
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": "No.",
                        "reasoning_content": "Think.",
                        "refusal": "Sorry",
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
        }
    )
    reasoning, message = out["output"]
    assert reasoning == {
        "type": "reasoning",
        "id": "rs_1_0",
        "status": "completed",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": "Think."}],
    }
    assert message["content"][1] == {"type": "refusal", "refusal": "Sorry"}
    assert out["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 15,
    }


@pytest.mark.parametrize(("finish", "reason"), [("length", "max_output_tokens"), ("content_filter", "content_filter")])
def test_incomplete(finish: str, reason: str) -> None:
    out = translate({"id": "c", "choices": [{"message": {"content": "Par"}, "finish_reason": finish}]})
    assert out["status"] == "incomplete" and out["incomplete_details"] == {"reason": reason}
    assert out["output"][0]["status"] == "incomplete"
    assert out["usage"] is None and out["created_at"] == OPTIONS.clock()


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"choices": []}', b'{"choices": [{"message": 3}]}', b'{"error": {"message": "x"}}']
)
def test_malformed_completion_is_a_protocol_error(body: bytes) -> None:
    tr = ResponsesTranslator(OPTIONS)
    tr.request({"model": "m", "input": "hi"})
    with pytest.raises(UpstreamProtocolError):
        tr.response(body)


def test_errors_keep_openai_bodies_and_normalise_others() -> None:
    tr = ResponsesTranslator()
    body = read("openai/error_429_rate_limit.json")
    assert tr.error(429, body) == body
    assert json.loads(tr.error(502, b"<html>Bad gateway</html>")) == {
        "error": {"message": "upstream returned HTTP 502", "type": "server_error", "param": None, "code": None}
    }
    assert json.loads(tr.error(400, b'{"detail": "bad"}'))["error"]["message"] == "bad"
