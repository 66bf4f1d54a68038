"""The client-facing model name in responses: the ``"model": "..."`` span replaced, nothing parsed.

A response names the model that answered (``claude-sonnet-4-5-20250929``, ``gpt-4o-2024-08-06``); a client
that asked for an alias expects its own name back, and some depend on it (Claude Code keeps its signed
thinking blocks only for the model it asked for). The value of the first ``"model"`` member is a fixed,
findable span:

- a JSON body (chat completion, Anthropic message, Response object): near its start;
- an event stream: in each event that carries it (every OpenAI chat chunk, Anthropic's ``message_start``,
  the Responses events holding the response object), on the event's ``data:`` line.

The span is found with one regular expression per line that contains ``"model"``; a JSON string can hold
``"model"`` only escaped (``\\"model\\"``), so the match is always a member name. Bytes without the key pass
unchanged, and a stream's reads are passed on at once unless one ends inside a line (held until its end).
The new value is spliced in as the literal bytes of its JSON encoding (never as a ``re`` template, which would
read the backslashes of ``\\``, ``\\n`` or ``\\u0001`` as escapes).
"""

from __future__ import annotations

import json
import re

__all__ = ["ModelNameRewriter"]

# Possessive (never backtracks): a run of plain characters is one step, not one step per character, which
# makes the search less than half as costly as with a plain ``(?:[^"\\\r\n]|\\.)*`` (the same matches).
_MODEL = re.compile(rb'"model"\s*:\s*"(?:[^"\\\r\n]++|\\.)*+"')
# A JSON body is held until its model span was seen, at most this far; a stream's partial line likewise.
_MAX_HELD = 64 * 1024


class ModelNameRewriter:
    """Replaces the ``model`` value in a response body (``stream``: an SSE body) with ``name``.

    ``once``: only the first occurrence in the whole body (a JSON body, an Anthropic stream, whose only
    model is in ``message_start``); otherwise the first in each line (OpenAI chat chunks, Responses events).
    :meth:`feed` returns the bytes to send now; :meth:`close` what was held at the end of the body.
    """

    __slots__ = ("_done", "_member", "_once", "_stream", "_tail")

    def __init__(self, name: str, *, stream: bool, once: bool) -> None:
        self._member = b'"model":' + json.dumps(name, ensure_ascii=False).encode()
        self._stream = stream
        self._once = once or not stream
        self._done = False
        self._tail = b""

    @property
    def holding(self) -> bool:
        return bool(self._tail)

    def feed(self, chunk: bytes) -> bytes:
        data = self._tail + chunk if self._tail else chunk
        self._tail = b""
        if self._done:
            return data
        if not self._stream:
            return self._json(data, final=False)
        if data.endswith(b"\n"):
            return self._lines(data)
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if len(rest) > _MAX_HELD:
            return self._lines(data)  # a huge line: give it on rather than hold it
        self._tail = rest
        return self._lines(data[:cut])

    def close(self) -> bytes:
        tail, self._tail = self._tail, b""
        if self._done or not tail:
            return tail
        return self._lines(tail) if self._stream else self._json(tail, final=True)

    def _json(self, data: bytes, *, final: bool) -> bytes:
        match = _MODEL.search(data)
        if match is not None:
            self._done = True
            return data[: match.start()] + self._member + data[match.end() :]
        if final or len(data) > _MAX_HELD:
            self._done = True  # no model member where one would be: relay the rest as it is
            return data
        self._tail = data
        return b""

    def _lines(self, data: bytes) -> bytes:
        # Every bytes operation costs thousands of instructions here (argument parsing): as few as can be.
        match = _MODEL.search(data)
        if match is None:
            return data
        start, end = match.span()
        if self._once:
            self._done = True
            out = data[:start] + self._member + data[end:] + self._tail
            self._tail = b""
            return out
        if _MODEL.search(data, end) is None:  # one event per read, the usual case
            return data[:start] + self._member + data[end:]
        # The first span of each line: one regex pass over the read, a step per span found.
        parts: list[bytes] = []
        pos = 0
        line_end = -1
        member = self._member
        for match in _MODEL.finditer(data):
            start = match.start()
            if start < line_end:
                continue  # a second span in the same line stays
            parts.append(data[pos:start])
            parts.append(member)
            pos = match.end()
            line_end = data.find(b"\n", pos)
            if line_end < 0:
                line_end = len(data)
        if not parts:
            return data
        parts.append(data[pos:])
        return b"".join(parts)
