"""Server-Sent Events framing: an incremental WHATWG parser and the gateway's emission rules.

Parsing follows the WHATWG "event stream interpretation" (docs/translation.md, "SSE framing"): any read boundaries,
CR / LF / CRLF line ends (including a CR that ends one read and an LF that starts the next),
one leading BOM, comments, multi-line data, UTF-8 characters split across reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .types import API

_BOM = b"\xef\xbb\xbf"
_DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024
# The usual event, whole: an optional ``event:`` line and one ``data:`` line (each with its space), LF line
# ends, in a read without CR (checked first, with a memchr). ``.`` (no newline) is counted by sre in a tight
# loop, a character class one character at a time (ten times the instructions).
_SIMPLE_EVENT = re.compile(rb"(?:event: (.*)\n)?data: (.*)\n\n")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: ``event`` is the type (``message`` when unnamed), ``id`` the last-event-id."""

    event: str
    data: str
    id: str


class SSEBufferOverflow(Exception):
    """A single pending event grew beyond the parser's ``max_event_bytes``."""


class SSEParser:
    """Incremental event-stream parser: feed bytes, get the events completed so far.

    Memory is bounded: the pending partial line plus the data of the event being assembled may
    not exceed ``max_event_bytes``; beyond that :class:`SSEBufferOverflow` is raised.
    """

    __slots__ = (
        "_pending",
        "_pending_len",
        "_cr_pending",
        "_bom_checked",
        "_data",
        "_data_len",
        "_event",
        "_last_id",
        "_max",
    )

    def __init__(self, max_event_bytes: int = _DEFAULT_MAX_EVENT_BYTES) -> None:
        self._pending: list[bytes] = []  # pieces of the current, unterminated line
        self._pending_len = 0
        self._cr_pending = False  # the last read ended with CR: swallow a leading LF
        self._bom_checked = False
        self._data: list[bytes] | None = None  # data lines of the event being assembled
        self._data_len = 0
        self._event = ""
        self._last_id = ""
        self._max = max_event_bytes

    @property
    def idle(self) -> bool:
        """Between events: no partial line, no pending CR and no event being assembled."""
        return not self._pending and not self._cr_pending and self._data is None and not self._event

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume one network read; return the events it completed (possibly none).

        The usual read between events, whole events of an optional ``event:`` line and one ``data:``
        line with LF line ends, is cut with one regular expression per event instead of line by line
        (a third of the instructions); anything else takes the line-by-line way. Same result either way.
        """
        if self._bom_checked and self._data is None and not self._pending and not self._cr_pending and not self._event:
            match = _SIMPLE_EVENT.match(chunk) if chunk.find(b"\r") < 0 else None
            if match is not None:
                end = match.end()
                if end == len(chunk):  # one event: the read a model's stream is made of
                    name, data = match.groups()
                    return [
                        SSEEvent(
                            name.decode("utf-8", "replace") if name else "message",
                            data.decode("utf-8", "replace"),
                            self._last_id,
                        )
                    ]
                simple = self._simple_events(chunk, match)
                if simple is not None:
                    return simple
        buf = self._complete_lines(chunk)
        events: list[SSEEvent] = []
        if buf:
            lines = buf.split(b"\n")
            lines.pop()  # what follows the last line end: nothing
            for line in lines:
                self._line(line, events)
        if self._pending_len + self._data_len > self._max:
            raise SSEBufferOverflow(f"SSE event larger than {self._max} bytes")
        return events

    def _simple_events(self, chunk: bytes, match: re.Match[bytes] | None) -> list[SSEEvent] | None:
        """The events of a read made of simple events only (see :meth:`feed`); None if it is not."""
        events: list[SSEEvent] = []
        last_id, size, pattern = self._last_id, len(chunk), _SIMPLE_EVENT
        while match is not None:
            name, data = match.groups()
            events.append(
                SSEEvent(
                    name.decode("utf-8", "replace") if name else "message", data.decode("utf-8", "replace"), last_id
                )
            )
            end = match.end()
            if end == size:
                return events
            match = pattern.match(chunk, end)
        return None

    def feed_data(self, chunk: bytes) -> list[str]:
        """:meth:`feed` for a reader of the events' data only (not their type or id): their data texts.

        The usual read, whole events of one ``data:`` line each (``data: X`` LF LF after the line ends
        are made LF), is cut with a few bytes methods instead of line by line; anything else (a partial
        event, other fields, comments, multi-line data) takes the line-by-line way. Same result either way.
        """
        buf = self._complete_lines(chunk)
        if buf and self._data is None and not self._event and buf.startswith(b"data: ") and buf.endswith(b"\n\n"):
            n = buf.count(b"\n\n")
            if buf.count(b"\n") == 2 * n and buf.count(b"\n\ndata: ") == n - 1:
                if self._pending_len > self._max:
                    raise SSEBufferOverflow(f"SSE event larger than {self._max} bytes")
                if n == 1:
                    return [buf[6:-2].decode("utf-8", "replace")]
                return buf[6:-2].decode("utf-8", "replace").split("\n\ndata: ")
        events: list[SSEEvent] = []
        if buf:
            lines = buf.split(b"\n")
            lines.pop()
            for line in lines:
                self._line(line, events)
        if self._pending_len + self._data_len > self._max:
            raise SSEBufferOverflow(f"SSE event larger than {self._max} bytes")
        return [event.data for event in events]

    def _complete_lines(self, chunk: bytes) -> bytes:
        """The complete lines the read finishes (with what was pending), LF line ends, each ending with LF;
        what follows the last line end stays pending. Empty when no line was completed."""
        if not chunk:
            return b""
        if self._cr_pending:
            self._cr_pending = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
                if not chunk:
                    return b""
        if b"\n" not in chunk and b"\r" not in chunk:
            self._pending.append(chunk)
            self._pending_len += len(chunk)
            if not self._bom_checked:
                self._check_bom(final=False)
            return b""
        if self._pending:
            self._pending.append(chunk)
            buf = b"".join(self._pending)
            self._pending = []
            self._pending_len = 0
        else:
            buf = chunk
        if not self._bom_checked:
            self._pending = [buf]
            self._check_bom(final=True)
            buf = self._pending[0] if self._pending else b""
            self._pending = []
            self._pending_len = 0
        if b"\r" in buf:
            if buf[-1] == 0x0D:
                self._cr_pending = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = buf.rfind(b"\n") + 1
        if end < len(buf):
            rest = buf[end:]
            self._pending.append(rest)
            self._pending_len = len(rest)
            return buf[:end]
        return buf

    def close(self) -> list[SSEEvent]:
        """End of stream: an event without its terminating blank line is discarded (WHATWG)."""
        self._pending = []
        self._pending_len = 0
        self._data = None
        self._data_len = 0
        self._event = ""
        return []

    def _check_bom(self, final: bool) -> None:
        head = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        if head.startswith(_BOM):
            head = head[3:]
        elif not final and len(head) < 3 and _BOM.startswith(head):
            return  # could still become a BOM: decide on the next read
        self._pending = [head] if head else []
        self._pending_len = len(head)
        self._bom_checked = True

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            data = self._data
            if data is not None:
                text = data[0] if len(data) == 1 else b"\n".join(data)
                events.append(SSEEvent(self._event or "message", text.decode("utf-8", "replace"), self._last_id))
            self._data = None
            self._data_len = 0
            self._event = ""
            return
        if line.startswith(b"data:"):
            value = line[6:] if line[5:6] == b" " else line[5:]
            if self._data is None:
                self._data = [value]
            else:
                self._data.append(value)
            self._data_len += len(value) + 1
            return
        if line[0] == 0x3A:  # ':' comment
            return
        colon = line.find(b":")
        if colon < 0:
            name, value = line, b""
        else:
            name = line[:colon]
            value = line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"data":
            if self._data is None:
                self._data = [value]
            else:
                self._data.append(value)
            self._data_len += len(value) + 1
        elif name == b"id" and b"\x00" not in value:
            self._last_id = value.decode("utf-8", "replace")
        # `retry` and unknown fields: nothing to do for a proxy that never reconnects.


def sse_head(event: str | None = None) -> str:
    """The start of a frame, up to its data: ``event: <name>\\ndata: `` (or ``data: ``).

    For writers that append one line of data (compact JSON never holds a raw line break) and then
    :data:`SSE_END`; the translators build their per-event prefixes from it once.
    """
    return "data: " if event is None else "event: " + event + "\ndata: "


#: The end of a frame: the data line's LF and the blank line.
SSE_END = "\n\n"


def sse_frame(data: str, event: str | None = None) -> str:
    """One event as text per optional ``event:`` line, ``data:`` line(s), blank line, LF only."""
    if "\n" in data or "\r" in data:
        # Compact JSON never contains raw line breaks; other payloads get one data line per line.
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        data = "\ndata: ".join(lines)
    return sse_head(event) + data + SSE_END


def encode_sse(data: str, event: str | None = None) -> bytes:
    """:func:`sse_frame`, encoded."""
    return sse_frame(data, event).encode()


_KEEPALIVE = {
    "anthropic": b'event: ping\ndata: {"type": "ping"}\n\n',
    "openai": b": ping\n\n",
}


def keepalive(api: API) -> bytes:
    """Keepalive frame for a client of ``api`` : an Anthropic ping event or an SSE comment."""
    return _KEEPALIVE[api]
