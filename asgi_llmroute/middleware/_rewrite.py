"""Rewriting a response body as it passes: shared by the translation layers (chat <-> messages,
Responses <-> chat)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from starlette.types import Message, Send

from ..context import RequestContext
from ..errors import ResponseComplete, UpstreamError, render_stream_error, send_error
from ..formats import StreamTranslator, UpstreamProtocolError

__all__ = ["BodyTranslator", "ResponseRewriter", "ask_for_identity", "google_retry_after_header"]

_STREAM_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # stop nginx-style proxies from buffering the stream
)
# Upstream streams: SSE, and the binary AWS event stream of Bedrock.
_STREAM_TYPES = (b"text/event-stream", b"application/vnd.amazon.eventstream")
# Headers that describe the upstream body, which the rewrite replaces.
_BODY_HEADERS = frozenset({b"content-type", b"content-length", b"content-encoding", b"cache-control"})
# Largest non-stream upstream body buffered for rewriting; a larger one is answered with 502.
_MAX_BUFFERED = 64 * 1024 * 1024


class BodyTranslator(Protocol):
    """What :class:`ResponseRewriter` needs of a translator (``formats.Translator`` and
    ``formats.ResponsesTranslator`` both are one)."""

    @property
    def usage(self) -> dict[str, int] | None: ...

    def response(self, body: bytes) -> bytes: ...

    def error(self, status: int, body: bytes) -> bytes: ...

    def stream(self) -> StreamTranslator: ...


class ResponseRewriter:
    """Per-request ``send`` wrapper: holds ``http.response.start`` until the body decides the headers.

    Event streams (2xx ``text/event-stream``) are translated chunk by chunk with SSE headers and no
    length; other bodies are buffered (bounded), translated whole (errors by status), and sent with a
    fresh ``content-length``. An upstream body that is not valid for its protocol answers 502 in the
    client's ``wire`` format. Usage the translator saw is recorded in ``ctx.usage``.
    """

    __slots__ = (
        "_buffer",
        "_buffered",
        "_ctx",
        "_passthrough",
        "_send",
        "_start",
        "_stream",
        "_translator",
        "_usage",
        "_wire",
    )

    def __init__(self, send: Send, translator: BodyTranslator, ctx: RequestContext, wire: str) -> None:
        self._send = send
        self._translator = translator
        self._ctx = ctx
        self._wire = wire
        self._start: Message | None = None
        self._stream: StreamTranslator | None = None
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._passthrough = False  # a gateway error an inner layer already rendered for the client
        self._usage: dict[str, int] | None = None

    async def send(self, message: Message) -> None:
        if self._passthrough:
            await self._send(message)
            return
        if message["type"] == "http.response.start":
            if self._ctx.gateway_error_rendered:
                self._passthrough = True
                await self._send(message)
                return
            hook = getattr(self._translator, "response_start", None)  # e.g. Bedrock reads its error type
            if hook is not None:
                message = hook(message)
            self._start = message
            if message["status"] < 300 and _header(message["headers"], b"content-type").startswith(_STREAM_TYPES):
                self._stream = self._translator.stream()
                headers = [(k, v) for k, v in message["headers"] if k not in _BODY_HEADERS]
                headers.extend(_STREAM_HEADERS)
                await self._send({**message, "headers": headers})
            return
        if message["type"] != "http.response.body":
            await self._send(message)
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        stream = self._stream
        if stream is not None:
            ctx = self._ctx
            if not more and ctx.gateway_error is not None:
                # The gateway's own error (the upstream was cut or timed out): rendered once, in the
                # client's format, not translated from the provider's; what the upstream sent of a
                # partial event is dropped with the translator.
                if not ctx.gateway_error_rendered:
                    body = b"\n\n" + render_stream_error(self._wire, ctx.gateway_error)
                    ctx.gateway_error_rendered = True
                await self._send({"type": "http.response.body", "body": body, "more_body": False})
                return
            out = stream.feed(body) if body else b""
            if not more:
                out += stream.close()
            if stream.usage is not self._usage and stream.usage:
                # Kept current, so that a stream the client leaves after its final event is counted.
                self._usage = stream.usage
                ctx.usage.update(stream.usage)
            if out or not more:
                await self._send({"type": "http.response.body", "body": out, "more_body": more})
            return
        self._buffer.append(body)
        self._buffered += len(body)
        if self._buffered > _MAX_BUFFERED:
            await self._too_large()
        if more:
            return
        await self._finish(b"".join(self._buffer))

    async def _too_large(self) -> None:
        """Answer 502 in the client's format and tell the sender to stop (nothing was sent yet)."""
        self._buffer.clear()
        ctx = self._ctx
        limit = _MAX_BUFFERED // (1024 * 1024)
        error = UpstreamError(
            502, f"The upstream response is larger than {limit} MiB: too large to translate.", code="response_too_large"
        )
        ctx.gateway_error, ctx.gateway_error_rendered = error, True
        self._passthrough = True  # whatever else arrives is not ours to translate
        await send_error(self._send, self._wire, error)
        raise ResponseComplete

    async def _finish(self, raw: bytes) -> None:
        assert self._start is not None, "http.response.body before http.response.start"
        status: int = self._start["status"]
        error = self._ctx.gateway_error
        if error is not None:
            # The gateway's own error: rendered once in the client's format, never translated.
            self._ctx.gateway_error_rendered = True
            await send_error(self._send, self._wire, error)
            return
        if status >= 400:
            out = self._translator.error(status, raw)
        else:
            try:
                out = self._translator.response(raw)
            except UpstreamProtocolError as exc:
                error = UpstreamError(502, exc.message, code="upstream_protocol_error")
                await send_error(self._send, self._wire, error)
                return
            if self._translator.usage:
                self._ctx.usage.update(self._translator.usage)
        headers = [(k, v) for k, v in self._start["headers"] if k not in _BODY_HEADERS]
        retry_after = getattr(self._translator, "retry_after", None) if status >= 400 else None
        if retry_after is not None and not any(k == b"retry-after" for k, _ in headers):
            headers.append((b"retry-after", str(retry_after).encode()))  # the delay Google puts in the body
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
        await self._send({**self._start, "headers": headers})
        await self._send({"type": "http.response.body", "body": out, "more_body": False})


# Largest relayed error body held back to read Google's retry delay from (errors are a few hundred bytes).
_MAX_ERROR_HELD = 64 * 1024


def google_retry_after_header(send: Send) -> Send:
    """``send`` for a relayed Google-format response: a 429/5xx error's ``RetryInfo.retryDelay`` (in
    its body, where Google puts it) also becomes a ``Retry-After`` header, for the retry layer
    outside and for the client. Other responses, and error bodies over 64 KiB or not Google's
    shape, pass unchanged."""
    held: Message | None = None
    parts: list[bytes] = []
    size = 0

    async def relay(message: Message) -> None:
        nonlocal held, size
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = message.get("headers", [])
            if (status == 429 or status >= 500) and not any(k == b"retry-after" for k, _ in headers):
                held = message
                return
        elif held is not None and message["type"] == "http.response.body":
            body = message.get("body", b"")
            parts.append(body)
            size += len(body)
            if message.get("more_body", False) and size <= _MAX_ERROR_HELD:
                return
            start, held = held, None
            raw = b"".join(parts)
            from ..formats.gemini import retry_after as google_retry_after  # an error path: not at start

            delay = google_retry_after(raw) if size <= _MAX_ERROR_HELD and not message.get("more_body") else None
            if delay is not None:
                start = {**start, "headers": [*start.get("headers", []), (b"retry-after", str(delay).encode())]}
            await send(start)
            await send({**message, "body": raw})
            return
        await send(message)

    return relay


def ask_for_identity(
    headers: Iterable[tuple[bytes, bytes]], drop_prefix: bytes | None = None
) -> list[tuple[bytes, bytes]]:
    """Request headers asking for an identity-encoded body (the rewrite parses it), without the
    stale ``content-length`` and, optionally, without headers starting with ``drop_prefix``."""
    out = [
        (k, v)
        for k, v in headers
        if k != b"accept-encoding" and k != b"content-length" and not (drop_prefix and k.startswith(drop_prefix))
    ]
    out.append((b"accept-encoding", b"identity"))
    return out


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    for key, value in headers:
        if key == name:
            return value
    return b""
