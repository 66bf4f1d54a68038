"""Token usage read from upstream responses relayed as they are: pure, I/O-free, cheap.

Every reader yields the same normalised counts as the translators (``formats.usage``):
``input_tokens`` (cache reads and writes included), ``output_tokens``, ``cache_read_tokens``,
``cache_write_tokens``.

Streams are scanned line by line, and only lines that can carry a usage object are parsed as JSON:
OpenAI's final ``"choices": []`` chunk, Anthropic's ``message_start`` and ``message_delta`` (whose
counts are cumulative: merged by overwriting, never added). Lines must end in LF or CRLF (every
provider's framing); a lone CR line end is not recognised.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from .accounting import accounting_from_anthropic, accounting_from_openai
from .sse import SSEBufferOverflow, SSEEvent, SSEParser, encode_sse

__all__ = ["OpenAIUsageStripper", "StreamUsageScanner", "usage_from_json"]

#: The response format: OpenAI chat (and passthrough), Anthropic messages, OpenAI Responses API.
Wire = Literal["openai", "anthropic", "responses", "gemini"]

# A usage *object* (not `"usage":null`), with any JSON whitespace.
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
# `"usage": null` as a member of an object, with its comma, in either position.
_NULL_USAGE = re.compile(rb',\s*"usage"\s*:\s*null(?=\s*[,}])|"usage"\s*:\s*null\s*,\s*')
# The same, in an event's data text (the stripper works on parsed events).
_NULL_USAGE_TEXT = re.compile(r',\s*"usage"\s*:\s*null(?=\s*[,}])|"usage"\s*:\s*null\s*,\s*')
# Longest partial line kept while scanning; usage lines are small, so a longer one is dropped.
_MAX_LINE = 1024 * 1024


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _from_responses(usage: dict[str, Any]) -> dict[str, int]:
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    counts = {"input_tokens": usage.get("input_tokens"), "output_tokens": usage.get("output_tokens")}
    out = {k: v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0 for k, v in counts.items()}
    out["cache_read_tokens"] = cached if isinstance(cached, int) and cached > 0 else 0
    out["cache_write_tokens"] = 0
    return out


def _from_gemini(usage: dict[str, Any]) -> dict[str, int]:
    from .gemini.response import usage_as_anthropic

    return accounting_from_anthropic(usage_as_anthropic(usage))


_ACCOUNTING = {
    "openai": accounting_from_openai,
    "anthropic": accounting_from_anthropic,
    "responses": _from_responses,
    "gemini": _from_gemini,
}


_DECODER = json.JSONDecoder()
_SPACE = re.compile(rb"[ \t\n\r]*")
_TAIL_KEYS = {"gemini": b'"usageMetadata"'}


def _tail_usage(key: bytes, body: bytes) -> Any:
    """The top-level ``key`` member of the JSON object ``body`` when it is among its last members,
    found from the end and decoded alone; ``...`` (Ellipsis) when that cannot be told without parsing
    ``body`` whole. The members after it (OpenAI's ``service_tier``, ``system_fingerprint``) are
    decoded one by one up to the closing brace, which must end ``body``: so the key is the outer
    object's, not a nested object's or a string's. What comes before the key is not validated."""
    at = body.rfind(key)
    start = _SPACE.match(body).end()  # type: ignore[union-attr]
    if at <= start or body[start] != 0x7B:  # `{`
        return ...
    i = at - 1
    while body[i] in b" \t\n\r":
        i -= 1
    if body[i] not in b",{":  # a key follows `{` or `,`; an escaped quote or a string value does not
        return ...
    tail = body[at + len(key) :]
    text = tail.decode("utf-8", "replace")
    if len(text) != len(tail):  # byte and text offsets differ (non-ASCII after the key): parse it all
        return ...
    space = _SPACE.match
    try:
        pos = space(tail).end()  # type: ignore[union-attr]
        if tail[pos : pos + 1] != b":":
            return ...
        value, pos = _DECODER.raw_decode(text, space(tail, pos + 1).end())  # type: ignore[union-attr]
        for _ in range(16):
            pos = space(tail, pos).end()  # type: ignore[union-attr]
            mark = tail[pos : pos + 1]
            if mark == b"}":
                return value if space(tail, pos + 1).end() == len(tail) else ...  # type: ignore[union-attr]
            if mark != b",":
                return ...
            name, pos = _DECODER.raw_decode(text, space(tail, pos + 1).end())  # type: ignore[union-attr]
            pos = space(tail, pos).end()  # type: ignore[union-attr]
            if not isinstance(name, str) or tail[pos : pos + 1] != b":":
                return ...
            _, pos = _DECODER.raw_decode(text, space(tail, pos + 1).end())  # type: ignore[union-attr]
    except (ValueError, RecursionError):
        pass
    return ...


def usage_from_json(wire: Wire, body: bytes) -> dict[str, int] | None:
    """Usage of a non-stream JSON response body in format ``wire``, or None if it has none.

    The usage object is looked for from the end first (where OpenAI, Anthropic and the Responses API
    put it): decoding it and the few members after it costs a fraction of parsing the whole body."""
    usage = _tail_usage(_TAIL_KEYS.get(wire, b'"usage"'), body)
    if usage is ...:
        obj = _loads(body)
        usage = obj.get("usageMetadata" if wire == "gemini" else "usage") if isinstance(obj, dict) else None
    if not isinstance(usage, dict):
        return None
    return _ACCOUNTING[wire](usage)


def _only_null_usage(data: bytes, last: int) -> bool:
    """Whether the one ``"usage"`` key in ``data`` (at ``last``) is OpenAI's per-chunk ``"usage":null``.

    Searched from the end: OpenAI puts ``usage`` last, and a forward search for a needle ending in ``"``
    is slow on JSON, which is full of quotes.
    """
    if not data.startswith(b'"usage":null', last):
        return False
    # One event per read is the rule (two LFs end it): JSON has no duplicate keys, so no other usage.
    return data.count(b"\n") <= 2 or data.rfind(b'"usage"', 0, last) < 0


def _may_hold_usage(data: bytes) -> bool:
    last = data.rfind(b'"usage"')
    if last < 0 or _only_null_usage(data, last):
        return False
    return _USAGE_OBJECT.search(data) is not None


def _data(line: bytes) -> bytes | None:
    """The payload of a ``data:`` line (without the optional space and a CR), else None."""
    if not line.startswith(b"data:"):
        return None
    return line[6:] if line[5:6] == b" " else line[5:]


class StreamUsageScanner:
    """Watches an event stream's bytes, unchanged, for usage; :attr:`usage` is the latest total."""

    __slots__ = ("_merged", "_tail", "_wire", "usage")

    def __init__(self, wire: Wire) -> None:
        self._wire = wire
        self._merged: dict[str, Any] = {}
        self._tail = b""
        self.usage: dict[str, int] | None = None

    def feed(self, chunk: bytes) -> None:
        if self._wire == "gemini":
            self._gemini(chunk)
            return
        if not self._tail and chunk.endswith(b"\n"):  # the usual read: whole events
            if _may_hold_usage(chunk):
                for line in chunk.split(b"\n"):
                    if b'"usage"' in line:
                        self._line(line)
            return
        data = self._tail + chunk if self._tail else chunk
        cut = data.rfind(b"\n") + 1
        self._tail = data[cut:] if len(data) - cut <= _MAX_LINE else b""
        if cut and _may_hold_usage(data[:cut]):
            for line in data[:cut].split(b"\n"):
                if b'"usage"' in line:
                    self._line(line)

    def close(self) -> None:
        if self._wire == "gemini":
            self._gemini(b"\n")
            line, self._merged = self._merged.get("line"), {}
            if isinstance(line, bytes):
                payload = _data(line.rstrip(b"\r"))
                obj = _loads(payload) if payload is not None else None
                usage = obj.get("usageMetadata") if isinstance(obj, dict) else None
                if isinstance(usage, dict):
                    self.usage = _from_gemini(usage)
            return
        if self._tail and b'"usage"' in self._tail:
            self._line(self._tail)
        self._tail = b""

    def _gemini(self, chunk: bytes) -> None:
        # Every Gemini event repeats the cumulative usageMetadata: keep the last line that has it
        # and parse that one only, at the end.
        data = self._tail + chunk if self._tail else chunk
        cut = data.rfind(b"\n") + 1
        self._tail = data[cut:] if len(data) - cut <= _MAX_LINE else b""
        if cut and b'"usageMetadata"' in data[:cut]:
            for line in reversed(data[:cut].split(b"\n")):
                if b'"usageMetadata"' in line:
                    self._merged["line"] = line
                    break

    def _line(self, line: bytes) -> None:
        payload = _data(line.rstrip(b"\r"))
        obj = _loads(payload) if payload is not None else None
        if not isinstance(obj, dict):
            return
        if self._wire == "openai":
            usage = obj.get("usage")
            if isinstance(usage, dict):
                self.usage = accounting_from_openai(usage)  # the final chunk's totals
            return
        if self._wire == "responses":
            response = obj.get("response")
            usage = response.get("usage") if isinstance(response, dict) else None
            if isinstance(usage, dict):
                self.usage = _from_responses(usage)  # response.completed (or .incomplete / .failed)
            return
        message = obj.get("message")
        usage = message.get("usage") if obj.get("type") == "message_start" and isinstance(message, dict) else None
        if usage is None:
            usage = obj.get("usage")
        if isinstance(usage, dict):
            self._merged.update(usage)  # cumulative counters: overwrite, never add
            self.usage = accounting_from_anthropic(self._merged)


class OpenAIUsageStripper:
    """Rewrites an OpenAI chat stream the gateway asked usage for into the stream the client asked for.

    The gateway set ``stream_options.include_usage``; the upstream then adds ``"usage": null`` to every
    chunk and a final ``"choices": []`` chunk with the totals. The stream is read with the one SSE parser
    (:class:`~asgi_llmroute.formats.sse.SSEParser`: any line ends, any read boundaries) and every event is
    written again as OpenAI frames them (``data: ...`` and a blank line) with both removed: the usage chunk is
    dropped (its totals kept in :attr:`usage`) and the ``"usage": null`` member cut out of each chunk's JSON
    text, nothing else changed, with the upstream's own line ends. For OpenAI's framing (any line end) the
    client gets, byte for byte, what the upstream sends a request without ``include_usage``; an upstream's
    comments and ``id:`` fields are not repeated.
    """

    __slots__ = ("_cr_end", "_newline", "_parser", "usage")

    def __init__(self) -> None:
        self._parser = SSEParser()
        self._newline: bytes | None = None  # the upstream's line end (LF, CRLF or CR), kept in what is written
        self._cr_end = False  # the first line end seen so far is a CR that ended a read: CR or CRLF?
        self.usage: dict[str, int] | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self._newline in (None, b"\n") and chunk.endswith(b"\n\n") and self._parser.idle:
            out = _strip_data_events(chunk)
            if out is not None:
                self._newline = b"\n"
                return out
        if self._newline is None and chunk:
            if self._cr_end:
                self._newline = b"\r\n" if chunk[:1] == b"\n" else b"\r"
            else:
                self._newline = _line_end(chunk)
                self._cr_end = self._newline is None and chunk.endswith(b"\r")
        try:
            events = self._parser.feed(chunk)
        except SSEBufferOverflow:
            return chunk  # an event too large to hold: passed on as it is
        if not events:
            return b""
        out = b"".join(self._event(event) for event in events)
        return out if self._newline in (None, b"\n") or not out else out.replace(b"\n", self._newline)

    def close(self) -> bytes:
        self._parser.close()  # a last event without its blank line is not an event (WHATWG)
        return b""

    def _event(self, event: SSEEvent) -> bytes:
        data = event.data
        if '"usage"' in data:
            obj = _loads(data.encode())
            usage = obj.get("usage") if isinstance(obj, dict) else None
            if isinstance(usage, dict):
                self.usage = accounting_from_openai(usage)
                if obj.get("choices") == []:
                    return b""  # the extra usage chunk: the client did not ask for it
            elif usage is None and isinstance(obj, dict) and "usage" in obj:
                data = data.replace(',"usage":null', "")  # OpenAI's compact form, at C speed
                if '"usage"' in data:
                    data = _NULL_USAGE_TEXT.sub("", data)  # any other spacing or position
        return encode_sse(data, None if event.event == "message" else event.event)


_NULL_TAIL = b',"usage":null}'
_NULL_TAIL_EVENT = _NULL_TAIL + b"\n\n"


def _strip_data_events(chunk: bytes) -> bytes | None:
    """The usual read of a chat stream, whole one-line ``data:`` events with LF line ends, rewritten
    without the parser: each event's trailing ``,"usage":null`` member of the top-level object (the
    last ``}`` of a one-line JSON text closes it) is cut out. None for anything else (another framing,
    a partial or multi-line event, the usage chunk, another spacing): the parser's way then."""
    if chunk.count(b"\n") == 2:  # one event per read (a model streaming), its blank line at the end
        if not chunk.startswith(b"data: ") or b"\r" in chunk or chunk.endswith(b"data: \n\n"):
            return None
        if chunk.endswith(_NULL_TAIL_EVENT):
            return chunk[: -len(_NULL_TAIL_EVENT)] + b"}\n\n" if chunk.count(b'"usage"') == 1 else None
        return None if b'"usage"' in chunk else chunk
    n = chunk.count(b"\n\n")
    if (
        not chunk.startswith(b"data: ")
        or chunk.count(b"\n") != 2 * n
        or chunk.count(b"\n\ndata: ") != n - 1
        or b"\r" in chunk
        or b"data: \n" in chunk
    ):
        return None
    if b'"usage"' not in chunk:
        return chunk  # what the parser would write again, byte for byte
    events = chunk[:-2].split(b"\n\n")
    for i, event in enumerate(events):
        if b'"usage"' in event:
            if not event.endswith(_NULL_TAIL) or event.count(b'"usage"') != 1:
                return None
            events[i] = event[: -len(_NULL_TAIL)] + b"}"
    return b"\n\n".join(events) + b"\n\n"


def _line_end(chunk: bytes) -> bytes | None:
    """The line end ``chunk`` uses first (None if it has none yet; a CR at its very end may start a CRLF)."""
    cr, lf = chunk.find(b"\r"), chunk.find(b"\n")
    if cr < 0:
        return b"\n" if lf >= 0 else None
    if lf == cr + 1:
        return b"\r\n"
    if lf >= 0 and lf < cr:
        return b"\n"
    return b"\r" if cr + 1 < len(chunk) else None
