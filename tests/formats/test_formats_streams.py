"""Stream translation edge cases, both directions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_llmroute.formats import TranslationOptions

from ._helpers import CLOCK, anthropic_client, openai_client, read, sse_pairs, translate_stream
from ._invariants import check_anthropic_stream


def ant_event(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


def oai_chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    chunk: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt"}
    if delta is not None or finish is not None:
        chunk["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    chunk.update(extra)
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"
START = ant_event(
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        },
    }
)
STOP = ant_event({"type": "message_stop"})


def delta_event(index: int, delta: dict[str, Any]) -> bytes:
    return ant_event({"type": "content_block_delta", "index": index, "delta": delta})


def block(index: int, content_block: dict[str, Any]) -> bytes:
    return ant_event({"type": "content_block_start", "index": index, "content_block": content_block})


def block_stop(index: int) -> bytes:
    return ant_event({"type": "content_block_stop", "index": index})


def message_delta(reason: str | None, usage: dict[str, Any] | None = None) -> bytes:
    return ant_event(
        {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": usage or {"output_tokens": 5},
        }
    )


def openai_out(raw: bytes, **kwargs: Any) -> list[Any]:
    return [data for _, data in sse_pairs(translate_stream(openai_client(**kwargs), raw))]


def deltas(chunks: list[Any]) -> list[Any]:
    return [c["choices"][0]["delta"] for c in chunks if isinstance(c, dict) and c.get("choices")]


# -- Anthropic upstream -> OpenAI client ------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        ("something_new", "stop"),
    ],
)
def test_stop_reason_mapping_in_stream(reason: str, finish: str) -> None:
    chunks = openai_out(START + message_delta(reason) + STOP)
    assert chunks[-2]["choices"][0]["finish_reason"] == finish
    assert chunks[-1] == "[DONE]"


def test_missing_stop_reason_finishes_with_stop_at_message_stop() -> None:
    chunks = openai_out(START + message_delta(None) + STOP)
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None, "stop"]


def test_unknown_events_blocks_and_deltas_are_ignored() -> None:
    raw = (
        START
        + ant_event({"type": "brand_new_event", "foo": 1})
        + block(0, {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {"q": "x"}})
        + delta_event(0, {"type": "input_json_delta", "partial_json": '{"q"'})
        + block_stop(0)
        + block(1, {"type": "web_search_tool_result", "tool_use_id": "srv_1", "content": []})
        + block_stop(1)
        + block(2, {"type": "text", "text": ""})
        + delta_event(2, {"type": "citations_delta", "citation": {"type": "x"}})
        + delta_event(2, {"type": "text_delta", "text": "ok"})
        + delta_event(2, {"type": "future_delta", "x": 1})
        + block_stop(2)
        + message_delta("end_turn")
        + STOP
    )
    assert deltas(openai_out(raw)) == [{"role": "assistant", "content": ""}, {"content": "ok"}, {}]


def test_tool_names_are_restored_and_indices_count_tools_only() -> None:
    tr = openai_client(
        include_usage=False,
        tools=[{"type": "function", "function": {"name": "my.tool", "parameters": {"type": "object"}}}],
    )
    upstream_name = tr.request(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "my.tool"}}],
        }
    )["tools"][0]["name"]
    assert upstream_name == "my_tool"
    raw = (
        START
        + block(0, {"type": "thinking", "thinking": "", "signature": ""})
        + delta_event(0, {"type": "thinking_delta", "thinking": "hmm"})
        + block_stop(0)
        + block(1, {"type": "tool_use", "id": "toolu_1", "name": "my_tool", "input": {}})
        + delta_event(1, {"type": "input_json_delta", "partial_json": '{"a":1}'})
        + block_stop(1)
        + message_delta("tool_use")
        + STOP
    )
    out = [d for _, d in sse_pairs(translate_stream(tr, raw))]
    call = deltas(out)[2]["tool_calls"][0]
    assert call == {"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "my.tool", "arguments": ""}}


def test_reasoning_content_can_be_disabled() -> None:
    options = TranslationOptions(reasoning_content=False, clock=lambda: CLOCK)
    chunks = openai_out(read("anthropic/stream_thinking_text.sse"), options=options)
    assert all("reasoning_content" not in d for d in deltas(chunks))


def test_thinking_blocks_extension_carries_signature() -> None:
    options = TranslationOptions(thinking_blocks=True, clock=lambda: CLOCK)
    chunks = openai_out(read("anthropic/stream_thinking_text.sse"), options=options)
    blocks = [d["thinking_blocks"] for d in deltas(chunks) if "thinking_blocks" in d]
    assert blocks == [
        [
            {
                "type": "thinking",
                "thinking": "The user wants 27 * 453. 27 * 453 = 27 * 400 + 27 * 53 = 10800 + 1431 = 12231.",
                "signature": "c2lnbmF0dXJlLWZpeHR1cmUtdGhpbmtpbmctMDE=",
            }
        ]
    ]


def test_usage_is_merged_not_added() -> None:
    raw = START + message_delta("end_turn", {"output_tokens": 3}) + message_delta(None, {"output_tokens": 9}) + STOP
    chunks = openai_out(raw, include_usage=True)
    assert chunks[-2]["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 9,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert all(c["usage"] is None for c in chunks[:-2])


def test_stream_usage_property() -> None:
    stream = openai_client().stream()
    stream.feed(read("anthropic/stream_parallel_tool_use.sse"))
    assert stream.usage == {
        "input_tokens": 1413,
        "output_tokens": 97,
        "cache_read_tokens": 0,
        "cache_write_tokens": 1024,
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"data: not json\n\n",
        START + b"event: content_block_delta\ndata: {broken\n\n",
        START + ant_event({"type": "content_block_delta", "index": 0, "delta": "nope"}),
        block(0, {"type": "text", "text": ""}),  # before message_start
        START + b"event: message_delta\ndata: [1, 2]\n\n",
        START + ant_event({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use"}}),
    ],
)
def test_malformed_anthropic_stream_ends_with_error_chunk(raw: bytes) -> None:
    chunks = openai_out(raw)
    assert "error" in chunks[-1] and "[DONE]" not in chunks
    assert set(chunks[-1]["error"]) == {"message", "type", "param", "code"}


def test_event_error_without_details() -> None:
    chunks = openai_out(START + b'event: error\ndata: {"type":"error"}\n\n')
    assert chunks[-1] == {
        "error": {"message": "upstream reported an error", "type": "api_error", "param": None, "code": None}
    }


def test_feed_after_done_returns_nothing() -> None:
    stream = openai_client().stream()
    stream.feed(read("anthropic/stream_text.sse"))
    assert stream.done
    assert stream.feed(b"data: more\n\n") == b"" and stream.close() == b""


def test_oversized_event_becomes_error() -> None:
    options = TranslationOptions(max_event_bytes=1000, clock=lambda: CLOCK)
    stream = openai_client(options=options).stream()
    out = stream.feed(START) + stream.feed(b"event: content_block_delta\ndata: " + b"x" * 2000)
    assert stream.done
    assert json.loads(out.split(b"data: ")[-1])["error"]["type"] == "api_error"


def test_upstream_done_sentinel_is_ignored() -> None:
    chunks = openai_out(
        read("anthropic/stream_text.sse").replace(b"event: message_stop", b"data: [DONE]\n\nevent: message_stop")
    )
    assert chunks[-1] == "[DONE]" and chunks.count("[DONE]") == 1


# -- OpenAI upstream -> Anthropic client ------------------------------------------------------


def anthropic_out(raw: bytes, **kwargs: Any) -> list[tuple[str | None, Any]]:
    return check_anthropic_stream(translate_stream(anthropic_client(**kwargs), raw))


def test_first_chunk_is_a_tool_call_no_empty_text_block() -> None:
    raw = (
        oai_chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
                ],
            }
        )
        + oai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]})
        + oai_chunk({}, "tool_calls")
        + DONE
    )
    names = [n for n, _ in anthropic_out(raw)]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_reused_index_with_new_id_starts_a_new_call() -> None:
    raw = (
        oai_chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": '{"x":1}'}}]})
        + oai_chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"arguments": ""}}]})  # repeat id
        + oai_chunk({"tool_calls": [{"index": 0, "id": "call_b", "function": {"name": "g", "arguments": '{"y":2}'}}]})
        + oai_chunk({}, "stop")
        + DONE
    )
    pairs = anthropic_out(raw)
    starts = [d["content_block"] for n, d in pairs if n == "content_block_start"]
    assert [(s["id"], s["name"]) for s in starts] == [("call_a", "f"), ("call_b", "g")]
    assert pairs[-2][1]["delta"]["stop_reason"] == "tool_use"  # tool calls emitted, upstream said stop


def test_interleaved_fragments_fail_cleanly_or_buffer() -> None:
    raw = (
        oai_chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": '{"x":'}}]})
        + oai_chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "g", "arguments": '{"y":'}}]})
        + oai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]})
        + oai_chunk({"tool_calls": [{"index": 1, "function": {"arguments": "2}"}}]})
        + oai_chunk({}, "tool_calls")
        + DONE
    )
    pairs = anthropic_out(raw)
    assert pairs[-1] == (
        "error",
        {"type": "error", "error": {"type": "api_error", "message": "upstream interleaved tool call fragments"}},
    )
    options = TranslationOptions(buffer_tool_calls=True, clock=lambda: CLOCK)
    pairs = anthropic_out(raw, options=options)
    partials = [d["delta"]["partial_json"] for n, d in pairs if n == "content_block_delta"]
    assert partials == ['{"x":1}', '{"y":2}']


def test_glm_style_bundled_fragments_and_content_on_finish_chunk() -> None:
    raw = (
        oai_chunk({"content": "Hi"})
        + oai_chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a":'}}]})
        + oai_chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "1"}}]})
        + oai_chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"arguments": "}"}}]}, "tool_calls")
        + DONE
    )
    pairs = anthropic_out(raw)
    partials = "".join(d["delta"]["partial_json"] for n, d in pairs if n == "content_block_delta" and d["index"] == 1)
    assert json.loads(partials) == {"a": 1}


def test_missing_ids_indices_and_sanitised_ids() -> None:
    raw = (
        oai_chunk({"tool_calls": [{"id": "functions.Bash:0", "function": {"name": "Bash", "arguments": "{}"}}]})
        + oai_chunk({"tool_calls": [{"function": {"name": "Other", "arguments": "{}"}}]})
        + oai_chunk({}, "tool_calls")
        + DONE
    )
    starts = [d["content_block"] for n, d in anthropic_out(raw) if n == "content_block_start"]
    assert starts[0]["id"] == "functions_Bash_0"
    assert len(starts) == 1  # an id-less fragment without index continues the last call


def test_refusal_maps_to_refusal_stop_reason() -> None:
    raw = oai_chunk({"refusal": "I can't help with that."}) + oai_chunk({}, "stop") + DONE
    pairs = anthropic_out(raw)
    assert pairs[-2][1]["delta"]["stop_reason"] == "refusal"


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        ("eos", "end_turn"),
    ],
)
def test_finish_reason_mapping(finish: str, reason: str) -> None:
    pairs = anthropic_out(oai_chunk({"content": "x"}) + oai_chunk({}, finish) + DONE)
    assert pairs[-2][1]["delta"]["stop_reason"] == reason


def test_eof_after_finish_without_done_completes() -> None:
    pairs = anthropic_out(read("openai/stream_text.sse").replace(DONE, b""))
    assert pairs[-1] == ("message_stop", {"type": "message_stop"})


def test_eof_without_finish_is_an_error_and_block_closed() -> None:
    pairs = anthropic_out(oai_chunk({"content": "partial"}))
    assert [n for n, _ in pairs] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "error",
    ]


def test_done_without_chunks_and_empty_stream() -> None:
    assert [n for n, _ in anthropic_out(DONE)] == ["error"]
    assert [n for n, _ in anthropic_out(b"")] == ["error"]


@pytest.mark.parametrize(
    ("error", "type_"),
    [
        ({"message": "m", "type": "server_error", "code": None}, "api_error"),
        ({"message": "m", "type": "tokens", "code": "rate_limit_exceeded"}, "rate_limit_error"),
        ({"message": "m", "type": "insufficient_quota", "code": "insufficient_quota"}, "billing_error"),
        ({"message": "m", "code": 529}, "overloaded_error"),
        ({"message": "m", "code": "404"}, "not_found_error"),
        ({"message": "m", "type": "overloaded_error"}, "overloaded_error"),
    ],
)
def test_in_band_error_types(error: dict[str, Any], type_: str) -> None:
    raw = oai_chunk({"content": "x"}) + b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
    pairs = anthropic_out(raw)
    assert pairs[-1] == ("error", {"type": "error", "error": {"type": type_, "message": "m"}})


def test_usage_chunk_without_prompt_details_and_cache_write() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "total_tokens": 105,
        "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 30},
    }
    raw = oai_chunk({"content": "x"}) + oai_chunk({}, "stop") + oai_chunk(None, choices=[], usage=usage) + DONE
    pairs = anthropic_out(raw)
    assert pairs[-2][1]["usage"] == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 30,
        "cache_read_input_tokens": 60,
        "output_tokens": 5,
    }


def test_truncated_stream_anthropic() -> None:
    stream = anthropic_client().stream()
    out = stream.feed(oai_chunk({"content": "x"})) + stream.close()
    pairs = sse_pairs(out)
    assert pairs[-1] == (
        "error",
        {"type": "error", "error": {"type": "api_error", "message": "upstream stream ended without a finish_reason"}},
    )
    assert stream.done


def test_reasoning_then_text_then_reasoning_opens_new_blocks() -> None:
    raw = (
        oai_chunk({"reasoning": "a"})
        + oai_chunk({"content": "b"})
        + oai_chunk({"reasoning_content": "c"})
        + oai_chunk({"content": "d"})
        + oai_chunk({}, "stop")
        + DONE
    )
    pairs = anthropic_out(raw, thinking=True)
    kinds = [d["content_block"]["type"] for n, d in pairs if n == "content_block_start"]
    assert kinds == ["thinking", "text", "thinking", "text"]


def test_a_lone_surrogate_in_upstream_text_is_relayed_as_its_json_escape() -> None:
    # JSON may escape half of a surrogate pair ("\ud800"); UTF-8 cannot carry it raw. The translated
    # event keeps it as the same escape instead of failing to encode (which escaped as an exception).
    from asgi_llmroute.formats import new_translator

    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a\ud800b"}}
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    tr = new_translator("openai", "anthropic")
    tr.request({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    out = tr.stream().feed(START + ant_event(block) + ant_event(delta))
    chunks = [data for _, data in sse_pairs(out)]
    assert chunks[-1]["choices"][0]["delta"]["content"] == "a\ud800b"
    assert b'"a\\ud800b"' in out

    gemini = new_translator("anthropic", "gemini")
    gemini.request({"model": "g", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "stream": True})
    event = b'data: {"candidates": [{"content": {"parts": [{"text": "\\ud800"}]}, "finishReason": "STOP"}]}\n\n'
    stream = gemini.stream()
    out = stream.feed(event) + stream.close()
    assert stream.done and b'"text_delta","text":"\\ud800"' in out and b"message_stop" in out
    body = gemini.response(event[6:-2])
    assert json.loads(body)["content"][0]["text"] == "\ud800"
