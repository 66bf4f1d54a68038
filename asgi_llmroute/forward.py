"""The forwarding app: send the request to the resolved deployment and relay the answer as a stream."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import time
from collections.abc import Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, NamedTuple

import anyio
import httpx
from starlette.types import Receive, Scope, Send

from .context import RequestContext, get_context, receive_body, route_path
from .errors import GatewayError, UpstreamError, render_stream_error, send_error
from .formats.types import DEFAULT_ANTHROPIC_VERSION
from .headers import CREDENTIAL_HEADERS, HOP_BY_HOP_HEADERS
from .providers.auth import AuthError
from .providers.kinds import UrlBuilder
from .providers.types import Deployment, Provider
from .timeouts import UpstreamTimeouts
from .transport import UpstreamTransport

__all__ = ["Forwarder", "pooled_client"]

logger = logging.getLogger("asgi_llmroute.forward")

# Never sent upstream: the client's credentials (also stripped earlier in the standard stack; the
# forwarder drops them again so it is safe alone), connection-specific headers, and the headers the
# forwarder sets itself.
_REQUEST_DROP = CREDENTIAL_HEADERS | HOP_BY_HOP_HEADERS | {b"host", b"content-length"}
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


def _classify(exc: httpx.TransportError, provider: str) -> tuple[str, UpstreamError]:
    for cls, status, kind, message in _TRANSPORT_ERRORS:
        if isinstance(exc, cls):
            code = "upstream_timeout" if status == 504 else "upstream_unavailable"
            return kind, UpstreamError(status, message.format(name=provider), code=code)
    raise AssertionError("unreachable: httpx.TransportError is the last row")  # pragma: no cover


def pooled_client(**options: Any) -> httpx.AsyncClient:
    """An upstream client fit for a gateway; ``options`` override the defaults.

    No redirects; the aiohttp-backed transport (``transport.py``: keep-alive, no replay of sent
    requests, header validation, proxies from the environment, a bound on connections per origin);
    and a cookie jar that stores nothing, since one client serves every caller and a cookie set for
    one must not reach another. ``trust_env`` is off because the transport reads the proxy variables
    itself (httpx would otherwise route proxied requests around it).
    """
    defaults: dict[str, Any] = {
        "timeout": httpx.Timeout(600.0, connect=30.0),
        "follow_redirects": False,
        "trust_env": False,
        "cookies": httpx.Cookies(CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))),
    }
    if "transport" not in options:
        defaults["transport"] = UpstreamTransport()
    return httpx.AsyncClient(**{**defaults, **options})


class _HeaderPlan(NamedTuple):
    drop: frozenset[bytes]  # client headers not to forward
    fixed: tuple[tuple[bytes, bytes], ...]  # provider headers and credentials
    fixed_with_version: tuple[tuple[bytes, bytes], ...]  # the same plus anthropic-version
    version: bytes | None  # the anthropic-version the provider sends when the client sent none
    url: UrlBuilder  # (path, upstream model) -> URL, from the provider's kind


def _upstream_headers(provider: Provider) -> _HeaderPlan:
    """What the forwarder adds for ``provider``, worked out once per provider record (kept on it)."""
    plan: _HeaderPlan | None = provider.memo.get("upstream_headers")
    if plan is None:
        plan = provider.memo["upstream_headers"] = _header_plan(provider)
    return plan


def _header_plan(provider: Provider) -> _HeaderPlan:
    """The header plan and URL builder of ``provider``: its kind decides."""
    configured = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in provider.headers]
    version: bytes | None = None
    if provider.api == "anthropic":
        version = next((v for k, v in configured if k == b"anthropic-version"), DEFAULT_ANTHROPIC_VERSION.encode())
        configured = [(k, v) for k, v in configured if k != b"anthropic-version"]
    kind = provider.kind
    for name, value in kind.credentials(provider):
        if value:
            configured.append((name.encode("latin-1"), value.encode("latin-1")))
    # Configured headers replace the client's of the same name; anthropic-version is decided per request.
    drop = _REQUEST_DROP | {k for k, _ in configured}
    fixed = tuple(configured)
    with_version = (*fixed, (b"anthropic-version", version)) if version is not None else fixed
    return _HeaderPlan(frozenset(drop), fixed, with_version, version, kind.endpoint(provider))


@functools.lru_cache(maxsize=256)
def _default_timeouts(total: float) -> UpstreamTimeouts:
    return UpstreamTimeouts.from_total(total)


@functools.lru_cache(maxsize=256)
def _httpx_timeout(timeouts: UpstreamTimeouts) -> httpx.Timeout:
    # httpx's read timeout applies to every read: that is the idle timeout. First byte and total
    # are deadlines on the relay's cancel scope.
    return httpx.Timeout(timeouts.idle, connect=timeouts.connect, pool=timeouts.total)


class Forwarder:
    """Minimal ASGI app that forwards the request to ``ctx.deployment`` and relays the response.

    - The upstream URL is the provider's ``base_url`` plus the request path (OpenAI-style bases end
      in ``/v1``, so ``/v1`` is not repeated; Anthropic bases get the full path).
    - The provider's key is injected in its style: ``Authorization: Bearer`` (OpenAI) or
      ``x-api-key`` plus ``anthropic-version`` (the client's own, else the provider's, else
      2023-06-01) for Anthropic. Client credentials are never forwarded.
    - Request and response bodies are relayed as streams over one pooled ``httpx.AsyncClient``,
      untranslated streams as raw bytes. When the client disconnects, the upstream request is
      cancelled at once.
    - Connect failures answer 502, timeouts 504; upstream error responses pass through as they are.
      The response starts (is committed) with its first body byte, so that a failure before it is
      still a clean error response another layer may retry. A failure after that ends an event
      stream with an error event in the client's format.
    - ``timeouts`` maps provider names to :class:`UpstreamTimeouts` (connect, first byte, idle,
      total); other providers get ``UpstreamTimeouts.from_total(provider.timeout)``.

    Scope: reads ``ctx.deployment``, ``ctx.upstream_path`` and the body; writes ``ctx.first_byte``,
    ``ctx.attempts`` and ``ctx.last_error`` (the failure kind, when there is no upstream status).
    """

    def __init__(
        self, *, client: httpx.AsyncClient | None = None, timeouts: Mapping[str, UpstreamTimeouts] | None = None
    ) -> None:
        self._client = client if client is not None else pooled_client()
        self._timeouts = dict(timeouts or {})

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError(f"Forwarder handles HTTP requests only, not {scope['type']!r}")
        ctx = get_context(scope)
        deployment = ctx.deployment if ctx is not None else None
        if ctx is None or deployment is None:
            raise RuntimeError(
                "Forwarder needs a resolved deployment in scope['llmroute']: "
                "put ProviderResolverMiddleware (or build_gateway) in front of it"
            )
        provider = deployment.provider
        try:
            ctx, receive = await receive_body(scope, receive)
        except GatewayError as exc:
            await send_error(send, provider.api, exc)
            return
        timeouts = self._timeouts.get(provider.name) or _default_timeouts(provider.timeout)
        request = self._build_request(scope, ctx, deployment, timeouts)
        ctx.attempts += 1
        ctx.gateway_error, ctx.gateway_error_rendered = None, False  # a retry starts afresh
        if provider.auth is not None and not await self._authorize(send, ctx, provider, request):
            return
        relay = _Relay(send, ctx, provider, timeouts)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            await self._relay_on_asyncio(loop, relay, request, receive)
        else:
            await self._relay_on_anyio(relay, request, receive)
        if not relay.finished and not relay.disconnected:
            await relay.timed_out()

    async def _authorize(self, send: Send, ctx: RequestContext, provider: Provider, request: httpx.Request) -> bool:
        """Let the provider's authenticator (token source, signer) add its credentials; False if it failed."""
        assert provider.auth is not None
        try:
            await provider.auth.authorize(request)
        except AuthError as exc:
            logger.warning("upstream %s: could not obtain credentials: %s", provider.name, exc)
            ctx.last_error = "auth"
            message = f"Could not obtain credentials for provider {provider.name!r}: {exc}"
            await send_error(send, provider.api, UpstreamError(502, message, code="upstream_auth"))
            return False
        return True

    async def _relay_on_anyio(self, relay: _Relay, request: httpx.Request, receive: Receive) -> None:
        timeouts, now = relay.timeouts, anyio.current_time()
        async with anyio.create_task_group() as tg:
            cancel_scope = tg.cancel_scope
            # The deadlines are the task group's own: no extra scope.
            cancel_scope.deadline = relay.total_deadline = now + timeouts.total
            if timeouts.first_byte is not None:
                cancel_scope.deadline = min(relay.total_deadline, now + timeouts.first_byte)
            tg.start_soon(_cancel_on_disconnect, receive, relay, cancel_scope)
            await relay.run(self._client, request, cancel_scope)
            cancel_scope.cancel()

    async def _relay_on_asyncio(
        self, loop: asyncio.AbstractEventLoop, relay: _Relay, request: httpx.Request, receive: Receive
    ) -> None:
        # The same as _relay_on_anyio with one plain task and one timer instead of a task group and
        # its cancel scopes, which cost about ten times as much CPU per request (docs/performance.md).
        timeouts, now = relay.timeouts, loop.time()
        scope = _TaskScope(loop)
        relay.total_deadline = now + timeouts.total
        first_byte = timeouts.first_byte
        scope.deadline = relay.total_deadline if first_byte is None else min(relay.total_deadline, now + first_byte)
        watcher = loop.create_task(_cancel_on_disconnect(receive, relay, scope))
        try:
            await relay.run(self._client, request, scope)
            if scope.cancel_called:
                await asyncio.sleep(0)  # take delivery of a cancel that came as the relay finished
        except asyncio.CancelledError:
            if not scope.cancel_called:
                raise  # not ours: the server or an outer scope is cancelling this request
            scope.uncancel()
        finally:
            scope.close()
            watcher.cancel()

    def _build_request(
        self, scope: Scope, ctx: RequestContext, deployment: Deployment, timeouts: UpstreamTimeouts
    ) -> httpx.Request:
        provider = deployment.provider
        plan = _upstream_headers(provider)
        url = plan.url(ctx.upstream_path or route_path(scope), deployment.model)
        query: bytes = scope.get("query_string", b"")
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{query.decode('latin-1')}"
        headers = [(name, value) for name, value in scope["headers"] if name not in plan.drop]
        if plan.version is not None and any(name == b"anthropic-version" for name, _ in headers):
            headers.extend(plan.fixed)  # the Anthropic client's own version wins over the provider's
        else:
            headers.extend(plan.fixed_with_version)
        return self._client.build_request(
            scope["method"], url, headers=headers, content=ctx.body, timeout=_httpx_timeout(timeouts)
        )


class _Relay:
    """One upstream exchange relayed to the client, and how it ended."""

    __slots__ = (
        "ctx",
        "disconnected",
        "finished",
        "is_stream",
        "last",
        "provider",
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
        self.total_deadline = 0.0
        self.started = False  # the response start went to the client
        self.is_stream = False
        self.last = b""  # the last chunk relayed: whether an error event must first close a partial frame
        self.finished = False  # ran to its end (an error response counts), not cut by a deadline
        self.disconnected = False

    async def run(
        self, client: httpx.AsyncClient, request: httpx.Request, cancel_scope: anyio.CancelScope | _TaskScope
    ) -> None:
        # Errors are written in the provider's format, like everything else on this response, so
        # that a translation layer in front translates them too (without one, the formats agree).
        ctx, send = self.ctx, self.send
        name, wire = self.provider.name, self.provider.api
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            logger.warning("upstream %s failed before responding: %s", name, type(exc).__name__)
            ctx.last_error, error = _classify(exc, name)
            await self._send_error(error)
            self.finished = True
            return
        try:
            # ASGI wants lowercase header names; upstreams (nginx, ...) may send them capitalised.
            headers = [(k, v) for k, v in ((k.lower(), v) for k, v in response.headers.raw) if k not in _RESPONSE_DROP]
            start = {"type": "http.response.start", "status": response.status_code, "headers": headers}
            self.is_stream = response.headers.get("content-type", "").startswith("text/event-stream")
            try:
                async for chunk in response.aiter_raw():
                    if not self.started:
                        ctx.first_byte = time.perf_counter()
                        if self.timeouts.first_byte is not None:
                            cancel_scope.deadline = self.total_deadline  # the first byte is in
                        self.started = True
                        await send(start)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    self.last = chunk
            except httpx.TransportError as exc:
                logger.warning("upstream %s failed mid-response: %s", name, type(exc).__name__)
                ctx.last_error, error = _classify(exc, name)
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
                self.started = True
                await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
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

    async def timed_out(self) -> None:
        """The first-byte or total deadline passed (the relay was cancelled): say so."""
        ctx, name, wire = self.ctx, self.provider.name, self.provider.api
        ctx.last_error = "timeout"
        if self.started:
            which, limit = "total", self.timeouts.total
        elif self.timeouts.first_byte is not None and anyio.current_time() < self.total_deadline:
            which, limit = "first byte", self.timeouts.first_byte
        else:
            which, limit = "total", self.timeouts.total
        logger.warning("upstream %s exceeded its %s timeout (%ss)", name, which, limit)
        error = UpstreamError(
            504, f"Provider {name!r} did not answer in time ({which} timeout, {limit:g}s).", code="upstream_timeout"
        )
        ctx.gateway_error = error
        try:
            if not self.started:
                await send_error(self.send, wire, error)
            else:
                tail = _stream_error_tail(wire, error, self.last) if self.is_stream else b""
                await self.send({"type": "http.response.body", "body": tail, "more_body": False})
        except OSError:
            self.disconnected = True

    async def _send_error(self, error: UpstreamError) -> None:
        self.ctx.gateway_error = error
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


class _TaskScope:
    """Cancels the current asyncio task at a deadline or on request, like an anyio cancel scope."""

    __slots__ = ("_handle", "_loop", "_task", "cancel_called")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._handle: asyncio.TimerHandle | None = None
        self.cancel_called = False

    @property
    def deadline(self) -> float:
        return self._handle.when() if self._handle is not None else float("inf")

    @deadline.setter
    def deadline(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_at(when, self.cancel)

    def cancel(self) -> None:
        if not self.cancel_called:
            self.cancel_called = True
            self._task.cancel()

    def uncancel(self) -> None:
        if sys.version_info >= (3, 11):
            self._task.uncancel()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


async def _cancel_on_disconnect(receive: Receive, relay: _Relay, cancel_scope: anyio.CancelScope | _TaskScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if relay.finished:
                return  # servers also say "disconnect" once the response is complete
            if relay.ctx.completed:
                # The final event reached the client, which then left (the SDKs do): the request is
                # complete; only the upstream's end of body is not waited for.
                relay.finished = True
                cancel_scope.cancel()
                return
            relay.disconnected = True
            relay.ctx.last_error = "disconnect"
            cancel_scope.cancel()
            return
