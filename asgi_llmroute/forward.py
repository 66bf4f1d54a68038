"""The forwarding app: send the request to the resolved deployment and relay the answer as a stream."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from .context import RequestContext, get_context, receive_body, route_path
from .errors import GatewayError, UpstreamError, send_error
from .providers.auth import AuthError, TokenSource
from .providers.types import Deployment, Provider
from .relay import Relay
from .timeouts import UpstreamTimeouts
from .transport import UpstreamResponse, UpstreamTransport, _HttpxBody
from .upstream_headers import header_plan

__all__ = ["Forwarder", "pooled_client"]

logger = logging.getLogger("asgi_llmroute.forward")


def pooled_client(**options: Any) -> httpx.AsyncClient:
    """An upstream client fit for a gateway; ``options`` override the defaults.

    No redirects; no ``Accept-Encoding`` of its own (the client's is forwarded, or none); the
    aiohttp-backed transport (``transport.py``: keep-alive, no replay of sent requests, header
    validation, proxies from the environment, a bound on connections per origin); and a cookie jar
    that stores nothing, since one client serves every caller and a cookie set for one must not
    reach another. ``trust_env`` is off because the transport reads the proxy variables
    itself (httpx would otherwise route proxied requests around it).
    """
    defaults: dict[str, Any] = {
        "timeout": httpx.Timeout(600.0, connect=30.0),
        "follow_redirects": False,
        "trust_env": False,
        # The jar itself: httpx copies the cookies of an httpx.Cookies into a jar of its own (which
        # would store everything), but keeps a CookieJar it is given.
        "cookies": CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    }
    if "transport" not in options:
        defaults["transport"] = UpstreamTransport()
    client = _UpstreamClient(**{**defaults, **options})
    if "headers" not in options:
        # httpx's default ``Accept-Encoding: gzip, deflate`` would ask the upstream for a compressed body
        # that is relayed as it is, to a client that did not ask for one: the client's own header goes.
        del client.headers["accept-encoding"]
    return client


class _UpstreamClient(httpx.AsyncClient):
    """httpx's client with direct paths for the forwarder's streamed requests.

    With no auth, no event hooks and no redirects (the gateway's own client), the httpx client layer
    (request building, the auth and redirect generators, the response-stream wrapper, cookie
    extraction) would do nothing here (the jar stores nothing), and it cost a third of the upstream
    hop's CPU (docs/performance.md). So :meth:`direct` hands the forwarder the :class:`UpstreamTransport`
    that serves a URL, to send on without any httpx objects, and ``send(stream=True)`` calls the
    transport as httpx's ``_send_single_request`` does. Anything else goes through httpx unchanged.
    """

    _direct_cache: dict[str, UpstreamTransport | None]
    _default_headers: tuple[tuple[bytes, bytes], ...]

    def _plain(self) -> bool:
        hooks = self.event_hooks
        return not self.follow_redirects and self.auth is None and not hooks["request"] and not hooks["response"]

    def direct(self, url: str) -> tuple[UpstreamTransport, tuple[tuple[bytes, bytes], ...]] | None:
        """The transport that sends to ``url`` and the client's default headers, when the request
        may skip httpx (see the class docstring); None otherwise (a mount, a user's transport)."""
        if not self._plain():
            return None
        try:
            cache = self._direct_cache
        except AttributeError:
            cache = self._direct_cache = {}
            self._default_headers = tuple((k.lower(), v) for k, v in self.headers.raw)
        if url in cache:
            transport = cache[url]
        else:
            found = self._transport_for_url(httpx.URL(url))
            transport = found if isinstance(found, UpstreamTransport) else None
            if len(cache) >= 4096:
                cache.clear()
            cache[url] = transport
        return (transport, self._default_headers) if transport is not None else None

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        if stream and auth is httpx.USE_CLIENT_DEFAULT and follow_redirects is not True and self._plain():
            response = await self._transport_for_url(request.url).handle_async_request(request)
            response.request = request
            return response
        return await super().send(request, stream=stream, auth=auth, follow_redirects=follow_redirects)


@functools.lru_cache(maxsize=256)
def _default_timeouts(total: float) -> UpstreamTimeouts:
    return UpstreamTimeouts.from_total(total)


def _add_missing(headers: list[tuple[bytes, bytes]], defaults: Sequence[tuple[bytes, bytes]]) -> None:
    """``defaults`` not already in ``headers`` (names) appended to it; in a function of its own, so that the
    set of names is not held by the forwarder's frame for the whole stream."""
    present = {name for name, _ in headers}
    headers.extend(item for item in defaults if item[0] not in present)


@functools.lru_cache(maxsize=256)
def _timeout_tuple(timeouts: UpstreamTimeouts) -> tuple[float | None, float | None, float | None]:
    """(connect, read, pool) of :func:`_httpx_timeout`, for the direct path."""
    timeout = _httpx_timeout(timeouts)
    return timeout.connect, timeout.read, timeout.pool


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
    - The request body is buffered (read in full, within ``max_body_bytes``, by the layers that route
      on it) and sent in one piece; the response body is relayed as a stream over one pooled
      ``httpx.AsyncClient``, untranslated streams as raw bytes. When the client disconnects, the
      upstream request is cancelled at once.
    - Connect failures answer 502, timeouts 504; upstream error responses pass through as they are.
      The response starts (is committed) with its first body byte, so that a failure before it is
      still a clean error response another layer may retry. A failure after that ends an event
      stream with an error event in the client's format.
    - ``timeouts`` maps provider names to :class:`UpstreamTimeouts` (connect, first byte, idle,
      total, stream total); other providers get ``UpstreamTimeouts.from_total(provider.timeout)``.
      An event stream has no total deadline unless ``stream_total`` sets one: the idle timeout
      (between two reads) ends a stalled stream.
    - The relay (``relay.py``) runs in the request's task under an anyio cancel scope; the header
      plan (``upstream_headers.py``) is worked out and validated once per provider record.

    Scope: reads ``ctx.deployment``, ``ctx.upstream_path`` and the body; writes ``ctx.first_byte``,
    ``ctx.attempts``, ``ctx.attempt_status`` (the status it answered with, set before the response
    starts) and ``ctx.last_error`` (the failure kind, when there is no upstream status).
    """

    #: Sets ``ctx.attempt_status`` before every response it starts: a layer around it need not watch ``send``.
    records_attempt_status = True

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
            ctx.attempt_status = exc.status
            await send_error(send, provider.api, exc)
            return
        timeouts = self._timeouts.get(provider.name) or provider.timeouts or _default_timeouts(provider.timeout)
        ctx.attempts += 1
        ctx.gateway_error, ctx.gateway_error_rendered = None, False  # a retry starts afresh
        try:
            url, headers = self._target(scope, ctx, deployment)
        except UpstreamError as exc:  # a misconfigured provider (header_plan): nothing was sent
            ctx.gateway_error = exc
            ctx.attempt_status = exc.status
            await send_error(send, provider.api, exc)
            return
        client = self._client
        direct = client.direct(url) if provider.auth is None and isinstance(client, _UpstreamClient) else None
        open_upstream: Callable[[], Awaitable[UpstreamResponse]]
        if direct is not None:
            # The gateway's own client: straight to aiohttp, no httpx objects on the way.
            transport, defaults = direct
            if defaults:
                _add_missing(headers, defaults)
            open_upstream = functools.partial(
                transport.open, scope["method"], url, headers, ctx.body, _timeout_tuple(timeouts)
            )
        else:
            request = client.build_request(
                scope["method"], url, headers=headers, content=ctx.body, timeout=_httpx_timeout(timeouts)
            )
            if provider.auth is not None and not await self._authorize(send, ctx, provider, request):
                return
            open_upstream = functools.partial(_send_httpx, client, request, provider.auth)
        await Relay(send, ctx, provider, timeouts)(open_upstream, receive)

    async def _authorize(self, send: Send, ctx: RequestContext, provider: Provider, request: httpx.Request) -> bool:
        """Let the provider's authenticator (token source, signer) add its credentials; False if it failed."""
        assert provider.auth is not None
        try:
            await provider.auth.authorize(request)
        except AuthError as exc:
            logger.warning("upstream %s: could not obtain credentials: %s", provider.name, exc)
            ctx.last_error = "auth"
            message = f"Could not obtain credentials for provider {provider.name!r}: {exc}"
            ctx.attempt_status = 502
            await send_error(send, provider.api, UpstreamError(502, message, code="upstream_auth"))
            return False
        return True

    def _target(
        self, scope: Scope, ctx: RequestContext, deployment: Deployment
    ) -> tuple[str, list[tuple[bytes, bytes]]]:
        """The upstream URL and request headers (the client's, less the plan's drops, plus its own)."""
        plan = header_plan(deployment.provider)
        url = plan.url(ctx.upstream_path or route_path(scope), deployment.model)
        query: bytes = scope.get("query_string", b"")
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{query.decode('latin-1')}"
        drop = plan.drop
        headers = [(name, value) for name, value in scope["headers"] if name not in drop]
        if plan.version is not None and any(name == b"anthropic-version" for name, _ in headers):
            headers.extend(plan.fixed)  # the Anthropic client's own version wins over the provider's
        else:
            headers.extend(plan.fixed_with_version)
        return url, headers


async def _send_httpx(client: httpx.AsyncClient, request: httpx.Request, auth: object = None) -> UpstreamResponse:
    response = await client.send(request, stream=True)
    if response.status_code == 401 and isinstance(auth, TokenSource):
        auth.invalidate()  # the upstream rejected the token (revoked, expired early): the next request fetches one
    return _HttpxBody(response)
