"""Fuzzing: malformed upstream input never raises and always ends with a terminal client event."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_llmroute.formats import UpstreamProtocolError

from ._helpers import FIXTURES, anthropic_client, openai_client, read, sse_pairs
from ._invariants import check_anthropic_stream

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=15,
)
KEYS = [
    "type",
    "index",
    "delta",
    "content_block",
    "message",
    "usage",
    "error",
    "choices",
    "id",
    "model",
    "text",
    "partial_json",
    "tool_calls",
    "function",
    "arguments",
    "finish_reason",
    "content",
    "stop_reason",
]
TYPES = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
    "ping",
    "text",
    "tool_use",
    "thinking",
    "text_delta",
    "input_json_delta",
]
shaped = st.recursive(
    st.none() | st.integers(-2, 3) | st.sampled_from(TYPES) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=6),
    max_leaves=20,
)

STREAM_FIXTURES = sorted(p for p in FIXTURES.glob("*/stream_*.sse") if ".expected." not in p.name)
fixture_bytes = st.sampled_from([p.read_bytes() for p in STREAM_FIXTURES])


def frame(data: Any, event: str | None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (head + "data: " + json.dumps(data) + "\n\n").encode()


def mutate(raw: bytes, cut: int, junk: bytes) -> bytes:
    cut %= len(raw) + 1
    return raw[:cut] + junk + raw[cut:]


def run(tr_factory: Any, reads: list[bytes]) -> bytes:
    stream = tr_factory().stream()
    out: bytes = b"".join(stream.feed(r) for r in reads) + stream.close()
    assert stream.done
    return out


def assert_openai_terminal(out: bytes) -> None:
    pairs = sse_pairs(out)
    assert pairs
    last = pairs[-1][1]
    assert last == "[DONE]" or (isinstance(last, dict) and set(last) == {"error"}), last
    assert all(name is None for name, _ in pairs)


@SETTINGS
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_random_bytes_openai_client(reads: list[bytes]) -> None:
    assert_openai_terminal(run(openai_client, reads))


@SETTINGS
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_random_bytes_anthropic_client(reads: list[bytes]) -> None:
    check_anthropic_stream(run(anthropic_client, reads))


@SETTINGS
@given(st.lists(st.tuples(shaped, st.sampled_from([None, *TYPES])), max_size=10))
def test_wrong_shaped_events_openai_client(events: list[tuple[Any, str | None]]) -> None:
    assert_openai_terminal(run(openai_client, [frame(d, e) for d, e in events]))


@SETTINGS
@given(st.lists(st.tuples(shaped, st.none()), max_size=10))
def test_wrong_shaped_chunks_anthropic_client(events: list[tuple[Any, str | None]]) -> None:
    check_anthropic_stream(run(anthropic_client, [frame(d, e) for d, e in events]))


@SETTINGS
@given(fixture_bytes, st.integers(min_value=0), st.binary(max_size=40), st.booleans())
def test_corrupted_fixture_streams(raw: bytes, cut: int, junk: bytes, truncate: bool) -> None:
    data = raw[: cut % (len(raw) + 1)] if truncate else mutate(raw, cut, junk)
    openai_side = b"event: message_start" in raw
    if openai_side:
        assert_openai_terminal(run(openai_client, [data]))
    else:
        check_anthropic_stream(run(anthropic_client, [data]))


@SETTINGS
@given(json_values)
def test_response_raises_only_protocol_error(value: Any) -> None:
    body = json.dumps(value).encode()
    for factory in (openai_client, anthropic_client):
        try:
            json.loads(factory().response(body))
        except UpstreamProtocolError as exc:
            assert exc.message


@SETTINGS
@given(shaped)
def test_response_wrong_shapes(value: Any) -> None:
    body = json.dumps(value).encode()
    for factory in (openai_client, anthropic_client):
        try:
            json.loads(factory().response(body))
        except UpstreamProtocolError:
            pass


@SETTINGS
@given(st.binary(max_size=200))
def test_response_random_bytes(body: bytes) -> None:
    for factory in (openai_client, anthropic_client):
        try:
            factory().response(body)
        except UpstreamProtocolError:
            pass


@SETTINGS
@given(st.integers(100, 999), json_values | shaped, st.binary(max_size=100), st.booleans())
def test_error_never_raises(status: int, value: Any, raw: bytes, use_raw: bool) -> None:
    body = raw if use_raw else json.dumps(value).encode()
    out = json.loads(openai_client().error(status, body))
    assert isinstance(out["error"]["message"], str) and isinstance(out["error"]["type"], str)
    out = json.loads(anthropic_client().error(status, body))
    assert out["type"] == "error" and isinstance(out["error"]["message"], str)


def test_error_non_json_bodies() -> None:
    html = b"<html><body>502 Bad Gateway</body></html>"
    out = json.loads(openai_client().error(502, html))
    assert out["error"] == {"message": "upstream returned HTTP 502", "type": "api_error", "param": None, "code": None}
    out = json.loads(anthropic_client().error(413, b""))
    assert out == {"type": "error", "error": {"type": "request_too_large", "message": "upstream returned HTTP 413"}}
    out = json.loads(anthropic_client().error(503, b"upstream connect error"))
    assert out["error"] == {"type": "api_error", "message": "upstream connect error"}


def test_deeply_nested_json_does_not_escape() -> None:
    nested = b"[" * 100000 + b"]" * 100000
    stream = openai_client().stream()
    out = stream.feed(b"data: " + nested + b"\n\n") + stream.close()
    assert_openai_terminal(out)
    try:
        openai_client().response(nested)
    except UpstreamProtocolError:
        pass
    json.loads(anthropic_client().error(500, nested))


def test_fixture_sanity() -> None:
    assert read("anthropic/stream_text.sse")
