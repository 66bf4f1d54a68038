"""The forwarding app: send the request to the resolved deployment and relay the answer as a stream."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, NamedTuple

import anyio
import httpx
from starlette.types import Receive, Scope, Send

from .context import RequestContext, get_context, receive_body, route_path
from .errors import GatewayError, UpstreamError, render_stream_error, send_error
from .middleware.strip import CREDENTIAL_HEADERS, HOP_BY_HOP_HEADERS
from .providers.model import Provider

__all__ = ["DEFAULT_ANTHROPIC_VERSION", "Forwarder", "map_transport_error", "pooled_client"]

logger = logging.getLogger("asgi_llmroute.forward")

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"

# Never sent upstream: the client's credentials (also stripped earlier in the standard stack; the
# forwarder drops them again so it is safe alone), connection-specific headers, and the headers the
# forwarder sets itself.
_REQUEST_DROP = CREDENTIAL_HEADERS | HOP_BY_HOP_HEADERS | {b"host", b"content-length"}
# Not relayed to the client: connection-specific headers, and the ones the server sets itself.
_RESPONSE_DROP = HOP_BY_HOP_HEADERS | {b"server", b"date"}

# One table from transport failures to gateway errors; the first match wins, so specific first.
_TRANSPORT_ERRORS: tuple[tuple[type[httpx.TransportError], int, str], ...] = (
    (httpx.TimeoutException, 504, "Provider {name!r} did not answer in time."),
    (httpx.ConnectError, 502, "Could not connect to provider {name!r}."),
    (httpx.RemoteProtocolError, 502, "Provider {name!r} closed the connection or broke the HTTP protocol."),
    (httpx.TransportError, 502, "The request to provider {name!r} failed."),
)


def map_transport_error(exc: httpx.TransportError, provider: str) -> UpstreamError:
    """The gateway error (502 or 504) for a failure talking to ``provider``."""
    for kind, status, message in _TRANSPORT_ERRORS:
        if isinstance(exc, kind):
            code = "upstream_timeout" if status == 504 else "upstream_unavailable"
            return UpstreamError(status, message.format(name=provider), code=code)
    raise AssertionError("unreachable: httpx.TransportError is the last row")  # pragma: no cover


def pooled_client(**options: Any) -> httpx.AsyncClient:
    """An upstream client fit for a gateway: no redirects, generous keep-alive; ``options`` override."""
    defaults: dict[str, Any] = {
        "timeout": httpx.Timeout(600.0, connect=30.0),
        "follow_redirects": False,
        "limits": httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=30.0),
    }
    return httpx.AsyncClient(**{**defaults, **options})


class _HeaderPlan(NamedTuple):
    drop: frozenset[bytes]  # client headers not to forward
    fixed: tuple[tuple[bytes, bytes], ...]  # provider headers and credentials
    fixed_with_version: tuple[tuple[bytes, bytes], ...]  # the same plus anthropic-version
    version: bytes | None  # the anthropic-version the provider sends when the client sent none


@functools.lru_cache(maxsize=1024)
def _upstream_headers(provider: Provider) -> _HeaderPlan:
    """What the forwarder adds for ``provider``, worked out once per provider."""
    configured = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in provider.headers]
    key = provider.api_key.reveal().encode("latin-1") if provider.api_key is not None else None
    version: bytes | None = None
    if provider.api == "anthropic":
        version = next((v for k, v in configured if k == b"anthropic-version"), DEFAULT_ANTHROPIC_VERSION.encode())
        configured = [(k, v) for k, v in configured if k != b"anthropic-version"]
        if key:
            configured.append((b"x-api-key", key))
    elif key:
        configured.append((b"authorization", b"Bearer " + key))
    # Configured headers replace the client's of the same name; anthropic-version is decided per request.
    drop = _REQUEST_DROP | {k for k, _ in configured}
    fixed = tuple(configured)
    with_version = (*fixed, (b"anthropic-version", version)) if version is not None else fixed
    return _HeaderPlan(frozenset(drop), fixed, with_version, version)


@functools.lru_cache(maxsize=256)
def _timeout(total: float) -> httpx.Timeout:
    return httpx.Timeout(total, connect=min(total, 30.0))


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
      A failure after the response has started ends an event stream with an error event in the
      client's format.

    Scope: reads ``ctx.deployment``, ``ctx.upstream_path`` and the body; writes ``ctx.first_byte``
    and ``ctx.attempts``.
    """

    def __init__(self, *, client: httpx.AsyncClient | None = None) -> None:
        self._client = client if client is not None else pooled_client()

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
        request = self._build_request(scope, ctx, provider)
        ctx.attempts += 1
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            await self._relay(request, ctx, provider, send)
            tg.cancel_scope.cancel()

    def _build_request(self, scope: Scope, ctx: RequestContext, provider: Provider) -> httpx.Request:
        path = ctx.upstream_path or route_path(scope)
        if provider.api == "openai" and path.startswith("/v1/"):
            path = path[3:]
        url = provider.base_url + path
        query: bytes = scope.get("query_string", b"")
        if query:
            url = f"{url}?{query.decode('latin-1')}"
        plan = _upstream_headers(provider)
        headers = [(name, value) for name, value in scope["headers"] if name not in plan.drop]
        if plan.version is not None and any(name == b"anthropic-version" for name, _ in headers):
            headers.extend(plan.fixed)  # the Anthropic client's own version wins over the provider's
        else:
            headers.extend(plan.fixed_with_version)
        return self._client.build_request(
            scope["method"], url, headers=headers, content=ctx.body, timeout=_timeout(provider.timeout)
        )

    async def _relay(self, request: httpx.Request, ctx: RequestContext, provider: Provider, send: Send) -> None:
        # Errors are written in the provider's format, like everything else on this response, so
        # that a translation layer in front translates them too (without one, the formats agree).
        name, wire = provider.name, provider.api
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            logger.warning("upstream %s failed before responding: %s", name, type(exc).__name__)
            await send_error(send, wire, map_transport_error(exc, name))
            return
        try:
            headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _RESPONSE_DROP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            is_stream = response.headers.get("content-type", "").startswith("text/event-stream")
            try:
                async for chunk in response.aiter_raw():
                    if ctx.first_byte is None:
                        ctx.first_byte = time.perf_counter()
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.TransportError as exc:
                # Committed: nothing can be retried. Say so in-band where the format allows it.
                logger.warning("upstream %s failed mid-response: %s", name, type(exc).__name__)
                tail = render_stream_error(wire, map_transport_error(exc, name)) if is_stream else b""
                await send({"type": "http.response.body", "body": tail, "more_body": False})
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            # The client went away while we were writing (ASGI 2.4 servers raise here).
            logger.info("client disconnected during the response from %s", name)
        finally:
            await response.aclose()


async def _cancel_on_disconnect(receive: Receive, cancel_scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            cancel_scope.cancel()
            return
