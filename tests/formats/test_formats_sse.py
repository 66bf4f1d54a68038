"""SSE framing: the incremental parser and the emission helpers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llmroute.formats import SSEBufferOverflow, SSEEvent, SSEParser, encode_sse, keepalive

from ._helpers import read


def parse(*reads: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in reads:
        events.extend(parser.feed(chunk))
    return events + parser.close()


def test_basic_and_multiline() -> None:
    assert parse(b"event: a\ndata: 1\ndata: 2\n\n") == [SSEEvent("a", "1\n2", "")]


def test_event_without_data_is_not_dispatched() -> None:
    assert parse(b"event: x\n\n: comment\n\ndata: y\n\n") == [SSEEvent("message", "y", "")]


def test_event_type_resets_after_dispatch() -> None:
    assert parse(b"event: a\ndata: 1\n\ndata: 2\n\n") == [SSEEvent("a", "1", ""), SSEEvent("message", "2", "")]


def test_cr_at_end_of_read_then_lf() -> None:
    assert parse(b"data: a\r", b"\n\r", b"\n") == [SSEEvent("message", "a", "")]


def test_cr_only_line_endings() -> None:
    assert parse(b"data: a\r\rdata: b\r\r") == [SSEEvent("message", "a", ""), SSEEvent("message", "b", "")]


def test_bom_stripped_once_even_when_split() -> None:
    assert parse(b"\xef", b"\xbb", b"\xbfdata: a\n\n") == [SSEEvent("message", "a", "")]
    # A second BOM is content of the field name, so the line is an unknown field.
    assert parse(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n") == []


def test_utf8_split_across_reads() -> None:
    raw = "data: café ☕\n\n".encode()
    for i in range(len(raw)):
        assert parse(raw[:i], raw[i:]) == [SSEEvent("message", "café ☕", "")]


def test_id_persists_and_nul_ignored() -> None:
    events = parse(b"id: 7\ndata: a\n\nid: x\x00y\ndata: b\n\n")
    assert [e.id for e in events] == ["7", "7"]


def test_unterminated_event_discarded() -> None:
    assert parse(b"data: a\n\ndata: b\n") == [SSEEvent("message", "a", "")]


def test_field_without_colon_and_space_rules() -> None:
    events = parse(b"data\n\ndata:x\n\ndata:  y\n\n")
    assert [e.data for e in events] == ["", "x", " y"]


def test_buffer_cap() -> None:
    parser = SSEParser(max_event_bytes=100)
    parser.feed(b"data: " + b"x" * 50 + b"\n")
    with pytest.raises(SSEBufferOverflow):
        parser.feed(b"data: " + b"y" * 60)
    parser = SSEParser(max_event_bytes=100)
    with pytest.raises(SSEBufferOverflow):
        for _ in range(200):
            parser.feed(b"z")


def test_buffer_is_released_after_dispatch() -> None:
    parser = SSEParser(max_event_bytes=100)
    for _ in range(50):
        assert len(parser.feed(b"data: " + b"x" * 80 + b"\n\n")) == 1


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_edge_cases_fixture_any_split(data: st.DataObject) -> None:
    raw = read("sse/edge_cases.sse")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=30)))
    reads = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert parse(*reads) == parse(raw)


def test_edge_cases_fixture_one_byte_reads() -> None:
    raw = read("sse/edge_cases.sse")
    assert parse(*[raw[i : i + 1] for i in range(len(raw))]) == parse(raw)


def test_encode_sse() -> None:
    assert encode_sse('{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_sse('{"type":"ping"}', "ping") == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert encode_sse("a\nb") == b"data: a\ndata: b\n\n"
    assert parse(encode_sse("x\r\ny", "e")) == [SSEEvent("e", "x\ny", "")]


def test_keepalive_frames() -> None:
    assert parse(keepalive("openai")) == []
    assert parse(keepalive("anthropic")) == [SSEEvent("ping", '{"type": "ping"}', "")]


_SSE_PIECES = st.sampled_from(
    [b"data: a", b"data:b", b'data: {"x": 1}', b"data: ", b"event: e", b"id: 1", b": c", b"retry: 3", b"data: \xc3"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_SSE_PIECES, st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n", b"\r\n\r\n"])), max_size=12),
    st.booleans(),
    st.data(),
)
def test_feed_data_is_the_data_of_feed(lines: list[tuple[bytes, bytes]], bom: bool, data: st.DataObject) -> None:
    raw = (b"\xef\xbb\xbf" if bom else b"") + b"".join(a + b for a, b in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    reads = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    whole, fast = SSEParser(), SSEParser()
    assert [d for r in reads for d in fast.feed_data(r)] == [e.data for r in reads for e in whole.feed(r)]


def test_feed_data_keeps_the_size_limit() -> None:
    parser = SSEParser(max_event_bytes=16)
    with pytest.raises(SSEBufferOverflow):
        parser.feed_data(b"data: a\n\ndata: " + b"x" * 20)  # the events' way: the partial line is too long
    parser = SSEParser(max_event_bytes=16)
    with pytest.raises(SSEBufferOverflow):
        parser.feed_data(b"event: e\ndata: " + b"x" * 20 + b"\n")  # the line-by-line way: the event is


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_SSE_PIECES, st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n", b"\r\n\r\n"])), max_size=12),
    st.data(),
)
def test_whole_event_reads_parse_as_one_byte_reads(lines: list[tuple[bytes, bytes]], data: st.DataObject) -> None:
    # Reads that end with a blank line (and are not a parser's first) take feed's regular-expression way when
    # they hold simple events only; one-byte reads never complete an event in one read, so they take the
    # line-by-line way: both give the same events.
    raw = b"".join(a + b for a, b in lines)
    ends = [i + 2 for i in range(len(raw)) if raw.startswith(b"\n\n", i)]
    cuts = sorted({*data.draw(st.lists(st.integers(0, len(raw)), max_size=3)), *ends})
    reads = [b":\n"] + [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert parse(*reads) == parse(*[raw[i : i + 1] for i in range(len(raw))])


def test_whole_simple_events_skip_the_line_by_line_way(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 0\n\n") == [SSEEvent("message", "0", "")]  # the BOM check: the line way
    monkeypatch.setattr(SSEParser, "_complete_lines", None)  # what the line-by-line way calls first
    one = b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n'
    assert parser.feed(one) == [SSEEvent("content_block_delta", '{"type":"content_block_delta"}', "")]
    assert parser.feed(b"data: [DONE]\n\n") == [SSEEvent("message", "[DONE]", "")]
    assert parser.feed(b"data: a\n\nevent: e\ndata: \n\ndata: \xc3\n\n") == [
        SSEEvent("message", "a", ""),
        SSEEvent("e", "", ""),
        SSEEvent("message", "\ufffd", ""),
    ]
