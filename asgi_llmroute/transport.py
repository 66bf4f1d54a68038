"""A lean HTTP/1.1 transport for httpx: the forwarder's upstream connections.

httpx's default transport (httpcore on anyio) spends most of a gateway's CPU per request on
connection-pool bookkeeping: it polls every pooled socket for readability on each request and
goes through several layers of anyio streams per read (see docs/performance.md). This transport
keeps the httpx client API (``httpx.AsyncClient(transport=...)``, requests, responses, timeouts,
exceptions) and replaces the machinery below it with an asyncio protocol per connection, the C
response parser from ``httptools`` (already uvicorn's), and a LIFO pool of idle connections whose
health is known from the protocol's own callbacks, so acquiring one costs no system call.

It speaks HTTP/1.1 over TCP or TLS on asyncio (uvloop included). Under another event loop (trio)
it delegates to httpx's default transport; proxies from the environment and HTTP/2 need that
transport too (``[server] upstream_transport = "httpx"``).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterator

import httptools
import httpx

__all__ = ["LeanTransport"]

_Origin = tuple[bytes, str, int]  # scheme, host, port

#: Pause reading from an upstream whose client reads slower than this many buffered bytes.
_HIGH_WATER = 1024 * 1024
_DEFAULT_PORTS = {b"http": 80, b"https": 443}


class LeanTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport: HTTP/1.1 keep-alive connections pooled per origin.

    ``max_idle`` bounds the idle connections kept per origin; idle connections older than
    ``keepalive_expiry`` seconds are closed instead of reused. A request that fails on a reused
    connection before any byte of the response arrived (the server closed it while it sat idle)
    is sent once more on a fresh connection.
    """

    def __init__(
        self,
        *,
        max_idle: int = 256,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        fallback: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._max_idle = max_idle
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._fallback = fallback
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._closed = False

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    def _fallback_transport(self) -> httpx.AsyncBaseTransport:
        if self._fallback is None:
            self._fallback = httpx.AsyncHTTPTransport()
        return self._fallback

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): httpx's own transport works everywhere
            return await self._fallback_transport().handle_async_request(request)
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"Unsupported URL scheme {url.scheme!r}", request=request)
        origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        head, body = await _serialize(request)
        reused = self._acquire(origin)
        connection = reused or await self._connect(loop, origin, timeouts.get("connect"), request)
        try:
            return await connection.send(head, body, timeouts.get("read"), request)
        except _StaleConnection:
            # The server closed the idle connection as we sent on it; nothing was processed.
            connection = await self._connect(loop, origin, timeouts.get("connect"), request)
            return await connection.send(head, body, timeouts.get("read"), request)

    def _acquire(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < self._keepalive_expiry:
                return connection
            connection.close()
        return None

    def _release(self, connection: _Connection) -> None:
        if self._closed or not connection.reusable:
            connection.close()
            return
        idle = self._idle.setdefault(connection.origin, [])
        if len(idle) >= self._max_idle:
            idle.pop(0).close()
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, origin: _Origin, timeout: float | None, request: httpx.Request
    ) -> _Connection:
        scheme, host, port = origin
        tls = self._ssl() if scheme == b"https" else None
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self, origin, loop), host, port, ssl=tls, server_hostname=host if tls else None
                ),
                timeout,
            )
        except asyncio.TimeoutError:
            raise httpx.ConnectTimeout(f"Timed out connecting to {host}:{port}", request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"Could not connect to {host}:{port}: {exc}", request=request) from None
        return protocol

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()


async def _serialize(request: httpx.Request) -> tuple[bytes, bytes]:
    """The request head and body, as they go on the wire (bodies are sent with a length)."""
    body = request.content if isinstance(request.stream, httpx.ByteStream) else await request.aread()
    parts = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    chunked = False
    for name, value in request.headers.raw:
        lower = name.lower()
        if lower == b"transfer-encoding":
            chunked = True
            continue
        parts += (name, b": ", value, b"\r\n")
    if chunked:
        parts += (b"Content-Length: ", str(len(body)).encode(), b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts), body


class _StaleConnection(Exception):
    """A reused connection closed before any byte of the response arrived."""


class _Connection(asyncio.Protocol):
    """One upstream connection: writes a request, parses the response, hands out body chunks."""

    def __init__(self, pool: LeanTransport, origin: _Origin, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.requests = 0
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.error: Exception | None = None
        self.received = False
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.request: httpx.Request | None = None

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(
                httpx.RemoteProtocolError(f"Invalid HTTP response from the upstream: {exc}", request=self.request)
            )
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete or self.request is None:
            return
        if self.headers_done and not self._framed():
            self.complete = True  # a body delimited by the end of the connection
            self._wake()
        elif not self.received and self.requests > 1:
            self._fail(_StaleConnection())
        elif self.headers_done:
            self._fail(
                httpx.RemoteProtocolError(
                    "Peer closed connection without sending complete message body", request=self.request
                )
            )
        else:
            self._fail(
                httpx.RemoteProtocolError("Server disconnected without sending a response.", request=self.request)
            )

    # -- httptools callbacks -----------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.status < 200:  # 1xx interim responses: wait for the real one
            self.reason = b""
            self.headers = []
            return
        self.headers_done = True
        # Asked now: llhttp resets the connection flags once the message is complete.
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status >= 200:
            self.complete = True
            self._wake()

    # -- used by the transport and the response stream ----------------------------------------

    async def send(self, head: bytes, body: bytes, timeout: float | None, request: httpx.Request) -> httpx.Response:
        assert self.transport is not None
        self._reset()
        self.requests += 1
        self.request = request
        if self.closed:
            raise _StaleConnection() if self.requests > 1 else httpx.WriteError("Connection closed", request=request)
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)
        try:
            while not self.headers_done:
                await self._wait(timeout)
        except BaseException:
            self.close()
            raise
        return httpx.Response(
            self.status,
            headers=self.headers,
            stream=_ResponseStream(self, timeout),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": self.reason},
        )

    async def _wait(self, timeout: float | None) -> None:
        if self.error is not None:
            raise self.error
        waiter = self.waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, self._timed_out, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()
        if self.error is not None:
            raise self.error

    def _timed_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(httpx.ReadTimeout("Timed out reading from the upstream", request=self.request))

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def _framed(self) -> bool:
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-length" or (lower == b"transfer-encoding" and b"chunked" in value.lower()):
                return True
        return False

    def take(self) -> bytes:
        chunks = self.chunks
        chunk = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()


class _ResponseStream(httpx.AsyncByteStream):
    """The response body as it arrives; closing it early closes the connection."""

    def __init__(self, connection: _Connection, timeout: float | None) -> None:
        self._connection = connection
        self._timeout = timeout
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        try:
            while True:
                if connection.chunks:
                    yield connection.take()
                elif connection.complete:
                    break
                else:
                    await connection._wait(self._timeout)
        except BaseException:
            connection.close()
            raise
        self._done = True

    async def aclose(self) -> None:
        # No awaiting here: this also runs inside a cancelled scope (the client went away).
        connection = self._connection
        if self._done or (connection.complete and not connection.chunks):
            connection.pool._release(connection)
        else:
            connection.close()
