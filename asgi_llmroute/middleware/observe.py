"""Request ids, one access log line per request, and the request's metrics: the outermost layer."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import ClientAPI, RequestContext, ensure_context, get_context, route_path
from ..errors import ClientDisconnected, GatewayError, send_error
from ..logs import REQUEST_ID
from ..metrics import GatewayMetrics, upstream_error_kind
from ..secret import Secret
from .auth import TokenLookup

__all__ = [
    "REQUEST_ID_HEADER",
    "ObserveMiddleware",
    "UpstreamErrorsMiddleware",
    "credential_matcher",
    "valid_request_id",
]

REQUEST_ID_HEADER = b"x-request-id"
# What a client-chosen id may look like; anything else (header injection included) gets a fresh id.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
# A provider's own x-request-id is kept under this name (OpenAI sends one; support asks for it).
_UPSTREAM_ID_HEADER = b"x-upstream-request-id"

access_logger = logging.getLogger("asgi_llmroute.access")
_error_logger = logging.getLogger("asgi_llmroute.observe")


def valid_request_id(value: bytes) -> bool:
    """Whether a client's ``x-request-id`` is used as is: 1-128 of ``A-Z a-z 0-9 . _ : -``."""
    return _WELL_FORMED.fullmatch(value) is not None


def credential_matcher(tokens: TokenLookup, secrets: Iterable[Secret] = ()) -> Callable[[str], bool]:
    """A check for :class:`ObserveMiddleware`: is this value a router token or one of ``secrets``?"""
    digests = frozenset(hashlib.sha256(s.reveal().encode()).digest() for s in secrets)

    def is_credential(value: str) -> bool:
        return tokens.lookup(value) is not None or hashlib.sha256(value.encode()).digest() in digests

    return is_credential


class ObserveMiddleware:
    """Give every request an id, log one access line when it ends, and record its metrics.

    - The id is the client's ``x-request-id`` when well-formed (:func:`valid_request_id`) and not a
      credential (``is_credential``, see :func:`credential_matcher`: ids are logged), else a new
      random hex id. It is set as ``ctx.request_id`` and in :data:`asgi_llmroute.logs.REQUEST_ID` while
      the request is handled, and returned as the response's ``x-request-id`` (an upstream's own
      ``x-request-id`` is renamed ``x-upstream-request-id``).
    - One line on the ``asgi_llmroute.access`` logger per request (``access_log=True``), with the
      fields in ``record.fields``: status 499 when the client went away before the response ended,
      500 when an exception escaped (then a 500 in the client's format is sent if nothing was yet).
    - ``metrics``: in-flight gauge, then :meth:`GatewayMetrics.record` once the request ends.

    Put it first (outermost). Scope: writes ``ctx.request_id`` and ``ctx.response`` (what went out to
    the client, kept current: a layer around it reads that instead of watching ``send``); reads
    everything else at the end.
    """

    #: Keeps ``ctx.response`` current: a layer around it need not watch ``send``.
    records_response = True

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: GatewayMetrics | None = None,
        access_log: bool = True,
        is_credential: Callable[[str], bool] | None = None,
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._access_log = access_log
        self._is_credential = is_credential

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        ctx = ensure_context(scope)
        request_id = ctx.request_id or _request_id(scope["headers"], self._is_credential)
        ctx.request_id = request_id
        token = REQUEST_ID.set(request_id)
        exchange = _Exchange(send, request_id.encode(), ctx)
        ctx.response = exchange
        api = ctx.client_api.value  # inner layers may change it (Responses API served over chat)
        in_flight = self._metrics.in_flight_for(api) if self._metrics is not None else None
        if in_flight is not None:
            in_flight.inc()
        status: int | None = None
        try:
            await self._app(scope, receive, exchange.send)
        except ClientDisconnected:
            pass  # raised by an inner app of the user's: no answer, no traceback (logged as 499)
        except Exception:
            status = 500
            _error_logger.exception("unhandled error")
            if exchange.status is None:
                with contextlib.suppress(OSError):  # the client may be gone too
                    await send_error(exchange.send, ctx.client_api.wire, GatewayError(500, "Internal gateway error."))
            raise
        except BaseException:
            status = 499  # cancelled: the client or the server went away
            raise
        finally:
            if in_flight is not None:
                in_flight.dec()
            if status is None:
                done = exchange.done or ctx.completed  # the final event reached the client: complete
                status = exchange.status if done and exchange.status is not None else 499
            duration = time.perf_counter() - started
            ttfb = exchange.first_byte - started if exchange.first_byte is not None else None
            if self._metrics is not None:
                self._metrics.record(ctx, status, duration, ttfb, exchange.stream)
            if self._access_log and access_logger.isEnabledFor(logging.INFO):
                _log(scope, ctx, api, status, duration, ttfb, exchange)
            REQUEST_ID.reset(token)


def _request_id(headers: list[tuple[bytes, bytes]], is_credential: Callable[[str], bool] | None) -> str:
    for name, value in headers:
        if name == REQUEST_ID_HEADER and valid_request_id(value):
            text = value.decode("ascii")
            if is_credential is None or not is_credential(text):
                return text
            break
    return os.urandom(16).hex()  # 128 random bits like uuid4, at a quarter of the cost


# The line that opens a stream's final event, per client API: once it has gone to the client, the
# request is complete (``ctx.completed``), whether or not the client waits for the end of the body.
_FINAL_EVENT = {
    ClientAPI.OPENAI_CHAT: b"data: [DONE]",
    ClientAPI.ANTHROPIC_MESSAGES: b"event: message_stop",
    ClientAPI.OPENAI_RESPONSES: b"event: response.completed",
}


def _has_final_event(marker: bytes, body: bytes) -> bool:
    """Whether a line of ``body`` starts with ``marker``. One ``find`` for a body without it (``in``
    on bytes first tries its operand as an integer, and a second search costs as much again)."""
    at = body.find(marker)
    if at <= 0:
        return at == 0
    return body[at - 1] == 10 or body.find(b"\n" + marker, at) >= 0  # 10: "\n"


class _Exchange:
    """Per-request view of the response: adds the id header, notes status, first byte and end."""

    __slots__ = ("_ctx", "_final", "_id", "_send", "done", "first_byte", "last", "status", "stream", "upstream_id")

    def __init__(self, send: Send, request_id: bytes, ctx: RequestContext) -> None:
        self._send = send
        self._id = request_id
        self._ctx = ctx
        self._final = _FINAL_EVENT.get(ctx.client_api)
        self.status: int | None = None
        self.first_byte: float | None = None
        self.done = False
        self.stream = False
        self.last = b""
        self.upstream_id: str | None = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            body: bytes = message.get("body", b"")
            if body:
                self.last = body
                if self.first_byte is None:
                    self.first_byte = time.perf_counter()
            if not message.get("more_body", False):
                self.done = True
            elif self.stream and self._final is not None and _has_final_event(self._final, body):
                await self._send(message)
                self._ctx.completed = self.status is not None and self.status < 400
                return
        elif kind == "http.response.start":
            self.status = message["status"]
            headers: list[tuple[bytes, bytes]] = []
            for key, value in message["headers"]:
                if key == REQUEST_ID_HEADER:
                    self.upstream_id = value.decode("latin-1")
                    key = _UPSTREAM_ID_HEADER
                elif key == b"content-type":
                    self.stream = value.startswith(b"text/event-stream")
                headers.append((key, value))
            headers.append((REQUEST_ID_HEADER, self._id))
            message = {**message, "headers": headers}
        await self._send(message)


def _log(
    scope: Scope, ctx: RequestContext, api: str, status: int, duration: float, ttfb: float | None, exchange: _Exchange
) -> None:
    deployment = ctx.deployment
    usage = ctx.usage
    fields: dict[str, Any] = {
        "request_id": ctx.request_id,
        "method": scope["method"],
        "path": route_path(scope),
        "api": api,
        "token": ctx.principal.name if ctx.principal is not None else None,
        "model": ctx.model,
        "deployment": f"{deployment.provider.name}/{deployment.model}" if deployment is not None else None,
        "status": status,
        "stream": exchange.stream,
        "attempts": ctx.attempts,
        "ttfb_ms": round(ttfb * 1000, 1) if ttfb is not None else None,
        "duration_ms": round(duration * 1000, 1),
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
    }
    if usage.get("cache_read_tokens"):
        fields["cache_read_tokens"] = usage["cache_read_tokens"]
    if usage.get("cache_write_tokens"):
        fields["cache_write_tokens"] = usage["cache_write_tokens"]
    if usage.get("web_search_requests"):  # Anthropic's server-side searches, billed per search
        fields["web_search_requests"] = usage["web_search_requests"]
    if exchange.upstream_id is not None:
        fields["upstream_request_id"] = exchange.upstream_id
    # makeRecord + handle: Logger.info would also walk the stack (findCaller) on every request.
    args = (scope["method"], fields["path"], status, fields["duration_ms"])
    record = access_logger.makeRecord(
        access_logger.name, logging.INFO, __file__, 0, "%s %s %s %.1fms", args, None, extra={"fields": fields}
    )
    access_logger.handle(record)


class UpstreamErrorsMiddleware:
    """Count every failed upstream attempt (retried ones included) in ``metrics.upstream_errors``.

    Put it directly around the forwarder, inside any retry layer. The kind is the forwarder's
    ``ctx.last_error`` (``connect``, ``timeout``, ``protocol``, ``transport``) or, for an upstream
    error response, its status class (:func:`asgi_llmroute.metrics.upstream_error_kind`). Around a
    :class:`~asgi_llmroute.Forwarder` (anything with ``records_attempt_status``), the status is its
    ``ctx.attempt_status``; around another app, the layer watches the response start.
    """

    def __init__(self, app: ASGIApp, *, metrics: GatewayMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if getattr(self._app, "records_attempt_status", False):
            # The forwarder says which status it answered with: no send wrapper on every message.
            attempt = ensure_context(scope)
            attempt.attempt_status = 0
            try:
                await self._app(scope, receive, send)
            finally:
                failed = upstream_error_kind(attempt.attempt_status, attempt.last_error)
                if failed is not None:
                    self._metrics.upstream_error(attempt, failed)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, watch)
        finally:
            ctx = get_context(scope)
            kind = upstream_error_kind(status, ctx.last_error) if ctx is not None else None
            if kind is not None and ctx is not None:
                self._metrics.upstream_error(ctx, kind)
