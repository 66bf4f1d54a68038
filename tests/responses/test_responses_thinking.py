"""Anthropic thinking carried through the Responses API statelessly (pure core).

Responses -> chat -> Anthropic: the gateway mints ``reasoning`` items whose ``encrypted_content`` holds
the signed thinking (and redacted thinking) blocks; given back as input, they become the blocks at the
start of the next assistant turn, so that a thinking + tool-use conversation keeps thinking on.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import pytest
from openai.types.responses import Response

from asgi_llmroute.formats import ResponsesTranslator, TranslationError, TranslationOptions, new_translator
from asgi_llmroute.formats.bedrock import BedrockTranslator
from asgi_llmroute.formats.thinking_carry import PREFIX, decode_thinking, encode_thinking

from ._helpers import CLOCK, EVENT, events, split

OPTIONS = TranslationOptions(clock=lambda: CLOCK, thinking_style="adaptive")
STREAM_OPTIONS = TranslationOptions(clock=lambda: CLOCK, thinking_style="adaptive", thinking_blocks=True)
TOOLS: list[Any] = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}]
SIGNATURE = "EqQBCkYIBRgCKkDn" + "A" * 300 + "=="
BLOCKS: list[dict[str, Any]] = [
    {"type": "thinking", "thinking": "The user wants the weather. 天気 — call the tool.", "signature": SIGNATURE},
    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw" + "x" * 64},
    {"type": "thinking", "thinking": "Second block.", "signature": "sig-two"},
]
TOOL_USE: dict[str, Any] = {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
MESSAGE: dict[str, Any] = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [*BLOCKS, TOOL_USE],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 5},
}


def _sse(obj: dict[str, Any]) -> str:
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n"


def _anthropic_stream(message: dict[str, Any]) -> bytes:
    start = {**message, "content": [], "stop_reason": None}
    out = [_sse({"type": "message_start", "message": start})]
    for i, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "thinking":
            out.append(
                _sse(
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {**block, "thinking": "", "signature": ""},
                    }
                )
            )
            text = block["thinking"]
            for piece in (text[:7], text[7:]):
                out.append(
                    _sse(
                        {
                            "type": "content_block_delta",
                            "index": i,
                            "delta": {"type": "thinking_delta", "thinking": piece},
                        }
                    )
                )
            out.append(
                _sse(
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "signature_delta", "signature": block["signature"]},
                    }
                )
            )
        elif kind == "redacted_thinking":
            out.append(_sse({"type": "content_block_start", "index": i, "content_block": block}))
        else:
            out.append(_sse({"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}}))
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            out.append(_sse({"type": "content_block_delta", "index": i, "delta": delta}))
        out.append(_sse({"type": "content_block_stop", "index": i}))
    out.append(
        _sse({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"]}, "usage": {"output_tokens": 5}})
    )
    out.append(_sse({"type": "message_stop"}))
    return "".join(out).encode()


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _first_request(stream: bool) -> dict[str, Any]:
    return {"model": "claude", "input": "Weather?", "tools": TOOLS, "reasoning": {"effort": "low"}, "stream": stream}


def _through_gateway(
    body: dict[str, Any], options: TranslationOptions = OPTIONS
) -> tuple[ResponsesTranslator, Any, dict[str, Any]]:
    """Responses body -> (Responses translator, chat->Anthropic translator, Anthropic request)."""
    responses = ResponsesTranslator(options)
    chat = responses.request(body)
    anthropic = new_translator("openai", "anthropic", options)
    return responses, anthropic, anthropic.request(chat)


def _second_request(output: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
    call = next(item for item in output if item["type"] == "function_call")
    result = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    return {**_first_request(stream), "input": [_user("Weather?"), *output, result]}


def _assert_thinking_kept(upstream: dict[str, Any]) -> None:
    assert upstream["thinking"] == {"type": "adaptive"}
    assistant = upstream["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"] == [*BLOCKS, TOOL_USE]


def test_json_round_trip_keeps_thinking_on() -> None:
    responses, anthropic, upstream = _through_gateway(_first_request(False))
    assert upstream["thinking"] == {"type": "adaptive"}
    body = responses.response(anthropic.response(json.dumps(MESSAGE).encode()))
    response = Response.model_validate_json(body)  # the SDK's own model accepts it
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_")
    assert reasoning.encrypted_content is not None and reasoning.encrypted_content.startswith(PREFIX)
    assert reasoning.content is not None and reasoning.content[0].text == BLOCKS[0]["thinking"] + "Second block."
    _, _, second = _through_gateway(_second_request(json.loads(body)["output"], False))
    _assert_thinking_kept(second)


@pytest.mark.parametrize("seed", range(3))
def test_stream_round_trip_keeps_thinking_on(seed: int) -> None:
    responses, anthropic, _ = _through_gateway(_first_request(True), STREAM_OPTIONS)
    upstream_stream, client_stream = anthropic.stream(), responses.stream()
    raw = b""
    for piece in split(_anthropic_stream(MESSAGE), seed=seed):
        raw += client_stream.feed(upstream_stream.feed(piece))
    raw += client_stream.feed(upstream_stream.close()) + client_stream.close()
    parsed = events(raw)
    for event in parsed:
        EVENT.validate_python(event)
    done = [e["item"] for e in parsed if e["type"] == "response.output_item.done"]
    assert [item["type"] for item in done] == ["reasoning", "function_call"]
    assert decode_thinking(done[0]["encrypted_content"], "x") == BLOCKS
    added = next(e["item"] for e in parsed if e["type"] == "response.output_item.added")
    assert "encrypted_content" not in added  # known once the item is done
    final = parsed[-1]["response"]
    assert final["output"][0]["encrypted_content"] == done[0]["encrypted_content"]
    _, _, second = _through_gateway(_second_request(final["output"], True))
    _assert_thinking_kept(second)


def test_stream_of_redacted_thinking_only_has_no_text_part() -> None:
    message = {**MESSAGE, "content": [BLOCKS[1], TOOL_USE]}
    responses, anthropic, _ = _through_gateway(_first_request(True), STREAM_OPTIONS)
    upstream_stream, client_stream = anthropic.stream(), responses.stream()
    raw = client_stream.feed(upstream_stream.feed(_anthropic_stream(message))) + client_stream.close()
    parsed = events(raw)
    types = [e["type"] for e in parsed]
    assert "response.reasoning_text.done" not in types and "response.content_part.added" not in types
    reasoning = next(e["item"] for e in parsed if e["type"] == "response.output_item.done")
    assert reasoning["content"] == [] and decode_thinking(reasoning["encrypted_content"], "x") == [BLOCKS[1]]


def test_without_the_encrypted_content_thinking_is_turned_off() -> None:
    """What happened before: the reasoning item (or a reference to it) carries nothing to continue with."""
    responses, anthropic, _ = _through_gateway(_first_request(False))
    output = json.loads(responses.response(anthropic.response(json.dumps(MESSAGE).encode())))["output"]
    reference = {"type": "item_reference", "id": output[0]["id"]}
    for first in ({k: v for k, v in output[0].items() if k != "encrypted_content"}, reference):
        responses, _, second = _through_gateway(_second_request([first, *output[1:]], False))
        assert "thinking" not in second
        assert all(b["type"] == "tool_use" for b in second["messages"][1]["content"])
    assert any("store=false" in w for w in responses.info.warnings)  # the warning says what to do


def test_foreign_and_future_encrypted_content_is_dropped_with_a_warning() -> None:
    responses = ResponsesTranslator(OPTIONS)
    items = [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAABo-openai-fernet"},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "llmr9:future"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
    ]
    chat = responses.request({"model": "m", "input": [_user("hi"), *items]})
    assert "thinking_blocks" not in chat["messages"][1]
    warnings = responses.info.warnings
    assert any("another provider" in w for w in warnings) and any("newer version" in w for w in warnings)


def test_openai_chat_upstreams_get_no_thinking_blocks() -> None:
    encrypted = encode_thinking(BLOCKS)
    items = [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": encrypted},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
    ]
    responses = ResponsesTranslator(OPTIONS)
    chat = responses.request({"model": "m", "input": [_user("hi"), *items]}, thinking=False)
    assert "thinking_blocks" not in chat["messages"][1]
    assert any("cannot take it back" in w for w in responses.info.warnings)


def test_thinking_goes_to_the_assistant_turn_right_after_it() -> None:
    encrypted = encode_thinking(BLOCKS[:1])
    reasoning: dict[str, Any] = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": encrypted}
    call = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"}
    text = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]}
    responses = ResponsesTranslator(OPTIONS)
    # Interleaved: the turn's text, then its reasoning, then its call: one assistant turn.
    chat = responses.request({"model": "m", "input": [_user("hi"), text, reasoning, call]})
    assert chat["messages"][1]["thinking_blocks"] == BLOCKS[:1] and chat["messages"][1]["tool_calls"]
    # A reasoning item followed by a user message belongs to no assistant turn: dropped.
    chat = responses.request({"model": "m", "input": [_user("hi"), reasoning, _user("again"), text]})
    assert all("thinking_blocks" not in m for m in chat["messages"])


def test_encoding_is_compact_versioned_and_checked() -> None:
    encoded = encode_thinking(BLOCKS)
    assert encoded is not None and encoded.startswith("llmr1:")
    assert all(c.isalnum() or c in "-_:" for c in encoded)  # URL-safe, unpadded
    assert len(encoded) < len(json.dumps(BLOCKS))
    assert decode_thinking(encoded, "p") == BLOCKS
    # Nothing that could go back: unsigned thinking (Gemini thoughts, chat reasoning_content).
    assert encode_thinking([{"type": "thinking", "thinking": "x", "signature": ""}]) is None
    assert decode_thinking("gAAAAAB-openai", "p") is None
    odd: list[dict[str, Any]] = [{"type": "redacted_thinking", "data": ""}, {"type": "text", "text": "x"}]
    assert encode_thinking([*odd, BLOCKS[1]]) == encode_thinking([BLOCKS[1]])
    for damaged in ("llmr1:!!!", "llmr1:" + encoded[8:], "llmr1:"):
        with pytest.raises(TranslationError) as exc:
            decode_thinking(damaged, "input[1].encrypted_content")
        assert exc.value.param == "input[1].encrypted_content"
    for wrong in (b'[["x", 1]]', b'{"t": 1}'):
        wrong_shape = zlib.compressobj(6, zlib.DEFLATED, -15)
        raw = wrong_shape.compress(wrong) + wrong_shape.flush()
        with pytest.raises(TranslationError):
            decode_thinking(PREFIX + base64.urlsafe_b64encode(raw).decode(), "p")
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = bomb.compress(b"[" + b" " * (32 * 1024 * 1024) + b"]") + bomb.flush()
    with pytest.raises(TranslationError):
        decode_thinking(PREFIX + base64.urlsafe_b64encode(raw).decode(), "p")


def test_stream_ignores_thinking_blocks_that_are_not_objects() -> None:
    tr = ResponsesTranslator(OPTIONS)
    tr.request({"model": "m", "input": "hi", "stream": True})
    head = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":'
    chunks = [
        head + '{"reasoning_content":"hmm"},"finish_reason":null}]}',
        head + '{"thinking_blocks":["junk",' + json.dumps(BLOCKS[0]) + ']},"finish_reason":null}]}',
        head + '{"content":"ok"},"finish_reason":"stop"}]}',
    ]
    stream = tr.stream()
    raw = b"".join(stream.feed(f"data: {c}\n\n".encode()) for c in chunks) + stream.feed(b"data: [DONE]\n\n")
    final = events(raw + stream.close())[-1]["response"]
    assert decode_thinking(final["output"][0]["encrypted_content"], "x") == BLOCKS[:1]
    assert final["output"][1]["content"][0]["text"] == "ok"


def test_claude_on_bedrock_converse_round_trip() -> None:
    """Responses -> chat -> Bedrock Converse: the same blocks, as reasoningContent, first in the turn."""
    converse_answer = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "c2ln"}}},
                    {"reasoningContent": {"redactedContent": "cmVk"}},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    }
    responses = ResponsesTranslator(OPTIONS)
    bedrock = BedrockTranslator("openai", "converse", "anthropic.claude-sonnet-4-5", OPTIONS)
    bedrock.request(responses.request(_first_request(False)))
    output = json.loads(responses.response(bedrock.response(json.dumps(converse_answer).encode())))["output"]
    assert output[0]["encrypted_content"].startswith(PREFIX)
    responses = ResponsesTranslator(OPTIONS)
    bedrock = BedrockTranslator("openai", "converse", "anthropic.claude-sonnet-4-5", OPTIONS)
    second = bedrock.request(responses.request(_second_request(output, False)))
    assert second["additionalModelRequestFields"]["thinking"] == {"type": "adaptive"}
    assert second["messages"][1]["content"][:2] == [
        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "c2ln"}}},
        {"reasoningContent": {"redactedContent": "cmVk"}},
    ]
