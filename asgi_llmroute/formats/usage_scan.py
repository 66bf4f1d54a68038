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

__all__ = ["OpenAIUsageStripper", "StreamUsageScanner", "usage_from_json"]

#: The response format: OpenAI chat (and passthrough), Anthropic messages, OpenAI Responses API.
Wire = Literal["openai", "anthropic", "responses", "gemini"]

# A usage *object* (not `"usage":null`), with any JSON whitespace.
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
# `"usage": null` as a member of an object, with its comma, in either position.
_NULL_USAGE = re.compile(rb',\s*"usage"\s*:\s*null(?=\s*[,}])|"usage"\s*:\s*null\s*,\s*')
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


def usage_from_json(wire: Wire, body: bytes) -> dict[str, int] | None:
    """Usage of a non-stream JSON response body in format ``wire``, or None if it has none."""
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
    chunk and a final ``"choices": []`` chunk with the totals. :meth:`feed` returns the bytes to send with
    both removed (the totals are kept in :attr:`usage`). Complete lines are passed on at once; only a
    partial line is held back until its end arrives.
    """

    __slots__ = ("_skip_blank", "_tail", "usage")

    def __init__(self) -> None:
        self._tail = b""
        self._skip_blank = False  # the usage chunk was dropped: drop the blank line that ends its event
        self.usage: dict[str, int] | None = None

    def feed(self, chunk: bytes) -> bytes:
        if not self._tail and not self._skip_blank and chunk.endswith(b"\n"):  # the usual read: whole events
            last = chunk.rfind(b'"usage"')
            if last < 0:
                return chunk
            if chunk[last - 1 : last] == b"," and _only_null_usage(chunk, last):
                return chunk[: last - 1] + chunk[last + 12 :]  # one event's `,"usage":null`
            return self._rewrite(chunk)
        data = self._tail + chunk if self._tail else chunk
        cut = data.rfind(b"\n") + 1
        if len(data) - cut > _MAX_LINE:
            cut = len(data)  # a huge line is content, not usage: pass it on rather than buffer it
        self._tail = data[cut:]
        return self._rewrite(data[:cut]) if cut else b""

    def close(self) -> bytes:
        tail, self._tail = self._tail, b""
        return self._rewrite(tail) if tail else b""

    def _rewrite(self, region: bytes) -> bytes:
        if self._skip_blank:
            # The dropped event's blank line is the first line here.
            self._skip_blank = False
            if region.startswith(b"\n"):
                region = region[1:]
            elif region.startswith(b"\r\n"):
                region = region[2:]
        if b'"usage"' not in region:
            return region
        region = region.replace(b',"usage":null', b"")  # OpenAI's compact form, at C speed
        if b'"usage"' not in region:
            return region
        region = _NULL_USAGE.sub(b"", region)  # any other spacing or position
        if b'"usage"' not in region:
            return region
        out: list[bytes] = []
        lines = region.split(b"\n")
        skip = False
        for line in lines[:-1]:  # complete lines; the last item is what follows the last LF
            if skip:
                skip = False
                if line in (b"", b"\r"):
                    continue
            if b'"usage"' in line and self._usage_chunk(line):
                skip = True
                continue
            out.append(line)
            out.append(b"\n")
        rest = lines[-1]
        if rest and b'"usage"' in rest and self._usage_chunk(rest):
            rest = b""
        elif skip:
            self._skip_blank = True  # its blank line is in the next read
        out.append(rest)
        return b"".join(out)

    def _usage_chunk(self, line: bytes) -> bool:
        """Record the usage on ``line``; True when it is the extra usage-only chunk, to be dropped."""
        payload = _data(line.rstrip(b"\r"))
        obj = _loads(payload) if payload is not None else None
        if not isinstance(obj, dict) or not isinstance(obj.get("usage"), dict):
            return False
        self.usage = accounting_from_openai(obj["usage"])
        return obj.get("choices") == []
