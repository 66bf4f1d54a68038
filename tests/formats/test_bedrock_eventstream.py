"""The AWS event-stream decoder, checked against botocore's own parser on every fixture, fuzzed
with random read splits and corrupted bytes."""

from __future__ import annotations

import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_llmroute.formats.eventstream import EventStreamDecoder, EventStreamError, HeaderValue, encode_message

botocore_eventstream = pytest.importorskip("botocore.eventstream")

PROVIDERS = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
BINS = sorted(PROVIDERS.glob("bedrock-*/*.bin"))
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


def botocore_messages(raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = botocore_eventstream.EventStreamBuffer()
    buffer.add_data(raw)
    return [(dict(m.headers), m.payload) for m in buffer]


def decode(raw: bytes, cuts: list[int] | None = None) -> list[tuple[dict[str, Any], bytes]]:
    decoder = EventStreamDecoder()
    out: list[tuple[dict[str, Any], bytes]] = []
    bounds = [0, *sorted(cuts or []), len(raw)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        out.extend((m.headers, m.payload) for m in decoder.feed(raw[a:b]))
    decoder.close()
    return out


def test_fixture_list_is_complete() -> None:
    assert len(BINS) == 6


@pytest.mark.parametrize("path", BINS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_same_messages_as_botocore(path: Path) -> None:
    raw = path.read_bytes()
    expected = botocore_messages(raw)
    assert expected
    assert decode(raw) == expected
    assert decode(raw, list(range(1, len(raw)))) == expected  # one byte per read


@pytest.mark.parametrize("path", BINS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_reencoding_reproduces_the_capture_byte_for_byte(path: Path) -> None:
    raw = path.read_bytes()
    assert b"".join(encode_message(h, p) for h, p in decode(raw)) == raw


@SETTINGS
@given(st.sampled_from(BINS), st.lists(st.integers(min_value=0, max_value=6000), max_size=40))
def test_random_splits(path: Path, cuts: list[int]) -> None:
    raw = path.read_bytes()
    cuts = [c for c in cuts if c <= len(raw)]
    assert decode(raw, cuts) == botocore_messages(raw)


@SETTINGS
@given(st.sampled_from(BINS), st.integers(min_value=0), st.integers(min_value=1, max_value=255), st.integers(1, 64))
def test_any_corrupted_byte_is_a_clear_error(path: Path, where: int, flip: int, read: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[where % len(raw)] ^= flip
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError):
        for i in range(0, len(raw), read):
            decoder.feed(bytes(raw[i : i + read]))
        decoder.close()
    with pytest.raises(EventStreamError):  # and it stays broken
        decoder.feed(b"x")


@SETTINGS
@given(st.sampled_from(BINS), st.integers(min_value=1))
def test_truncated_stream_is_an_error_at_close(path: Path, keep: int) -> None:
    raw = path.read_bytes()
    messages = botocore_messages(raw)
    sizes = []
    pos = 0
    while pos < len(raw):
        (total,) = struct.unpack_from(">I", raw, pos)
        sizes.append(pos + total)
        pos += total
    cut = keep % len(raw)
    if cut in sizes or cut == 0:
        return
    decoder = EventStreamDecoder()
    got = decoder.feed(raw[:cut])
    assert len(got) == sum(1 for end in sizes if end <= cut) <= len(messages)
    with pytest.raises(EventStreamError):
        decoder.close()


def test_lengths_are_checked_before_buffering() -> None:
    decoder = EventStreamDecoder(max_message_bytes=1024)
    prelude = struct.pack(">II", 10_000_000, 0)
    with pytest.raises(EventStreamError, match="larger"):
        decoder.feed(prelude + struct.pack(">I", zlib.crc32(prelude)))
    for total, headers in ((8, 0), (100, 90)):
        prelude = struct.pack(">II", total, headers)
        with pytest.raises(EventStreamError, match="lengths"):
            EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))


def test_every_header_type_is_skipped_by_width() -> None:
    headers: dict[str, HeaderValue] = {
        "t": True,
        "f": False,
        "i32": 7,
        "i64": 2**40,
        "b": b"\x00\x01",
        "s": "héllo",
        "u": uuid.UUID(int=5),
        ":event-type": "messageStart",
    }
    raw = encode_message(headers, b'{"role":"assistant"}')
    (message,) = EventStreamDecoder().feed(raw)
    assert message.headers == headers
    assert botocore_messages(raw)[0][0] == {**headers, "u": uuid.UUID(int=5).bytes}  # botocore keeps UUIDs as bytes
    # int8, int16 and timestamp headers (botocore decodes them; we skip them by width)
    extra = bytes([2]) + b"i8" + b"\x02\x05" + bytes([3]) + b"i16" + b"\x03\x00\x09" + bytes([2]) + b"ts" + b"\x08"
    extra += struct.pack(">q", 1_700_000_000_000)
    total = 16 + len(extra) + 2
    prelude = struct.pack(">II", total, len(extra))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + extra + b"{}"
    body += struct.pack(">I", zlib.crc32(body))
    (message,) = EventStreamDecoder().feed(body)
    assert message.headers == {"i8": 5, "i16": 9, "ts": 1_700_000_000_000}
    assert message.payload == b"{}"


def test_memory_stays_bounded_by_one_message() -> None:
    frame = encode_message({":message-type": "event", ":event-type": "x"}, b"{}" * 50)
    decoder = EventStreamDecoder()
    for _ in range(200):
        assert decoder.feed(frame[:30]) == []
        (message,) = decoder.feed(frame[30:])
        assert decoder.pending == 0
        assert message.payload == b"{}" * 50
