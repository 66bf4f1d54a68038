"""The relay: one upstream exchange streamed to the client, under the request's deadlines.

The relay runs in the request's own task inside an anyio cancel scope that carries the deadlines
(first byte, then total) and that a watcher cancels when the client disconnects. The scope swallows
only its own cancellation: a cancellation from outside (the server, an outer scope) goes on up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx
from starlette.types import Receive, Send

from .context import RequestContext
from .disconnect import until_disconnect
from .errors import GatewayError, ResponseComplete, UpstreamError, render_stream_error, send_error
from .headers import HOP_BY_HOP_HEADERS
from .providers.types import Provider
from .timeouts import UpstreamTimeouts
from .transport import UpstreamResponse

__all__ = ["Relay", "classify_transport_error"]

logger = logging.getLogger("asgi_llmroute.forward")

# Not relayed to the client: connection-specific headers, and the ones the server sets itself.
_RESPONSE_DROP = HOP_BY_HOP_HEADERS | {b"server", b"date"}

# One table from transport failures to gateway errors and failure kinds (``ctx.last_error``,
# read by the retry layer); the first match wins, so specific first.
_TRANSPORT_ERRORS: tuple[tuple[type[httpx.TransportError], int, str, str], ...] = (
    (httpx.TimeoutException, 504, "timeout", "Provider {name!r} did not answer in time."),
    (httpx.ConnectError, 502, "connect", "Could not connect to provider {name!r}."),
    (httpx.RemoteProtocolError, 502, "protocol", "Provider {name!r} closed the connection or broke the HTTP protocol."),
    (httpx.TransportError, 502, "transport", "The request to provider {name!r} failed."),
)


def classify_transport_error(exc: httpx.TransportError, provider: str) -> tuple[str, UpstreamError]:
    """The failure kind (``ctx.last_error``) and the gateway error (502 or 504) for ``exc``."""
    for cls, status, kind, message in _TRANSPORT_ERRORS:
        if isinstance(exc, cls):
            code = "upstream_timeout" if status == 504 else "upstream_unavailable"
            return kind, UpstreamError(status, message.format(name=provider), code=code)
    raise AssertionError("unreachable: httpx.TransportError is the last row")  # pragma: no cover


def _reason(exc: BaseException) -> str:
    """``Class: message`` for the log; transport messages name hosts and causes, never credentials."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class Relay:
    """One upstream exchange relayed to the client, and how it ended."""

    __slots__ = (
        "ctx",
        "disconnected",
        "finished",
        "is_stream",
        "last",
        "provider",
        "scope",
        "send",
        "started",
        "timeouts",
        "total_deadline",
    )

    def __init__(self, send: Send, ctx: RequestContext, provider: Provider, timeouts: UpstreamTimeouts) -> None:
        self.send = send
        self.ctx = ctx
        self.provider = provider
        self.timeouts = timeouts
        self.total_deadline = math.inf
        self.scope: anyio.CancelScope | None = None
        self.started = False  # the response start went to the client
        self.is_stream = False
        self.last = b""  # the last chunk relayed: whether an error event must first close a partial frame
        self.finished = False  # ran to its end (an error response counts), not cut by a deadline
        self.disconnected = False

    async def __call__(self, open_upstream: Callable[[], Awaitable[UpstreamResponse]], receive: Receive) -> None:
        """Relay the answer to ``open_upstream()`` (which sends the request); on a deadline or a
        disconnect, end the way the client expects."""
        timeouts = self.timeouts
        now = anyio.current_time()
        self.total_deadline = now + timeouts.total
        first_byte = timeouts.first_byte
        deadline = self.total_deadline if first_byte is None else min(self.total_deadline, now + first_byte)
        with anyio.CancelScope(deadline=deadline) as scope:
            self.scope = scope
            # The disconnect watcher runs beside the relay. On asyncio it is one plain task, cancelled
            # when the relay ends: an anyio task group per request costs several times the CPU of the
            # rest of the relay's bookkeeping (docs/performance.md), and the watcher needs none of its
            # guarantees (it only ever calls ``scope.cancel()``). Elsewhere (trio) it is in a task group.
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                watcher = loop.create_task(_cancel_on_disconnect(receive, self, scope))
                try:
                    await self.run(open_upstream)
                finally:
                    watcher.cancel()
            else:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_cancel_on_disconnect, receive, self, scope)
                    try:
                        await self.run(open_upstream)
                    finally:
                        tg.cancel_scope.cancel()
        if scope.cancelled_caught and not self.finished and not self.disconnected:
            await self.timed_out()

    async def run(self, open_upstream: Callable[[], Awaitable[UpstreamResponse]]) -> None:
        # Errors are written in the provider's format, like everything else on this response, so
        # that a translation layer in front translates them too (without one, the formats agree).
        ctx, send = self.ctx, self.send
        name, wire = self.provider.name, self.provider.api
        try:
            response = await open_upstream()
        except httpx.TransportError as exc:
            logger.warning("upstream %s failed before responding: %s", name, _reason(exc))
            ctx.last_error, error = classify_transport_error(exc, name)
            await self._send_error(error)
            self.finished = True
            return
        try:
            # ASGI wants lowercase header names; upstreams (nginx, ...) may send them capitalised.
            headers: list[tuple[bytes, bytes]] = []
            for key, value in response.headers:
                key = key.lower()
                if key not in _RESPONSE_DROP:
                    headers.append((key, value))
                    if key == b"content-type":
                        self.is_stream = value.startswith(b"text/event-stream")
            start = {"type": "http.response.start", "status": response.status, "headers": headers}
            read = response.read
            try:
                # Everything that has arrived goes in one message; the last piece carries the end.
                while chunk := await read():
                    if not self.started:
                        self._committed(response.status)
                        await send(start)
                    self.last = chunk
                    if response.eof:
                        break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                else:
                    chunk = b""
            except httpx.TransportError as exc:
                logger.warning("upstream %s failed mid-response: %s", name, _reason(exc))
                ctx.last_error, error = classify_transport_error(exc, name)
                if not self.started:
                    await self._send_error(error)  # nothing committed yet: a clean, retryable error
                else:
                    # Committed: nothing can be retried. Say so in-band where the format allows it.
                    ctx.gateway_error = error
                    tail = _stream_error_tail(wire, error, self.last) if self.is_stream else b""
                    await send({"type": "http.response.body", "body": tail, "more_body": False})
                self.finished = True
                return
            if not self.started:
                self._committed(response.status)
                await send(start)
            await send({"type": "http.response.body", "body": chunk, "more_body": False})
            self.finished = True
        except ResponseComplete:
            # A layer in front finished the response itself (e.g. answered 502 for a body too large to
            # translate): stop reading the upstream.
            self.finished = True
        except OSError:
            # The client went away while we were writing (ASGI 2.4 servers raise here).
            if ctx.completed:
                self.finished = True  # after the final event: the request is complete
                return
            logger.info("client disconnected during the response from %s", name)
            self.disconnected = True
            ctx.last_error = "disconnect"
        finally:
            await response.aclose()

    def _committed(self, status: int) -> None:
        """The first body byte is in: the first-byte deadline is over; a stream has no total deadline
        unless ``stream_total`` sets one. ``status`` is the attempt's (``ctx.attempt_status``)."""
        self.ctx.attempt_status = status
        self.ctx.first_byte = time.perf_counter()
        self.started = True
        timeouts, scope = self.timeouts, self.scope
        if self.is_stream:
            stream_total = timeouts.stream_total
            began = self.total_deadline - timeouts.total
            self.total_deadline = math.inf if stream_total is None else began + stream_total
        if scope is not None and scope.deadline != self.total_deadline:
            scope.deadline = self.total_deadline

    async def timed_out(self) -> None:
        """The first-byte or total deadline passed (the relay was cancelled): say so."""
        ctx, name, wire, timeouts = self.ctx, self.provider.name, self.provider.api, self.timeouts
        ctx.last_error = "timeout"
        if self.started:
            which, limit = ("stream", timeouts.stream_total) if self.is_stream else ("total", timeouts.total)
        elif timeouts.first_byte is not None and anyio.current_time() < self.total_deadline:
            which, limit = "first byte", timeouts.first_byte
        else:
            which, limit = "total", timeouts.total
        logger.warning("upstream %s exceeded its %s timeout (%ss)", name, which, limit)
        error = UpstreamError(
            504, f"Provider {name!r} did not answer in time ({which} timeout, {limit:g}s).", code="upstream_timeout"
        )
        ctx.gateway_error = error
        try:
            if not self.started:
                ctx.attempt_status = error.status
                await send_error(self.send, wire, error)
            else:
                tail = _stream_error_tail(wire, error, self.last) if self.is_stream else b""
                await self.send({"type": "http.response.body", "body": tail, "more_body": False})
        except (OSError, ResponseComplete):
            self.disconnected = True

    async def _send_error(self, error: UpstreamError) -> None:
        self.ctx.gateway_error = error
        self.ctx.attempt_status = error.status
        try:
            await send_error(self.send, self.provider.api, error)
        except OSError:
            self.disconnected = True


def _stream_error_tail(wire: str, error: GatewayError, last: bytes) -> bytes:
    """The error event that ends a committed stream; when the upstream was cut inside an event
    (``last``, the final bytes relayed, do not end one), first a blank line that closes that frame,
    so the client's parser sees the error event on its own (a frame without data is never dispatched)."""
    event = render_stream_error(wire, error)
    if len(last) >= 4 and last.endswith((b"\n\n", b"\r\n\r\n", b"\r\r")):
        return event
    return b"\n\n" + event


async def _cancel_on_disconnect(receive: Receive, relay: Relay, scope: anyio.CancelScope) -> None:
    await until_disconnect(receive)
    if relay.finished:
        return  # servers also say "disconnect" once the response is complete
    if relay.ctx.completed:
        # The final event reached the client, which then left (the SDKs do): the request is
        # complete; only the upstream's end of body is not waited for.
        relay.finished = True
    else:
        relay.disconnected = True
        relay.ctx.last_error = "disconnect"
    scope.cancel()
