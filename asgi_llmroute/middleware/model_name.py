"""Responses carry the model name the client asked for: thin ASGI glue over
:class:`asgi_llmroute.formats.model_name.ModelNameRewriter`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import ClientAPI, RequestContext, ensure_context
from ..formats.model_name import ModelNameRewriter

__all__ = ["ModelNameMiddleware", "ModelNaming"]

#: Which model name answers carry: the one the client asked for, or the upstream's own id.
ModelNaming = Literal["client", "upstream"]

_REWRITTEN = frozenset({ClientAPI.OPENAI_CHAT, ClientAPI.ANTHROPIC_MESSAGES, ClientAPI.OPENAI_RESPONSES})


class ModelNameMiddleware:
    """Put ``ctx.model`` (the client-facing name) in the ``model`` of every successful chat, messages and
    Responses answer: JSON bodies and event streams, relayed or translated alike.

    The client asked for ``claude-sonnet-4-5`` (an alias, or a name routed to a dated id or to another
    provider's model); the answer says ``claude-sonnet-4-5``, as LiteLLM's proxy does. Only the ``model``
    span is replaced; nothing else is parsed or changed. A JSON body's ``content-length`` is corrected;
    compressed bodies and error responses pass unchanged.

    ``default`` is ``"client"`` (the name asked for) or ``"upstream"`` (answers keep the upstream's own id);
    ``overrides`` maps client-facing model names to either, for those models.

    Put it after :class:`ProviderResolverMiddleware` (it reads ``ctx.model``), outside the retry and
    translation layers, so it sees the answer in the client's format. Scope: reads ``ctx.client_api`` and
    ``ctx.model``.
    """

    def __init__(
        self, app: ASGIApp, *, default: ModelNaming = "client", overrides: Mapping[str, ModelNaming] | None = None
    ) -> None:
        self._app = app
        self._default = default
        self._overrides = dict(overrides or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ctx = ensure_context(scope)
        model = ctx.model
        if model is None or ctx.client_api not in _REWRITTEN or self._overrides.get(model, self._default) != "client":
            await self._app(scope, receive, send)
            return
        await self._app(scope, receive, _Rename(send, ctx, ctx.client_api).send)


class _Rename:
    __slots__ = ("_api", "_ctx", "_fed", "_length", "_rewriter", "_send", "_start")

    def __init__(self, send: Send, ctx: RequestContext, api: ClientAPI) -> None:
        self._send = send
        self._ctx = ctx
        self._api = api  # captured: inner layers may change ctx.client_api
        self._start: Message | None = None
        self._length: int | None = None
        self._fed = 0  # body bytes taken while the start is held
        self._rewriter: ModelNameRewriter | None = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            message = self._begin(message)
            if self._start is None:
                await self._send(message)
            return
        rewriter = self._rewriter
        if kind != "http.response.body" or rewriter is None:
            await self._send(message)
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        out = rewriter.feed(body) if body else b""
        if not more:
            out += rewriter.close()
        start = self._start
        if start is not None:
            self._fed += len(body)
            if not out and more:
                return  # a JSON body still looking for its model span
            self._start = None
            if self._length is not None:
                # All that was rewritten is in ``out``; the rest is unchanged: correct the length once.
                length = self._length + len(out) - self._fed
                headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
                headers.append((b"content-length", str(length).encode()))
                start = {**start, "headers": headers}
            await self._send(start)
        if out is body:
            await self._send(message)
        elif out or not more:
            await self._send({"type": "http.response.body", "body": out, "more_body": more})

    def _begin(self, message: Message) -> Message:
        if message["status"] >= 300:
            return message
        content_type = encoding = b""
        length: int | None = None
        for key, value in message["headers"]:
            if key == b"content-type":
                content_type = value
            elif key == b"content-encoding":
                encoding = value
            elif key == b"content-length" and value.isdigit():
                length = int(value)
        if encoding and encoding != b"identity":
            return message
        name = self._ctx.model
        assert name is not None
        if content_type.startswith(b"text/event-stream"):
            once = self._api is ClientAPI.ANTHROPIC_MESSAGES
            self._rewriter = ModelNameRewriter(name, stream=True, once=once)
            if length is not None:  # a stream with a length (rare): it changes, so drop it
                return {**message, "headers": [(k, v) for k, v in message["headers"] if k != b"content-length"]}
            return message
        if content_type.startswith(b"application/json"):
            self._rewriter = ModelNameRewriter(name, stream=False, once=True)
            self._start = message  # held until the span is found: the length may change
            self._length = length
        return message
