"""How ``llmroute serve`` runs the gateway on uvicorn: the edge of the HTTP connection.

uvicorn's fast protocol (httptools) reads a request head without a size limit and waits for it
forever. :class:`GuardedHttpToolsProtocol` bounds both, answers in JSON, and speaks HTTP/1.0 as
RFC 9112 asks:

- a request head (request line and headers) larger than ``max_head_bytes`` gets 431 and the
  connection is closed, before the head is buffered any further (so unauthenticated clients cannot
  make the server hold megabytes of headers);
- a request head that has not fully arrived ``head_timeout`` seconds after its first byte (or after
  the connection was opened) gets 408 and the connection is closed (slowloris);
- a request body that stops arriving (no byte for ``body_timeout`` seconds while the server is reading
  it) gets 408 and the connection is closed, so a short body under a longer Content-Length does not hold
  the connection and the request forever;
- a request line the parser refuses (an unknown method, garbage) gets a JSON 400/501 instead of
  uvicorn's plain-text 400;
- an HTTP/1.0 client gets a streamed response without ``Transfer-Encoding: chunked`` (which HTTP/1.0
  does not have): the body ends when the connection closes;
- a websocket handshake (the gateway has no websocket route) is answered as the plain HTTP request it
  also is, with the gateway's JSON error, and the connection is closed. No websocket library is loaded
  (``ws="none"``: importing one took a tenth of the start-up).

:class:`GracefulShutdown` ends what is still running when the server gives up waiting on shutdown
(uvicorn's ``timeout_graceful_shutdown``): open event streams get an error event in the client's
format, requests not yet answered get 503, and the process exits instead of waiting for clients.

Both build on uvicorn's own classes; this module imports uvicorn (the ``server`` extra) and is
only loaded by ``llmroute serve`` or by users who run uvicorn themselves.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.supervisors import Multiprocess

from .context import get_context
from .errors import GatewayError, render_error, render_stream_error, send_error

__all__ = [
    "DEFAULT_HEAD_TIMEOUT",
    "DEFAULT_MAX_HEAD_BYTES",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "GracefulShutdown",
    "GuardedHttpToolsProtocol",
    "ServeConfig",
    "serve",
]

DEFAULT_MAX_HEAD_BYTES = 64 * 1024
DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_SHUTDOWN_TIMEOUT = 30.0

_METHOD_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ ")
_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    501: b"Not Implemented",
}


class ServeConfig(uvicorn.Config):
    """``uvicorn.Config`` with the request-head limits of :class:`GuardedHttpToolsProtocol`.

    The limits travel with the config, so worker processes (which get the config pickled) apply them
    too. ``http`` defaults to the guarded protocol; ``ws`` to ``"none"``; ``timeout_graceful_shutdown``
    to 30 seconds.
    """

    def __init__(
        self,
        app: Any,
        *,
        max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
        head_timeout: float = DEFAULT_HEAD_TIMEOUT,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        if max_head_bytes < 1024:
            raise ValueError("max_head_bytes must be at least 1024")
        if not head_timeout > 0 or not body_timeout > 0 or not shutdown_timeout > 0:
            raise ValueError("head_timeout, body_timeout and shutdown_timeout must be positive")
        kwargs.setdefault("http", GuardedHttpToolsProtocol)
        kwargs.setdefault("ws", "none")  # no websocket route: handshakes get the gateway's HTTP answer
        # uvicorn counts whole seconds here.
        kwargs.setdefault("timeout_graceful_shutdown", max(1, math.ceil(shutdown_timeout)))
        super().__init__(app, **kwargs)
        self.max_head_bytes = max_head_bytes
        self.head_timeout = float(head_timeout)
        self.body_timeout = float(body_timeout)


def serve(config: ServeConfig) -> int:
    """Run ``config`` as ``uvicorn.run`` does (one process, or ``config.workers`` of them); 0 or 3."""
    server = uvicorn.Server(config=config)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0 if server.started else 3  # uvicorn's STARTUP_FAILURE


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head (size and time), a body that may not
    stall, and JSON errors.

    The limits come from a :class:`ServeConfig` (defaults with a plain ``uvicorn.Config``).
    """

    # Slots: 11 more in uvicorn's instance dict (27 attributes) grow its table, 1.2 KiB more per connection.
    __slots__ = tuple(
        "_awaiting_head _body_seen _body_timer _head_begun _head_bytes _head_timer _parsed_head _refusal"  # noqa: SIM905
        " body_timeout head_timeout max_head_bytes".split()
    )

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.max_head_bytes: int = getattr(config, "max_head_bytes", DEFAULT_MAX_HEAD_BYTES)
        self.head_timeout: float = getattr(config, "head_timeout", DEFAULT_HEAD_TIMEOUT)
        # From the connection's start (or the end of the previous response) to the end of a head.
        self._awaiting_head = True
        self._head_begun = False  # the head's first byte has arrived
        self._head_bytes = 0  # raw bytes received while awaiting the head (bounds what the parser buffers)
        self._parsed_head = 0  # the request line and headers parsed so far (exact, within one read)
        self._refusal: tuple[int, str] | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self.body_timeout: float = getattr(config, "body_timeout", DEFAULT_BODY_TIMEOUT)
        self._body_timer: asyncio.TimerHandle | None = None  # one timer per stalled body, not per read
        self._body_seen = 0.0  # the loop time the body's last bytes arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._awaiting_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if self._refusal is None:
                raise
            self._refuse(*self._refusal)
            return
        except httptools.HttpParserInvalidMethodError:
            # A well-formed method token the server does not know is 501; anything else is garbage.
            if _METHOD_TOKEN.match(data):
                self._refuse(501, "The request method is not supported.")
            else:
                self._refuse(400, "Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            self._refuse(400, "Invalid HTTP request received.")
            return
        if self._awaiting_head:
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, f"The request head is larger than {self.max_head_bytes} bytes.")
                return
            self._arm_head_timer()
        else:
            cycle = self.cycle
            if cycle is not None and cycle.more_body and not cycle.response_complete:
                self._body_seen = self.loop.time()  # the body is still coming: its stall clock restarts
                if self._body_timer is None:
                    self._body_timer = self.loop.call_later(self.body_timeout, self._body_check)

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, msg)

    def _unsupported_upgrade_warning(self) -> None:
        # An Upgrade (a websocket handshake) the server does not take: the request is answered as
        # plain HTTP, then the connection closes (its next bytes would be the other protocol's).
        # uvicorn's own warning tells the operator to install a websocket library: not what is wrong.
        self.logger.debug("Upgrade request answered as plain HTTP (no websocket route).")
        if self.cycle is not None:
            self.cycle.keep_alive = False

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_head = self._head_begun = True
        self._parsed_head = 0

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count_head(self, size: int) -> None:
        self._parsed_head += size
        if self._parsed_head > self.max_head_bytes:
            self._refusal = (431, f"The request head is larger than {self.max_head_bytes} bytes.")
            raise _HeadRefused

    def on_headers_complete(self) -> None:
        self._awaiting_head = self._head_begun = False
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and self.scope.get("http_version") == "1.0" and type(cycle) is RequestResponseCycle:
            cycle.__class__ = _Http10Cycle  # close-delimited bodies instead of chunked ones

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._awaiting_head = True  # what arrives next is the next request's head

    # The head's deadline

    def _arm_head_timer(self) -> None:
        if self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport.is_closing():
            return
        if not self._head_begun:
            self.transport.close()  # not a byte of a request arrived: just close
            return
        self._refuse(408, f"The request head did not arrive within {self.head_timeout:g} seconds.")

    # The body's stall deadline

    def _body_check(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or cycle.response_complete or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:  # the app is not reading the body: not the client's stall
            self._body_seen = now
        idle = now - self._body_seen
        if idle < self.body_timeout:
            self._body_timer = self.loop.call_later(self.body_timeout - idle, self._body_check)
            return
        if cycle.response_started:
            self.transport.close()  # too late for a status: the request ends as a disconnect
            return
        self._refuse(408, f"The request body stalled: no bytes for {self.body_timeout:g} seconds.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with a JSON error in the format the request's path suggests, then close."""
        self._cancel_head_timer()
        self.logger.warning("%s (%d)", message, status)
        if self.transport.is_closing():
            return
        wire = "anthropic" if getattr(self, "url", b"").startswith(b"/v1/messages") else "openai"
        body = render_error(wire, GatewayError(status, message))
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Error"))]
        head.extend(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers)
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a head that is refused."""


class _Http10Cycle(RequestResponseCycle):
    """A response to an HTTP/1.0 request: without Content-Length, the body is close-delimited."""

    _close_delimited = False

    async def send(self, message: Message) -> None:  # type: ignore[override]
        if not self.response_started:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", ())}
                if b"content-length" not in names and b"transfer-encoding" not in names:
                    self._close_delimited = True
                    self.chunked_encoding = False
                    self.keep_alive = False
        elif self._close_delimited and not self.response_complete and message["type"] == "http.response.body":
            if self.flow.write_paused and not self.disconnected:
                await self.flow.drain()
            if self.disconnected:
                return
            body = message.get("body", b"")
            if body and self.scope["method"] != "HEAD":
                self.transport.write(body)
            if not message.get("more_body", False):
                self.response_complete = True
                self.message_event.set()
                self.transport.close()
                self.on_response()
            return
        await super().send(message)  # type: ignore[arg-type]


@dataclass
class _Progress:
    started: bool = False
    stream: bool = False
    complete: bool = False
    at_boundary: bool = True  # the stream's last bytes ended an SSE event


class GracefulShutdown:
    """The outermost layer under ``llmroute serve``: a request the server cancels is still answered.

    On shutdown uvicorn waits ``timeout_graceful_shutdown`` seconds for open requests, then cancels
    them. This layer turns that cancellation into a proper ending: an event stream gets an error
    event in the client's format (``code`` ``"shutting_down"``), a request not yet answered gets a
    503, and the request's task then ends normally (no traceback in the log). The server being the
    only one that cancels a whole request task, this layer belongs directly under the server.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The gateway (ObserveMiddleware) keeps ctx.response current: then no send wrapper on every message.
        self._recorded = bool(getattr(app, "records_response", False))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._recorded:
            try:
                await self.app(scope, receive, send)
            except asyncio.CancelledError:
                progress = _recorded_progress(scope)
                if progress.complete:
                    return
                await _end_cancelled(scope, send, progress)
            return
        progress = _Progress()

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                progress.started = True
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-type":
                        progress.stream = value.startswith(b"text/event-stream")
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body:
                    progress.at_boundary = _ends_event(body)
                progress.complete = not message.get("more_body", False)
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if progress.complete:
                return
            await _end_cancelled(scope, send, progress)

    def __repr__(self) -> str:
        return f"GracefulShutdown({self.app!r})"


def _ends_event(body: bytes) -> bool:
    return body.endswith((b"\n\n", b"\r\n\r\n", b"\r\r"))


def _recorded_progress(scope: Scope) -> _Progress:
    """The progress ``ctx.response`` recorded (none: nothing was sent)."""
    context = get_context(scope)
    sent = context.response if context is not None else None
    if sent is None:
        return _Progress()
    at_boundary = not sent.last or _ends_event(sent.last)
    return _Progress(sent.status is not None, sent.stream, sent.done, at_boundary)


async def _end_cancelled(scope: Scope, send: Send, progress: _Progress) -> None:
    context = get_context(scope)
    wire = context.client_api.wire if context is not None else "openai"
    error = GatewayError(503, "The gateway is shutting down; the request was ended.", code="shutting_down")
    try:
        if not progress.started:
            await send_error(send, wire, error)
        elif progress.stream:
            # A partial event is closed first (an event without data is dropped by SSE parsers).
            prefix = b"" if progress.at_boundary else b"\n\n"
            await send({"type": "http.response.body", "body": prefix + render_stream_error(wire, error)})
        # A cut JSON body cannot be mended: the server closes the connection.
    except Exception:  # noqa: S110 - the connection may be gone already; nothing is left to tell
        pass
