"""Chat Completions stream -> Responses events: the state machine, chunk splits, failures."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._models import construct_type_unchecked
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response
from openai.types.responses import ResponseStreamEvent as RawEvent

from asgi_llmroute.formats import TranslationOptions, new_translator

from ._helpers import CLOCK, EVENT, OPTIONS, TERMINAL, events, read, run, split, translator

OPENAI_STREAMS = ["stream_text", "stream_text_usage", "stream_parallel_tool_calls", "stream_text_then_tool_call"]
ANTHROPIC_STREAMS = [
    "stream_text",
    "stream_text_tool_use",
    "stream_parallel_tool_use",
    "stream_thinking_text",
    "stream_tool_use_no_args",
    "stream_ping_crlf",
]


def sdk_final(evs: list[dict[str, Any]]) -> Any:
    """Feed the events through the official SDK's stream accumulator; return its final response."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for data in evs:
        EVENT.validate_python(data)
        state.handle_event(construct_type_unchecked(type_=RawEvent, value=data))  # type: ignore[arg-type]
    return state._completed_response


def chat_text(chat: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Text and (name, arguments) of each tool call of a chat stream, straight from its chunks."""
    text = ""
    calls: dict[int, list[str]] = {}
    for line in chat.decode().splitlines():
        if not line.startswith("data: {"):
            continue
        obj = json.loads(line[6:])
        for choice in obj.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], ["", ""])
                entry[0] += call.get("function", {}).get("name") or ""
                entry[1] += call.get("function", {}).get("arguments") or ""
    return text, [(n, a) for n, a in calls.values()]


@pytest.mark.parametrize("name", OPENAI_STREAMS)
def test_openai_fixture_streams(name: str) -> None:
    chat = read(f"openai/{name}.sse")
    whole = run([chat])
    evs = events(whole)
    assert [e["type"] for e in evs[:2]] == ["response.created", "response.in_progress"]
    assert evs[-1]["type"] == "response.completed"
    assert sum(e["type"] in TERMINAL for e in evs) == 1
    final = sdk_final(evs)
    assert final is not None and final.status == "completed"
    text, calls = chat_text(chat)
    assert final.output_text == text
    assert [(i.name, i.arguments) for i in final.output if i.type == "function_call"] == calls
    for seed in range(5):  # chunk boundaries never change the output
        assert run(split(chat, seed)) == whole
    assert run([chat[i : i + 1] for i in range(len(chat))]) == whole


def test_event_sequence_for_text_then_tool_call() -> None:
    evs = events(run([read("openai/stream_text_then_tool_call.sse")]))
    assert [e["type"].removeprefix("response.") for e in evs] == [
        "created",
        "in_progress",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.done",
        "output_item.done",
        "completed",
    ]
    call = evs[-2]["item"]
    assert call["type"] == "function_call" and call["call_id"] == "chatcmpl-tool-fixture01"
    assert evs[-1]["response"]["usage"]["input_tokens"] == 301
    assert evs[0]["response"]["id"] == evs[-1]["response"]["id"] == "resp_fixture-compat-01"


@pytest.mark.parametrize("name", ANTHROPIC_STREAMS)
def test_anthropic_streams_through_both_translations(name: str) -> None:
    """Anthropic -> chat (the existing translator) -> Responses, as the gateway composes them."""
    inner = new_translator("openai", "anthropic", OPTIONS)
    outer = translator()
    inner.request(outer.request({"model": "m", "input": "hi", "stream": True}))
    chat_stream = inner.stream()
    chat = b"".join(chat_stream.feed(c) for c in split(read(f"anthropic/{name}.sse"), 7)) + chat_stream.close()
    evs = events(run(split(chat, 3), outer))
    final = sdk_final(evs)
    assert final is not None and final.status == "completed"
    assert final.usage is not None and final.usage.input_tokens > 0
    if name == "stream_thinking_text":
        assert final.output[0].type == "reasoning" and final.output[0].content[0].text
        assert any(e["type"] == "response.reasoning_text.delta" for e in evs)


def test_length_finish_is_incomplete() -> None:
    chat = (
        b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Par"},"finish_reason":null}]}\n\n'
        b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\ndata: [DONE]\n\n'
    )
    evs = events(run([chat]))
    assert evs[-1]["type"] == "response.incomplete"
    assert evs[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert evs[-1]["response"]["output"][0]["status"] == "incomplete"


def test_refusal_and_reasoning_deltas() -> None:
    chat = (
        b'data: {"id":"c1","choices":[{"index":0,"delta":{"reasoning_content":"Hmm"}}]}\n\n'
        b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"A"}}]}\n\n'
        b'data: {"id":"c1","choices":[{"index":0,"delta":{"refusal":"No"}}]}\n\n'
        b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    )
    evs = events(run([chat]))  # no [DONE]: EOF after a finish_reason completes the response
    final = sdk_final(evs)
    assert final.output[0].type == "reasoning"
    assert [c.type for c in final.output[1].content] == ["output_text", "refusal"]
    assert {"response.refusal.delta", "response.refusal.done", "response.reasoning_text.done"} <= {
        e["type"] for e in evs
    }


def test_mid_stream_error_is_response_failed() -> None:
    evs = events(run(split(read("openai/stream_error_midstream.sse"), 1)))
    assert evs[-1]["type"] == "response.failed"
    response = evs[-1]["response"]
    assert response["status"] == "failed"
    assert response["error"]["code"] == "server_error" and "error while processing" in response["error"]["message"]
    assert response["output"][0]["content"][0]["text"] == "The capital of France is"
    Response.model_validate(response)


def test_rate_limit_error_code() -> None:
    chat = b'data: {"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}\n\n'
    evs = events(run([chat]))
    assert [e["type"] for e in evs] == ["response.created", "response.in_progress", "response.failed"]
    assert evs[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}


@pytest.mark.parametrize(
    ("chat", "message"),
    [
        (b"", "before any chunk"),
        (b"data: [DONE]\n\n", "before any chunk"),
        (b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n', "without a finish_reason"),
        (b"data: {nope\n\n", "not valid JSON"),
        (b'data: {"id":"c","choices":[{"delta":"x"}]}\n\n', "delta"),
    ],
)
def test_broken_streams_end_with_response_failed(chat: bytes, message: str) -> None:
    evs = events(run([chat]))
    assert evs[0]["type"] == "response.created" and evs[-1]["type"] == "response.failed"
    assert message in evs[-1]["response"]["error"]["message"] or message == "before any chunk"


def test_truncated_stream_and_no_output_after_terminal() -> None:
    stream = translator().stream()
    head = stream.feed(b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n')
    evs = events(head + stream.close())
    assert evs[-1]["type"] == "response.failed"
    assert evs[-1]["response"]["error"] == {
        "code": "server_error",
        "message": "upstream stream ended without a finish_reason",
    }
    assert stream.done and stream.feed(b"data: {}\n\n") == b"" and stream.close() == b""


def test_output_is_bounded() -> None:
    options = TranslationOptions(clock=lambda: CLOCK, max_event_bytes=1000)
    chunk = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"' + b"x" * 400 + b'"}}]}\n\n'
    evs = events(run([chunk] * 5, translator(options)))
    assert evs[-1]["type"] == "response.failed" and "larger" in evs[-1]["response"]["error"]["message"]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=2**32))
def test_garbage_never_raises_and_always_terminates(garbage: bytes, seed: int) -> None:
    for body in (garbage, read("openai/stream_text_then_tool_call.sse")[: seed % 1800] + garbage):
        out = run(split(body, seed, 10) if len(body) > 1 else [body])
        evs = events(out)
        assert sum(e["type"] in TERMINAL for e in evs) == 1 and evs[-1]["type"] in TERMINAL
