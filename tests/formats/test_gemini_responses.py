"""Gemini responses, streams and errors -> OpenAI / Anthropic, checked with the official SDKs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from asgi_llmroute.formats import TranslationOptions
from asgi_llmroute.formats.gemini import GeminiTranslator, split_call_id

from ._helpers import sse_pairs
from .test_formats_sdk import ant, consume_openai, oai

PROVIDERS = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
OPTIONS = TranslationOptions(clock=lambda: 1700000000)
STREAMS = ["gemini/stream_text.sse", "gemini/stream_tool_call.sse"]
EVENT = TypeAdapter(RawMessageStreamEvent)
MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def read(rel: str) -> bytes:
    return (PROVIDERS / rel).read_bytes()


def openai_tr(include_usage: bool = True, **extra: Any) -> GeminiTranslator:
    tr = GeminiTranslator("openai", OPTIONS)
    body: dict[str, Any] = {"model": "gemini-2.5-flash", "messages": MESSAGES, "stream": True, **extra}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    tr.request(body)
    return tr


def anthropic_tr(thinking: bool = True) -> GeminiTranslator:
    tr = GeminiTranslator("anthropic", OPTIONS)
    body: dict[str, Any] = {"model": "gemini-2.5-flash", "max_tokens": 100, "messages": MESSAGES, "stream": True}
    if thinking:
        body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    tr.request(body)
    return tr


def run(tr: GeminiTranslator, raw: bytes, reads: list[bytes] | None = None) -> bytes:
    stream = tr.stream()
    out = b"".join(stream.feed(p) for p in (reads if reads is not None else [raw])) + stream.close()
    assert stream.done
    return out


def consume_anthropic(body: bytes) -> Message:
    with ant(body).messages.stream(model="m", max_tokens=10, messages=MESSAGES) as stream:
        return stream.get_final_message()


# -- non-stream --------------------------------------------------------------------------------


def test_openai_text_response_validates_and_counts_usage() -> None:
    tr = openai_tr()
    completion = ChatCompletion.model_validate_json(tr.response(read("gemini/response_text.json")))
    assert completion.choices[0].message.content.startswith("Paris is the capital")  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens == 2070 and usage.completion_tokens == 19 + 36
    assert usage.total_tokens == 2125
    assert usage.prompt_tokens_details.cached_tokens == 2048  # type: ignore[union-attr]
    assert usage.completion_tokens_details.reasoning_tokens == 36  # type: ignore[union-attr]
    assert tr.usage == {"input_tokens": 2070, "output_tokens": 55, "cache_read_tokens": 2048, "cache_write_tokens": 0}


def test_openai_parallel_tool_calls_carry_minted_ids_and_the_signature() -> None:
    tr = openai_tr()
    completion = oai(tr.response(read("gemini/response_tool_call.json")), content_type="application/json")
    result = completion.chat.completions.create(model="m", messages=MESSAGES)
    calls = result.choices[0].message.tool_calls or []
    assert result.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"location": "Paris, France"}  # type: ignore[union-attr]
    assert split_call_id(calls[0].id)[1] == "Zml4dHVyZS10aG91Z2h0LXNpZ25hdHVyZTpnZW1pbmk6Z2V0X3dlYXRoZXI6MDE="
    assert split_call_id(calls[1].id)[1] is None
    # Deterministic: the same response gives the same ids.
    again = json.loads(openai_tr().response(read("gemini/response_tool_call.json")))
    assert [c["id"] for c in again["choices"][0]["message"]["tool_calls"]] == [c.id for c in calls]


def test_anthropic_responses_validate() -> None:
    message = Message.model_validate_json(anthropic_tr().response(read("gemini/response_tool_call.json")))
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["tool_use", "tool_use"]
    assert message.usage.input_tokens == 112 and message.usage.output_tokens == 89
    text = Message.model_validate_json(anthropic_tr().response(read("gemini/response_text.json")))
    assert text.usage.input_tokens == 22 and text.usage.cache_read_input_tokens == 2048
    blocked = Message.model_validate_json(anthropic_tr().response(read("gemini/response_prompt_blocked.json")))
    assert blocked.stop_reason == "refusal" and blocked.content == []
    completion = ChatCompletion.model_validate_json(openai_tr().response(read("gemini/response_prompt_blocked.json")))
    assert completion.choices[0].finish_reason == "content_filter"


def _response(parts: list[dict[str, Any]], finish: str) -> bytes:
    body = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}]}
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("finish", "openai_reason", "anthropic_reason"),
    [
        ("MAX_TOKENS", "length", "max_tokens"),
        ("SAFETY", "content_filter", "refusal"),
        ("RECITATION", "content_filter", "refusal"),
        ("OTHER", "stop", "end_turn"),
        ("SOMETHING_NEW", "stop", "end_turn"),
        ("MALFORMED_FUNCTION_CALL", "stop", "end_turn"),
    ],
)
def test_finish_reasons(finish: str, openai_reason: str, anthropic_reason: str) -> None:
    body = _response([{"text": "partial"}], finish)
    assert json.loads(openai_tr().response(body))["choices"][0]["finish_reason"] == openai_reason
    assert json.loads(anthropic_tr().response(body))["stop_reason"] == anthropic_reason


def test_thoughts_become_reasoning() -> None:
    body = _response([{"text": "hmm", "thought": True}, {"text": "answer"}], "STOP")
    message = json.loads(openai_tr().response(body))["choices"][0]["message"]
    assert message["reasoning_content"] == "hmm" and message["content"] == "answer"
    content = Message.model_validate_json(anthropic_tr().response(body)).content
    assert [b.type for b in content] == ["thinking", "text"]
    assert [b.type for b in Message.model_validate_json(anthropic_tr(thinking=False).response(body)).content] == [
        "text"
    ]


def test_malformed_answer_without_content_is_an_upstream_error() -> None:
    from asgi_llmroute.formats import UpstreamProtocolError

    with pytest.raises(UpstreamProtocolError, match="MALFORMED_FUNCTION_CALL"):
        openai_tr().response(_response([], "MALFORMED_FUNCTION_CALL"))
    for bad in (b"[]", b"not json", b'{"candidates": 3}', b'{"candidates": [{"content": {"parts": [1]}}]}'):
        with pytest.raises(UpstreamProtocolError):
            anthropic_tr().response(bad)


# -- errors ------------------------------------------------------------------------------------


def test_rate_limit_error_for_both_clients_with_retry_delay() -> None:
    body = read("gemini/error_429_resource_exhausted.json")
    tr = openai_tr()
    with pytest.raises(openai.RateLimitError) as info:
        oai(tr.error(429, body), 429, "application/json").chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.code == "RESOURCE_EXHAUSTED"
    assert tr.retry_after == 37
    tr = anthropic_tr()
    with pytest.raises(anthropic.RateLimitError) as ainfo:
        ant(tr.error(429, body), 429, "application/json").messages.create(model="m", max_tokens=1, messages=MESSAGES)
    assert "exceeded your current quota" in ainfo.value.message
    assert json.loads(tr.error(429, body))["error"]["type"] == "rate_limit_error"


def test_invalid_key_says_the_gateway_credentials_were_rejected() -> None:
    out = json.loads(openai_tr().error(400, read("gemini/error_400_api_key_invalid.json")))
    assert out["error"]["message"] == "the upstream provider rejected the gateway's credentials"
    assert out["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "status", "type_"),
    [
        (b'[{"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}}]', 429, "rate_limit_error"),
        (b'{"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}', 503, "overloaded_error"),
        (b"<html>bad gateway</html>", 502, "api_error"),
        (b"", 500, "api_error"),
    ],
)
def test_error_shapes(body: bytes, status: int, type_: str) -> None:
    out = json.loads(anthropic_tr().error(status, body))
    assert out["type"] == "error" and out["error"]["type"] == type_
    assert "<html>" not in out["error"]["message"]


def test_retry_delay_fractions_round_up() -> None:
    tr = openai_tr()
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"retryDelay": "1.2s"}]}}
    tr.error(429, json.dumps(body).encode())
    assert tr.retry_after == 2


# -- streams -----------------------------------------------------------------------------------


def test_openai_stream_through_the_sdk() -> None:
    got = consume_openai(run(openai_tr(), read("gemini/stream_tool_call.sse")))
    assert got["finish"] == "tool_calls"
    assert got["reasoning"].startswith("**Planning the lookups**")
    assert got["content"] == "I'll check both."
    assert [c["name"] for c in got["calls"].values()] == ["get_weather", "get_time"]
    assert got["usage"].prompt_tokens == 112 and got["usage"].completion_tokens == 89
    for _name, data in sse_pairs(run(openai_tr(), read("gemini/stream_tool_call.sse"))):
        if data != "[DONE]":
            ChatCompletionChunk.model_validate(data)


def test_anthropic_stream_through_the_sdk() -> None:
    raw = run(anthropic_tr(), read("gemini/stream_tool_call.sse"))
    for name, data in sse_pairs(raw):
        assert EVENT.validate_python(data).type == name
    message = consume_anthropic(raw)
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.stop_reason == "tool_use" and message.usage.output_tokens == 89
    assert message.content[2].input == {"location": "Paris, France"}  # type: ignore[union-attr]
    text = consume_anthropic(run(anthropic_tr(), read("gemini/stream_text.sse")))
    assert text.content[0].text == "Paris is the capital of France. Its café culture ☕ dates back to the 17th century."  # type: ignore[union-attr]


@pytest.mark.parametrize("rel", STREAMS)
def test_cut_stream_ends_with_an_error_the_sdks_raise(rel: str) -> None:
    raw = read(rel)
    cut = raw[: raw.rindex(b"data:")]
    with pytest.raises(openai.APIError, match="without a finishReason"):
        consume_openai(run(openai_tr(), cut))
    with pytest.raises(anthropic.APIError, match="without a finishReason"):
        consume_anthropic(run(anthropic_tr(), cut))


def test_in_band_error_event() -> None:
    raw = read("gemini/stream_text.sse").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    raw += b'data: {"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}\r\n\r\n'
    with pytest.raises(openai.APIError, match="Internal error"):
        consume_openai(run(openai_tr(), raw))
    with pytest.raises(anthropic.APIError, match="Internal error"):
        consume_anthropic(run(anthropic_tr(), raw))


def test_stream_cut_short() -> None:
    stream = anthropic_tr().stream()
    out = stream.feed(read("gemini/stream_text.sse")[:400]) + stream.close()
    with pytest.raises(anthropic.APIError, match="ended"):
        consume_anthropic(out)


@pytest.mark.parametrize(
    "bad", [b"data: {not json\r\n\r\n", b"data: [1, 2]\r\n\r\n", b'data: {"candidates": 5}\r\n\r\n']
)
def test_malformed_events_end_the_stream_with_an_error(bad: bytes) -> None:
    for tr in (openai_tr(), anthropic_tr()):
        out = run(tr, read("gemini/stream_text.sse")[:300].rsplit(b"data:", 1)[0] + bad)
        last = sse_pairs(out)[-1]
        assert last[0] == "error" or "error" in last[1]


@pytest.mark.parametrize("rel", STREAMS)
def test_one_byte_reads_and_crlf_variants_match(rel: str) -> None:
    raw = read(rel)
    for make in (openai_tr, anthropic_tr):
        whole = run(make(), raw)
        assert run(make(), raw, [raw[i : i + 1] for i in range(len(raw))]) == whole
        assert run(make(), raw.replace(b"\r\n", b"\n")) == whole


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(STREAMS), st.sampled_from(["openai", "anthropic"]), st.data())
def test_random_splits(rel: str, client: str, data: st.DataObject) -> None:
    raw = read(rel)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=30)))
    reads = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    make = openai_tr if client == "openai" else anthropic_tr
    assert run(make(), raw, reads) == run(make(), raw)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["openai", "anthropic"]))
def test_garbage_never_raises_and_always_terminates(noise: bytes, client: str) -> None:
    make = openai_tr if client == "openai" else anthropic_tr
    out = run(make(), read("gemini/stream_text.sse")[:200] + noise)
    assert out  # something was said: events or an error event


def test_usage_of_relayed_gemini_bodies_and_streams() -> None:
    from asgi_llmroute.formats.usage_scan import StreamUsageScanner, usage_from_json

    expected = {"input_tokens": 2070, "output_tokens": 55, "cache_read_tokens": 2048, "cache_write_tokens": 0}
    assert usage_from_json("gemini", read("gemini/response_text.json")) == expected
    raw = read("gemini/stream_tool_call.sse")
    for size in (1, 7, 1000, len(raw)):
        scanner = StreamUsageScanner("gemini")
        for i in range(0, len(raw), size):
            scanner.feed(raw[i : i + size])
        scanner.close()
        assert scanner.usage == {
            "input_tokens": 112,
            "output_tokens": 89,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
        }
