"""The OpenAI Responses API (``POST /v1/responses``) for providers that only speak Chat Completions:
thin ASGI glue over :class:`asgi_llmroute.formats.ResponsesTranslator`."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import ClientAPI, RequestContext, ensure_context, receive_json
from ..errors import GatewayError, UpstreamError, send_error
from ..formats import (
    ResponsesTranslator,
    StreamTranslator,
    TranslationError,
    TranslationOptions,
    UpstreamProtocolError,
)

__all__ = ["ResponsesMiddleware"]

_CHAT_PATH = "/v1/chat/completions"
_STREAM_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # stop nginx-style proxies from buffering the stream
)
# Headers that describe the upstream body, which translation replaces.
_BODY_HEADERS = frozenset({b"content-type", b"content-length", b"content-encoding", b"cache-control"})
# Largest non-stream upstream body translation buffers; a larger one is answered with 502.
_MAX_BUFFERED = 64 * 1024 * 1024


class ResponsesMiddleware:
    """Serve ``POST /v1/responses`` on top of Chat Completions for providers without the Responses API.

    For a Responses request (``ctx.client_api`` is ``openai.responses``) whose provider has
    ``responses_api`` set, nothing happens: the forwarder relays the request to the provider's own
    ``/v1/responses``, and stateful features (``previous_response_id``) work there. For any other
    provider the request is translated to Chat Completions and handed on as a chat request
    (``ctx.client_api = openai.chat``, ``ctx.upstream_path = /v1/chat/completions``), so that a
    :class:`TranslationMiddleware` further in takes it on to an Anthropic provider; the chat answer
    (JSON, error or SSE stream) is translated back into a Response object or Responses events.

    Put it after :class:`ProviderResolverMiddleware` and before :class:`TranslationMiddleware`.

    Scope: reads ``ctx.client_api``, ``ctx.deployment`` and the body; writes the body,
    ``ctx.client_api``, ``ctx.upstream_path`` and ``ctx.usage``; asks the upstream for an
    identity-encoded body.
    """

    def __init__(self, app: ASGIApp, *, options: TranslationOptions | None = None) -> None:
        self._app = app
        self._options = options if options is not None else TranslationOptions()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ctx = ensure_context(scope)
        deployment = ctx.deployment
        if ctx.client_api is not ClientAPI.OPENAI_RESPONSES or deployment is None or deployment.provider.responses_api:
            await self._app(scope, receive, send)
            return
        translator = ResponsesTranslator(self._options)
        try:
            ctx, body, receive = await receive_json(scope, receive)
            try:
                ctx.set_json(translator.request(body))
            except TranslationError as exc:
                raise GatewayError(400, exc.message, param=exc.param) from None
        except GatewayError as exc:
            await send_error(send, "openai", exc)
            return
        # Inner layers see a chat request; a translation layer further in may set its own path.
        ctx.client_api = ClientAPI.OPENAI_CHAT
        ctx.upstream_path = _CHAT_PATH
        scope["headers"] = [
            (k, v) for k, v in scope["headers"] if k != b"accept-encoding" and k != b"content-length"
        ] + [(b"accept-encoding", b"identity")]  # we parse the answer
        await self._app(scope, receive, _Responder(send, translator, ctx).send)


class _Responder:
    """Per-request response rewriter: holds the start message until the body decides the headers."""

    __slots__ = ("_buffer", "_buffered", "_ctx", "_send", "_start", "_stream", "_translator")

    def __init__(self, send: Send, translator: ResponsesTranslator, ctx: RequestContext) -> None:
        self._send = send
        self._translator = translator
        self._ctx = ctx
        self._start: Message | None = None
        self._stream: StreamTranslator | None = None
        self._buffer: list[bytes] = []
        self._buffered = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            if message["status"] < 300 and _header(message["headers"], b"content-type").startswith(
                b"text/event-stream"
            ):
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
            out = stream.feed(body) if body else b""
            if not more:
                out += stream.close()
                if stream.usage:
                    self._ctx.usage.update(stream.usage)
            if out or not more:
                await self._send({"type": "http.response.body", "body": out, "more_body": more})
            return
        self._buffer.append(body)
        self._buffered += len(body)
        if more:
            if self._buffered > _MAX_BUFFERED:
                raise UpstreamError(502, "The upstream response is too large to translate.")
            return
        await self._finish(b"".join(self._buffer))

    async def _finish(self, raw: bytes) -> None:
        assert self._start is not None, "http.response.body before http.response.start"
        status: int = self._start["status"]
        if status >= 400:
            out = self._translator.error(status, raw)
        else:
            try:
                out = self._translator.response(raw)
            except UpstreamProtocolError as exc:
                await send_error(self._send, "openai", UpstreamError(502, exc.message, code="upstream_protocol_error"))
                return
            if self._translator.usage:
                self._ctx.usage.update(self._translator.usage)
        headers = [(k, v) for k, v in self._start["headers"] if k not in _BODY_HEADERS]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
        await self._send({**self._start, "headers": headers})
        await self._send({"type": "http.response.body", "body": out, "more_body": False})


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    for key, value in headers:
        if key == name:
            return value
    return b""
