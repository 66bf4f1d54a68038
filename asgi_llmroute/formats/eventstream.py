"""AWS event-stream framing (``application/vnd.amazon.eventstream``): an incremental decoder with
bounded memory and checked CRCs, and the matching encoder.

A message is a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes), the
headers, the payload and a CRC32 of everything before it, all big-endian. Bedrock's
ConverseStream and InvokeModelWithResponseStream bodies are such messages back to back.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

__all__ = [
    "EventStreamDecoder",
    "EventStreamError",
    "EventStreamMessage",
    "HeaderValue",
    "encode_message",
]

HeaderValue = Union[bool, int, bytes, str, uuid.UUID]  # noqa: UP007 (a runtime alias on 3.10)

_PRELUDE = struct.Struct(">III")
_PRELUDE_LEN = 12
_OVERHEAD = 16  # prelude + message CRC
_MAX_HEADERS = 128 * 1024
#: Largest message accepted by default; Bedrock events are a few hundred bytes, InvokeModel chunks
#: a few KiB. The format itself allows 16 MiB of payload.
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

# Header value types: fixed widths for the numeric ones, 2-byte length prefix for bytes/string.
_FIXED = {2: struct.Struct(">b"), 3: struct.Struct(">h"), 4: struct.Struct(">i"), 5: struct.Struct(">q")}
_U16 = struct.Struct(">H")
_I64 = struct.Struct(">q")


class EventStreamError(Exception):
    """The event stream is corrupt (bad CRC, impossible lengths, truncated message)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class EventStreamMessage:
    """One decoded message: its headers (``:message-type``, ``:event-type``, ...) and raw payload.

    ``headers`` may be shared between messages with identical header blocks: read it, do not change it.
    """

    headers: dict[str, HeaderValue]
    payload: bytes


# Bedrock repeats the same few header blocks (one per event type): parse each once.
_HEADER_CACHE: dict[bytes, dict[str, HeaderValue]] = {}
_HEADER_CACHE_MAX = 256


def _cached_headers(raw: bytes) -> dict[str, HeaderValue]:
    headers = _HEADER_CACHE.get(raw)
    if headers is None:
        headers = _parse_headers(raw)
        if len(raw) <= 512:
            if len(_HEADER_CACHE) >= _HEADER_CACHE_MAX:
                _HEADER_CACHE.clear()
            _HEADER_CACHE[raw] = headers
    return headers


def _parse_headers(raw: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos = 0
    end = len(raw)
    try:
        while pos < end:
            name_len = raw[pos]
            pos += 1
            name = raw[pos : pos + name_len].decode()
            pos += name_len
            kind = raw[pos]
            pos += 1
            value: HeaderValue
            if kind == 0:
                value = True
            elif kind == 1:
                value = False
            elif kind in _FIXED:
                fixed = _FIXED[kind]
                (value,) = fixed.unpack_from(raw, pos)
                pos += fixed.size
            elif kind == 6 or kind == 7:
                (length,) = _U16.unpack_from(raw, pos)
                pos += 2
                data = raw[pos : pos + length]
                if len(data) != length:
                    raise EventStreamError("event-stream header value is truncated")
                pos += length
                value = data if kind == 6 else data.decode()
            elif kind == 8:  # timestamp: int64 milliseconds since the epoch
                (value,) = _I64.unpack_from(raw, pos)
                pos += 8
            elif kind == 9:
                data = raw[pos : pos + 16]
                if len(data) != 16:
                    raise EventStreamError("event-stream header value is truncated")
                value = uuid.UUID(bytes=data)
                pos += 16
            else:
                raise EventStreamError(f"event-stream header has unknown type {kind}")
            if pos > end or not name:
                raise EventStreamError("event-stream headers are malformed")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError):
        raise EventStreamError("event-stream headers are malformed") from None
    return headers


class EventStreamDecoder:
    """Incremental decoder: feed network reads of any size, get the messages completed so far.

    Both CRCs are verified; lengths are checked before anything is buffered, so memory stays
    below ``max_message_bytes`` plus one read. After an :class:`EventStreamError` the decoder is
    unusable (the stream cannot be resynchronised).
    """

    __slots__ = ("_buf", "_max", "_broken")

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_message_bytes
        self._broken = False

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message held so far."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[EventStreamMessage]:
        if self._broken:
            raise EventStreamError("event stream is already broken")
        buf = self._buf
        buf += data
        out: list[EventStreamMessage] = []
        pos = 0
        size = len(buf)
        try:
            while size - pos >= _PRELUDE_LEN:
                total, headers_len, prelude_crc = _PRELUDE.unpack_from(buf, pos)
                if zlib.crc32(memoryview(buf)[pos : pos + 8]) != prelude_crc:
                    raise EventStreamError("event-stream prelude checksum mismatch")
                if total < _OVERHEAD or headers_len > total - _OVERHEAD or headers_len > _MAX_HEADERS:
                    raise EventStreamError("event-stream message lengths are invalid")
                if total > self._max:
                    raise EventStreamError("event-stream message is larger than the gateway accepts")
                if size - pos < total:
                    break
                end = pos + total
                view = memoryview(buf)
                (message_crc,) = struct.unpack_from(">I", buf, end - 4)
                if zlib.crc32(view[pos : end - 4]) != message_crc:
                    raise EventStreamError("event-stream message checksum mismatch")
                start = pos + _PRELUDE_LEN
                headers = _cached_headers(bytes(view[start : start + headers_len]))
                payload = bytes(view[start + headers_len : end - 4])
                view.release()
                out.append(EventStreamMessage(headers, payload))
                pos = end
        except EventStreamError:
            self._broken = True
            self._buf = bytearray()
            raise
        if pos:
            del buf[:pos]
        return out

    def close(self) -> None:
        """End of input: raises :class:`EventStreamError` if a message was left incomplete."""
        if self._buf and not self._broken:
            self._buf = bytearray()
            self._broken = True
            raise EventStreamError("event stream ended in the middle of a message")


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw_name = name.encode()
    head = bytes((len(raw_name),)) + raw_name
    if value is True:
        return head + b"\x00"
    if value is False:
        return head + b"\x01"
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return head + b"\x04" + struct.pack(">i", value)
        return head + b"\x05" + struct.pack(">q", value)
    if isinstance(value, uuid.UUID):
        return head + b"\x09" + value.bytes
    if isinstance(value, str):
        data = value.encode()
        return head + b"\x07" + _U16.pack(len(data)) + data
    return head + b"\x06" + _U16.pack(len(value)) + value


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes) -> bytes:
    """One event-stream message with both CRCs (ints as int32/int64, str as string, bytes as bytes)."""
    raw_headers = b"".join(_encode_header(k, v) for k, v in headers.items())
    total = _OVERHEAD + len(raw_headers) + len(payload)
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))
