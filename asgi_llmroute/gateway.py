"""The standard gateway: routes plus the middleware stack, assembled from a :class:`GatewayConfig`."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import GatewayConfig
from .context import SCOPE_KEY, ClientAPI, RequestContext, ensure_context, route_path
from .demo import DEMO_BASE_URL, DemoProvider
from .errors import GatewayError, send_error
from .forward import Forwarder, pooled_client
from .middleware.auth import TokenAuthMiddleware, TokenTable
from .middleware.resolve import ProviderResolverMiddleware
from .middleware.strip import CredentialStripMiddleware
from .middleware.translate import TranslationMiddleware
from .providers.routing import RouteTable

__all__ = ["LLM_ROUTES", "PASSTHROUGH_ROUTES", "Gateway", "build_gateway", "default_http_client"]

#: POST routes that go through the whole pipeline, by the API their clients speak.
LLM_ROUTES = ("/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens")
#: OpenAI-style endpoints relayed as they are to OpenAI-compatible providers.
PASSTHROUGH_ROUTES = (
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/audio/speech",
    "/v1/rerank",
)


def default_http_client() -> httpx.AsyncClient:
    """The pooled upstream client: no redirects, generous keep-alive, the demo provider mounted."""
    return pooled_client(mounts={DEMO_BASE_URL: httpx.ASGITransport(app=DemoProvider())})


class Gateway:
    """The standard ASGI gateway app (see :func:`build_gateway`).

    ``client -> token auth -> provider resolution -> credential stripping -> translation -> forwarder``.
    Mountable anywhere (paths are matched below ``root_path``); it closes its HTTP client on
    lifespan shutdown, or call :meth:`aclose`.
    """

    def __init__(self, config: GatewayConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        providers = config.provider_records()
        self.routes = RouteTable(providers, config.routes(providers))
        self.forwarder = Forwarder(client=client if client is not None else default_http_client())
        pipeline: ASGIApp = TranslationMiddleware(
            self.forwarder,
            default_max_tokens=config.translation.default_max_tokens,
            reasoning_content=config.translation.reasoning_content,
        )
        pipeline = CredentialStripMiddleware(pipeline)
        pipeline = ProviderResolverMiddleware(pipeline, routes=self.routes)
        self._post: dict[str, ASGIApp] = dict.fromkeys(LLM_ROUTES + PASSTHROUGH_ROUTES, pipeline)
        self._get: dict[str, ASGIApp] = {"/health": _health, "/v1/models": self._models}
        self._max_body = config.server.max_body_bytes
        self._app = TokenAuthMiddleware(self._dispatch, tokens=TokenTable(config.token_entries()))

    async def aclose(self) -> None:
        await self.forwarder.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = route_path(scope)
            scope[SCOPE_KEY] = RequestContext(client_api=ClientAPI.from_path(path), max_body_bytes=self._max_body)
            await self._app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope)
        method = scope["method"]
        table = self._post if method == "POST" else self._get if method in ("GET", "HEAD") else None
        app = table.get(path) if table is not None else None
        if app is None:
            wire = ensure_context(scope).client_api.wire
            if path in self._post or path in self._get:
                await send_error(send, wire, GatewayError(405, f"Method {method} is not allowed on {path}."))
            else:
                await send_error(send, wire, GatewayError(404, f"No route {path}.", code="unknown_url"))
            return
        await app(scope, receive, send)

    async def _models(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = ensure_context(scope).principal
        names = [n for n in self.routes.model_names() if principal is None or principal.allows(n)]
        body: dict[str, Any]
        if any(name == b"anthropic-version" for name, _ in scope["headers"]):
            data: list[dict[str, Any]] = [
                {"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"} for n in names
            ]
            first, last = (names[0], names[-1]) if names else (None, None)
            body = {"data": data, "has_more": False, "first_id": first, "last_id": last}
        else:
            owners = {r.name: r.deployments[0].provider.name for r in self.routes.routes.values()}
            data = [{"id": n, "object": "model", "created": 0, "owned_by": owners[n]} for n in names]
            body = {"object": "list", "data": data}
        await _send_json(send, 200, body)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def build_gateway(config: GatewayConfig, *, client: httpx.AsyncClient | None = None) -> Gateway:
    """Assemble the standard gateway from ``config``; ``client`` overrides the pooled upstream client."""
    return Gateway(config, client=client)


async def _health(scope: Scope, receive: Receive, send: Send) -> None:
    await _send_json(send, 200, {"status": "ok"})


async def _send_json(send: Send, status: int, obj: dict[str, Any]) -> None:
    body = json.dumps(obj, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
