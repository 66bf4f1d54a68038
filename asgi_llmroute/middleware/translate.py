"""Format translation between OpenAI Chat Completions and Anthropic Messages: thin ASGI glue over
the pure :mod:`asgi_llmroute.formats` core."""

from __future__ import annotations

import dataclasses
import functools
import math

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import ClientAPI, RequestContext, ensure_context, receive_json
from ..errors import GatewayError, UpstreamError, send_error
from ..formats import (
    StreamTranslator,
    TranslationError,
    TranslationOptions,
    Translator,
    UpstreamProtocolError,
    new_translator,
)
from ..providers.model import Provider
from ..responses import send_json

__all__ = ["TranslationMiddleware"]

_UPSTREAM_PATH = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
_STREAM_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # stop nginx-style proxies from buffering the stream
)
# Headers that describe the upstream body, which translation replaces.
_BODY_HEADERS = frozenset({b"content-type", b"content-length", b"content-encoding", b"cache-control"})
# Largest non-stream upstream body translation buffers; a larger one is answered with 502.
_MAX_BUFFERED = 64 * 1024 * 1024


class TranslationMiddleware:
    """Translate requests and responses when the client's API differs from the provider's.

    Same-format requests pass straight through (the forwarder relays their bytes). Otherwise the
    request body is rewritten for the provider's API (and its endpoint set in ``ctx.upstream_path``),
    and the response, JSON, error or SSE stream, is rewritten for the client as it arrives.

    ``options`` are the translation defaults (see docs/translation.md); each Anthropic provider's
    configured ``anthropic-version`` header overrides ``options.anthropic_version`` for it.

    Scope: reads ``ctx.client_api``, ``ctx.deployment`` and the body; writes the body,
    ``ctx.upstream_path`` and ``ctx.usage``; asks the upstream for an identity-encoded body.
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
        client = ctx.client_api
        if deployment is None or deployment.provider.api == client.wire:
            await self._app(scope, receive, send)
            return
        provider = deployment.provider
        try:
            ctx, body, receive = await receive_json(scope, receive)
            if client is ClientAPI.ANTHROPIC_MESSAGES and _is_count_tokens(scope):
                await send_json(send, 200, {"input_tokens": _estimate_tokens(ctx.body)})
                return
            if client not in (ClientAPI.OPENAI_CHAT, ClientAPI.ANTHROPIC_MESSAGES):
                raise GatewayError(
                    400,
                    f"Model {ctx.model!r} is served by provider {provider.name!r} ({provider.api} API), "
                    "which cannot serve this endpoint.",
                    param="model",
                )
            translator = new_translator(client.wire, provider.api, _options_for(self._options, provider))  # type: ignore[arg-type]
            try:
                ctx.set_json(translator.request(body))
            except TranslationError as exc:
                raise GatewayError(400, exc.message, param=exc.param) from None
        except GatewayError as exc:
            await send_error(send, client.wire, exc)
            return
        ctx.upstream_path = _UPSTREAM_PATH[provider.api]
        scope["headers"] = _upstream_request_headers(scope["headers"], provider.api)
        await self._app(scope, receive, _Responder(send, translator, ctx).send)


class _Responder:
    """Per-request response rewriter: holds the start message until the body decides the headers."""

    __slots__ = ("_buffer", "_ctx", "_send", "_start", "_stream", "_translator")

    def __init__(self, send: Send, translator: Translator, ctx: RequestContext) -> None:
        self._send = send
        self._translator = translator
        self._ctx = ctx
        self._start: Message | None = None
        self._stream: StreamTranslator | None = None
        self._buffer: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            status = message["status"]
            content_type = _header(message["headers"], b"content-type")
            if status < 300 and content_type.startswith(b"text/event-stream"):
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
        if more:
            if sum(map(len, self._buffer)) > _MAX_BUFFERED:
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
                wire = self._ctx.client_api.wire
                await send_error(self._send, wire, UpstreamError(502, exc.message, code="upstream_protocol_error"))
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


def _upstream_request_headers(headers: list[tuple[bytes, bytes]], upstream: str) -> list[tuple[bytes, bytes]]:
    """Ask for an identity-encoded body (we parse it) and drop the other API's protocol headers."""
    foreign = b"anthropic-" if upstream == "openai" else b"openai-"
    out = [
        (k, v) for k, v in headers if k != b"accept-encoding" and k != b"content-length" and not k.startswith(foreign)
    ]
    out.append((b"accept-encoding", b"identity"))
    return out


@functools.lru_cache(maxsize=256)
def _options_for(options: TranslationOptions, provider: Provider) -> TranslationOptions:
    for key, value in provider.headers:
        if key == "anthropic-version":
            return dataclasses.replace(options, anthropic_version=value)
    return options


def _is_count_tokens(scope: Scope) -> bool:
    path: str = scope["path"]
    return path.endswith("/v1/messages/count_tokens")


def _estimate_tokens(body: bytes) -> int:
    # OpenAI-compatible APIs have no token-counting endpoint; about 4 bytes per token is the
    # usual estimate, and callers (Claude Code) only use it to decide when to compact.
    return max(1, math.ceil(len(body) / 4))
