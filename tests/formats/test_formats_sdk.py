"""SDK acceptance: translated bodies and streams consumed by the official SDKs (no network)."""

from __future__ import annotations

import importlib
import importlib.util
import json
from typing import Any

import anthropic
import openai
import pytest

from asgi_llmroute.formats import TranslationOptions

from ._helpers import CLOCK, anthropic_client, openai_client, read, translate_stream

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]
# Recent SDK majors ship their own fork of httpx (``httpx2``) and reject httpx objects.
httpx2: Any = importlib.import_module("httpx2" if importlib.util.find_spec("httpx2") else "httpx")


def _client_options(body: bytes, status: int, content_type: str) -> dict[str, Any]:
    """An SDK client's options: every request answered with ``body``, strict validation, no retries."""

    def handler(request: Any) -> Any:
        return httpx2.Response(status, content=body, headers={"content-type": content_type})

    http_client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return {"api_key": "test", "http_client": http_client, "max_retries": 0, "_strict_response_validation": True}


def oai(body: bytes, status: int = 200, content_type: str = "text/event-stream") -> openai.OpenAI:
    return openai.OpenAI(base_url="http://127.0.0.1:9/v1", **_client_options(body, status, content_type))


def ant(body: bytes, status: int = 200, content_type: str = "text/event-stream") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url="http://127.0.0.1:9", **_client_options(body, status, content_type))


def consume_openai(body: bytes) -> dict[str, Any]:
    """Accumulate an OpenAI chunk stream the way a client does."""
    content, reasoning, finish, usage = "", "", None, None
    calls: dict[int, dict[str, str]] = {}
    stream = oai(body).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            content += delta.content or ""
            reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
            for call in delta.tool_calls or []:
                slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] += call.id or ""
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
            finish = choice.finish_reason or finish
    return {"content": content, "reasoning": reasoning, "calls": calls, "finish": finish, "usage": usage}


# -- OpenAI SDK reading translated Anthropic upstreams ----------------------------------------


def test_openai_sdk_text_stream() -> None:
    out = translate_stream(openai_client(), read("anthropic/stream_text.sse"))
    got = consume_openai(out)
    assert got["content"] == "Hello! How can I help you today?"
    assert got["finish"] == "stop" and got["usage"] is None


def test_openai_sdk_tools_and_usage() -> None:
    out = translate_stream(openai_client(include_usage=True), read("anthropic/stream_text_tool_use.sse"))
    got = consume_openai(out)
    assert got["finish"] == "tool_calls"
    assert json.loads(got["calls"][0]["arguments"]) == {"location": "Paris, France", "unit": "celsius"}
    assert got["calls"][0]["name"] == "get_weather"
    assert got["usage"].prompt_tokens == 2242 and got["usage"].prompt_tokens_details.cached_tokens == 1830


def test_openai_sdk_parallel_tools() -> None:
    out = translate_stream(openai_client(include_usage=True), read("anthropic/stream_parallel_tool_use.sse"))
    got = consume_openai(out)
    assert sorted(got["calls"]) == [0, 1]
    assert [c["name"] for c in got["calls"].values()] == ["get_weather", "get_time"]
    assert json.loads(got["calls"][1]["arguments"]) == {"timezone": "Europe/Paris"}


def test_openai_sdk_tool_without_arguments() -> None:
    got = consume_openai(translate_stream(openai_client(), read("anthropic/stream_tool_use_no_args.sse")))
    assert json.loads(got["calls"][0]["arguments"]) == {}


def test_openai_sdk_thinking() -> None:
    out = translate_stream(openai_client(include_usage=True), read("anthropic/stream_thinking_text.sse"))
    got = consume_openai(out)
    assert got["reasoning"].startswith("The user wants 27 * 453.")
    assert got["content"] == "27 × 453 = 12,231."
    assert got["usage"].completion_tokens_details.reasoning_tokens == 71


def test_openai_sdk_stream_helper_accumulates() -> None:
    out = translate_stream(openai_client(include_usage=True), read("anthropic/stream_parallel_tool_use.sse"))
    with oai(out).chat.completions.stream(model="m", messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (read("anthropic/stream_error_overloaded.sse"), "Overloaded"),
        (read("anthropic/stream_text.sse").split(b"event: message_delta")[0], "ended before message_stop"),
    ],
)
def test_openai_sdk_midstream_error_raises(raw: bytes, message: str) -> None:
    out = translate_stream(openai_client(), raw)
    assert b"[DONE]" not in out
    with pytest.raises(openai.APIError, match=message):
        consume_openai(out)


def test_openai_sdk_truncated_stream_raises() -> None:
    stream = openai_client().stream()
    out = stream.feed(read("anthropic/stream_text.sse")[:900]) + stream.close()
    with pytest.raises(openai.APIError, match="ended before message_stop"):
        consume_openai(out)


@pytest.mark.parametrize("stem", ["message_text", "message_tool_use"])
def test_openai_sdk_non_stream(stem: str) -> None:
    body = openai_client().response(read(f"anthropic/{stem}.json"))
    completion = oai(body, content_type="application/json").chat.completions.create(model="m", messages=MESSAGES)
    expected = json.loads(read(f"anthropic/{stem}.expected.openai.json"))
    assert completion.model_dump(exclude_unset=True) == expected


def test_openai_sdk_error_statuses() -> None:
    body = openai_client().error(529, read("anthropic/error_529_overloaded.json"))
    with pytest.raises(openai.InternalServerError) as info:
        oai(body, 529, "application/json").chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 529 and info.value.type == "overloaded_error"
    body = openai_client().error(400, read("anthropic/error_400_invalid_request.json"))
    with pytest.raises(openai.BadRequestError, match="non-empty"):
        oai(body, 400, "application/json").chat.completions.create(model="m", messages=MESSAGES)


# -- Anthropic SDK reading translated OpenAI upstreams ----------------------------------------


def final_message(body: bytes) -> anthropic.types.Message:
    with ant(body).messages.stream(model="m", max_tokens=10, messages=MESSAGES) as stream:
        for _ in stream:
            pass
        return stream.get_final_message()


def test_anthropic_sdk_text_stream() -> None:
    message = final_message(translate_stream(anthropic_client(), read("openai/stream_text_usage.sse")))
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Paris is the capital of France."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 158 and message.usage.cache_read_input_tokens == 1152
    assert message.usage.output_tokens == 8


def test_anthropic_sdk_parallel_tools() -> None:
    message = final_message(translate_stream(anthropic_client(), read("openai/stream_parallel_tool_calls.sse")))
    assert message.stop_reason == "tool_use"
    tools = [b for b in message.content if b.type == "tool_use"]
    assert [(t.name, t.input) for t in tools] == [
        ("get_weather", {"location": "Paris, France"}),
        ("get_time", {"timezone": "Europe/Paris"}),
    ]


def test_anthropic_sdk_text_then_bundled_tool_call() -> None:
    message = final_message(translate_stream(anthropic_client(), read("openai/stream_text_then_tool_call.sse")))
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[1].input == {"location": "Paris"}  # type: ignore[union-attr]


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def test_anthropic_sdk_thinking_from_reasoning_content() -> None:
    raw = (
        _chunk({"role": "assistant", "content": ""})
        + _chunk({"reasoning_content": "Let me think."})
        + _chunk({"reasoning_content": " Done."})
        + _chunk({"content": "42"})
        + _chunk({}, "stop")
        + b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}\n\n'
        + b"data: [DONE]\n\n"
    )
    message = final_message(translate_stream(anthropic_client(thinking=True), raw))
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Let me think. Done."  # type: ignore[union-attr]
    assert message.usage.output_tokens == 7
    # Without thinking requested, reasoning is dropped.
    message = final_message(translate_stream(anthropic_client(), raw))
    assert [b.type for b in message.content] == ["text"]


def test_anthropic_sdk_midstream_error_raises() -> None:
    out = translate_stream(anthropic_client(), read("openai/stream_error_midstream.sse"))
    with pytest.raises(anthropic.APIStatusError, match="server had an error"):
        final_message(out)


def test_anthropic_sdk_truncated_stream_raises() -> None:
    raw = read("openai/stream_text.sse").split(b'"finish_reason":"stop"')[0]
    raw = raw[: raw.rindex(b"\n\n") + 2]
    with pytest.raises(anthropic.APIStatusError, match="without a finish_reason"):
        final_message(translate_stream(anthropic_client(), raw))


@pytest.mark.parametrize("stem", ["completion_text", "completion_tool_calls"])
def test_anthropic_sdk_non_stream(stem: str) -> None:
    body = anthropic_client().response(read(f"openai/{stem}.json"))
    message = ant(body, content_type="application/json").messages.create(model="m", max_tokens=10, messages=MESSAGES)
    assert message.model_dump(exclude_unset=True) == json.loads(read(f"openai/{stem}.expected.anthropic.json"))


def test_anthropic_sdk_error_statuses() -> None:
    body = anthropic_client().error(429, read("openai/error_429_rate_limit.json"))
    with pytest.raises(anthropic.RateLimitError) as info:
        ant(body, 429, "application/json").messages.create(model="m", max_tokens=10, messages=MESSAGES)
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    body = anthropic_client().error(400, read("openai/error_400_context_length_completion.json"))
    with pytest.raises(anthropic.BadRequestError, match="exceed context limit: 119808 \\+ 16384 > 128000"):
        ant(body, 400, "application/json").messages.create(model="m", max_tokens=10, messages=MESSAGES)


def test_openai_sdk_accepts_thinking_extensions() -> None:
    upstream = (
        b'{"id":"msg_t","type":"message","role":"assistant","model":"claude","content":['
        b'{"type":"thinking","thinking":"plan","signature":"c2ln"},{"type":"text","text":"done"}],'
        b'"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":4}}'
    )
    body = openai_client().response(upstream)
    completion = oai(body, content_type="application/json").chat.completions.create(model="m", messages=MESSAGES)
    extra = completion.choices[0].message.model_extra or {}
    assert extra["reasoning_content"] == "plan"
    assert extra["thinking_blocks"] == [{"type": "thinking", "thinking": "plan", "signature": "c2ln"}]
    options = TranslationOptions(thinking_blocks=True, clock=lambda: CLOCK)
    out = translate_stream(openai_client(options=options), read("anthropic/stream_thinking_text.sse"))
    assert consume_openai(out)["content"] == "27 × 453 = 12,231."
