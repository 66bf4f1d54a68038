"""Usage accounting for responses relayed untranslated: ``ctx.usage`` from the bytes, unchanged."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import ClientAPI, RequestContext, ensure_context, receive_body
from ..errors import GatewayError, send_error
from ..formats.usage_scan import OpenAIUsageStripper, StreamUsageScanner, Wire, usage_from_json

__all__ = ["UsageMiddleware"]

# Largest JSON body kept to read its usage; a larger one is relayed without accounting.
_MAX_JSON = 4 * 1024 * 1024
_PROVIDER_WIRE: dict[ClientAPI, Wire] = {
    ClientAPI.ANTHROPIC_MESSAGES: "anthropic",
    ClientAPI.GEMINI_GENERATE: "gemini",  # google-genai clients relayed to Gemini-format providers
}
_ACCOUNTED = frozenset({ClientAPI.OPENAI_CHAT, ClientAPI.ANTHROPIC_MESSAGES, ClientAPI.GEMINI_GENERATE})


class UsageMiddleware:
    """Fill ``ctx.usage`` from same-format upstream responses (translated ones are done by translation).

    - JSON responses are kept (up to 4 MiB) while they are relayed and parsed once at the end.
    - Event streams are scanned line by line as they pass; only lines that can carry usage are parsed.
    - An OpenAI chat stream whose client did not ask for ``stream_options.include_usage`` is asked for it
      (``stream_usage=True``) and the extra usage chunk and ``"usage": null`` members are removed from
      what the client receives, so it gets the stream it asked for.
    - Chat and messages requests ask the upstream for an identity-encoded body, which it can read.

    Put it between translation and the forwarder. Scope: reads ``ctx.client_api``, ``ctx.deployment``
    and the body; writes ``ctx.usage``, the body (``stream_options``) and the ``accept-encoding`` header.
    """

    def __init__(self, app: ASGIApp, *, stream_usage: bool = True) -> None:
        self._app = app
        self._stream_usage = stream_usage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ctx = ensure_context(scope)
        deployment = ctx.deployment
        client = ctx.client_api
        provider_wire = _PROVIDER_WIRE.get(client, "openai")
        if deployment is None or deployment.provider.api != provider_wire or ctx.upstream_path is not None:
            # Unresolved, or translated (the translating layer reads usage as it parses): not ours.
            await self._app(scope, receive, send)
            return
        wire: Wire = "responses" if client is ClientAPI.OPENAI_RESPONSES else provider_wire
        strip = False
        if client in _ACCOUNTED:
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"accept-encoding"]
            scope["headers"].append((b"accept-encoding", b"identity"))
            if self._stream_usage and client is ClientAPI.OPENAI_CHAT:
                try:
                    ctx, receive = await receive_body(scope, receive)
                except GatewayError as exc:
                    await send_error(send, client.wire, exc)
                    return
                strip = _ask_for_stream_usage(ctx)
        await self._app(scope, receive, _Observer(send, ctx, wire, strip).send)


def _ask_for_stream_usage(ctx: RequestContext) -> bool:
    """Set ``stream_options.include_usage`` on a stream request without it; True if it was set."""
    try:
        body = ctx.json()
    except GatewayError:
        return False  # not ours to answer: the upstream will
    if body.get("stream") is not True:
        return False
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return False
    body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    ctx.set_json(body)
    return True


class _Observer:
    """Per-request response watcher; rewrites only a stream whose usage the gateway asked for."""

    __slots__ = ("_buffer", "_ctx", "_scanner", "_seen", "_send", "_size", "_strip", "_stripper", "_wire")

    def __init__(self, send: Send, ctx: RequestContext, wire: Wire, strip: bool) -> None:
        self._send = send
        self._ctx = ctx
        self._wire: Wire = wire
        self._strip = strip
        self._scanner: StreamUsageScanner | None = None
        self._stripper: OpenAIUsageStripper | None = None
        self._buffer: list[bytes] | None = None
        self._size = 0
        self._seen: dict[str, int] | None = None

    async def send(self, message: Message) -> None:
        if message["type"] != "http.response.body":
            await self._send(self._start(message) if message["type"] == "http.response.start" else message)
            return
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        scanner = self._scanner
        if scanner is not None:  # the hot path of a stream: look, never touch
            if body:
                scanner.feed(body)
            if not more:
                scanner.close()
            if scanner.usage is not self._seen:
                # Kept current, so that a stream the client leaves after its final event is counted.
                self._seen = scanner.usage
                self._set(scanner.usage)
            await self._send(message)
            return
        stripper = self._stripper
        if stripper is not None:
            out = stripper.feed(body) if body else b""
            if not more:
                out += stripper.close()
            if stripper.usage is not self._seen:
                self._seen = stripper.usage
                self._set(stripper.usage)
            elif out is body:
                await self._send(message)  # unchanged
                return
            if out or not more:
                await self._send({"type": "http.response.body", "body": out, "more_body": more})
            return
        if self._buffer is not None:
            self._size += len(body)
            if self._size > _MAX_JSON:
                self._buffer = None
            else:
                self._buffer.append(body)
                if not more:
                    self._set(usage_from_json(self._wire, b"".join(self._buffer)))
        await self._send(message)

    def _start(self, message: Message) -> Message:
        if message["status"] >= 300:
            return message
        content_type = encoding = b""
        for key, value in message["headers"]:
            if key == b"content-type":
                content_type = value
            elif key == b"content-encoding":
                encoding = value
        if encoding and encoding != b"identity":
            return message  # compressed anyway: relayed as is, not accounted
        if content_type.startswith(b"text/event-stream"):
            if self._strip:
                self._stripper = OpenAIUsageStripper()
                # The body shrinks by the usage chunk: a declared length would be wrong.
                return {**message, "headers": [(k, v) for k, v in message["headers"] if k != b"content-length"]}
            self._scanner = StreamUsageScanner(self._wire)
        elif content_type.startswith(b"application/json"):
            self._buffer = []
        return message

    def _set(self, usage: dict[str, int] | None) -> None:
        if usage:
            self._ctx.usage.update(usage)
