"""The standard gateway: routes plus the middleware stack, assembled from a :class:`GatewayConfig`.

One cohesive thing over 400 lines: the stack as one app, from its assembly to its lifespan and closing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import anyio.to_thread
import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from . import assemble
from .admin import PREFIX as ADMIN_PREFIX
from .admin import USAGE_PATH, ProviderAdminApp, UsageAdminApp
from .config import GatewayConfig, UpstreamConfig
from .context import SCOPE_KEY, ClientAPI, RequestContext, ensure_context, path_model, route_path
from .demo import DEMO_BASE_URL, DemoProvider
from .errors import GatewayError, send_error
from .formats import TranslationOptions
from .forward import Forwarder, pooled_client
from .keys.admin import KEY_PATHS, KeysAdminApp
from .keys.manager import KeyManager, TeamBudget
from .keys.pricing import ModelPrice, PriceTable
from .keys.store import KeyStore
from .metrics import GatewayMetrics, MetricsEndpoint
from .middleware.auth import TokenAuthMiddleware, TokenLookup, TokenTable
from .middleware.keys import KeyBudgetMiddleware, KeyedTokens
from .middleware.limits import ConcurrencyLimitMiddleware
from .middleware.model_name import ModelNameMiddleware
from .middleware.observe import ObserveMiddleware, UpstreamErrorsMiddleware, credential_matcher
from .middleware.ratelimit import RateLimit, RateLimitMiddleware
from .middleware.resolve import ProviderResolverMiddleware
from .middleware.responses import ResponsesMiddleware
from .middleware.retry import Backoff, RetryMiddleware
from .middleware.strip import CredentialStripMiddleware
from .middleware.totals import UsageTotalsMiddleware
from .middleware.translate import TranslationMiddleware
from .middleware.usage import UsageMiddleware
from .providers.balance import Balancer
from .providers.live import LiveRouteTable
from .providers.routing import RouteTable
from .providers.store import ProviderStore
from .secret import Secret
from .send import send_json
from .state import StateUnavailable
from .store_setup import live_routes
from .transport import UpstreamTransport

logger = logging.getLogger("asgi_llmroute.state")

__all__ = ["LLM_ROUTES", "PASSTHROUGH_ROUTES", "Gateway", "build_gateway", "default_http_client"]

#: POST routes that go through the whole pipeline, by the API their clients speak.
LLM_ROUTES = ("/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens", "/v1/responses")
#: OpenAI-style endpoints relayed as they are to OpenAI-compatible providers.
PASSTHROUGH_ROUTES = (
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/audio/speech",
    # multipart/form-data uploads: the model is a form field
    "/v1/audio/transcriptions",
    "/v1/audio/translations",
    "/v1/images/edits",
    "/v1/images/variations",
    "/v1/rerank",
)


def default_http_client(upstream: UpstreamConfig | None = None) -> httpx.AsyncClient:
    """The pooled upstream client: no redirects, keep-alive as ``upstream`` ([upstream]) says, the demo
    provider mounted."""
    return _client(_transport(upstream, prepare=True))


def _transport(upstream: UpstreamConfig | None, *, prepare: bool) -> UpstreamTransport:
    upstream = upstream if upstream is not None else UpstreamConfig()
    return UpstreamTransport(
        max_connections_per_origin=upstream.max_connections_per_origin,
        keepalive_expiry=upstream.keepalive_timeout,
        prepare=prepare,
    )


def _client(transport: UpstreamTransport) -> httpx.AsyncClient:
    return pooled_client(transport=transport, mounts={DEMO_BASE_URL: httpx.ASGITransport(app=DemoProvider())})


def _uses_network(routes: RouteTable | LiveRouteTable) -> bool:
    """Whether a provider of ``routes`` is reached over the network (not the in-process demo)."""
    return any(not p.base_url.startswith(DEMO_BASE_URL) for p in routes.providers.values())


def _uses_tls(routes: RouteTable | LiveRouteTable) -> bool:
    """Whether a provider of ``routes`` is reached over ``https://`` (its TLS context is made at start)."""
    return any(p.base_url.startswith("https:") for p in routes.providers.values())


class Gateway:
    """The standard ASGI gateway app (see :func:`build_gateway`).

    ``client -> observe -> token auth -> rate limits -> concurrency limit (token) -> provider resolution
    -> retries/fallbacks -> concurrency limit (provider) -> Responses API -> credential stripping
    -> translation -> usage -> forwarder``.
    Mountable anywhere (paths are matched below ``root_path``). It closes its HTTP client and store
    on lifespan shutdown when it is the server's app; mounted in FastAPI/Starlette (which send mounted
    apps no lifespan events) pass ``lifespan=gateway.lifespan`` to the outer app, or use
    ``async with gateway:`` / :meth:`aclose`.
    """

    #: Every HTTP request goes through ObserveMiddleware, which keeps ``ctx.response`` current.
    records_response = True

    def __init__(self, config: GatewayConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        providers = assemble.provider_records(config)
        table = RouteTable(providers, assemble.routes(config, providers))
        # With a [store], routes also come from the provider store, re-read when it changes.
        self.routes: RouteTable | LiveRouteTable = table if config.store is None else live_routes(config, table)
        admin_tokens = assemble.admin_tokens(config)
        # Runtime state (docs/scaling.md): this process's, or shared with every instance through Redis.
        self.state = assemble.state_backend(config)
        self._state_started = False
        self._next_start = 0.0
        self.admin = admin_app(config, self.routes, admin_tokens, on_change=self._store_written)
        if isinstance(self.routes, LiveRouteTable):
            self.state.on_store_change(self.routes.invalidate)  # another instance wrote to the store
            self.state.on_store_change(self._prepare_upstream_soon)
        self.usage_admin = UsageAdminApp(state=self.state, tokens=admin_tokens)
        # The upstream client's aiohttp and TLS context are made now if a provider needs them (the context
        # only for an https:// one), else when the store is first written (the embedded default starts
        # with the in-process demo only): the transport that still has to be prepared is kept in
        # self._upstream.
        self._upstream: UpstreamTransport | None = None
        if client is None:
            self._upstream = _transport(config.upstream, prepare=False)
            client = _client(self._upstream)
            if _uses_network(self.routes):
                tls = _uses_tls(self.routes)  # the CA roots only for an https:// upstream
                self._upstream.prepare(tls=tls)
                if tls:
                    self._upstream = None  # nothing left to prepare
        http_client = client
        self.forwarder = Forwarder(client=http_client, timeouts=assemble.upstream_timeouts(config))
        # Balancing state (docs/routing.md): one per gateway, shared by resolution and retries.
        self.balancer = Balancer(config.routing.strategy, state=self.state)
        routing = config.routing
        options = TranslationOptions(
            default_max_tokens=config.translation.default_max_tokens,
            reasoning_content=config.translation.reasoning_content,
        )
        # What each model accepts: translated requests are made to fit it (docs/translation.md).
        capabilities = assemble.model_capabilities(config)
        # Observability (docs/observability.md): metrics in a registry of this gateway's own.
        self.metrics = GatewayMetrics(is_known=lambda model: model in self.routes.routes)
        attempts: ASGIApp = UpstreamErrorsMiddleware(self.forwarder, metrics=self.metrics)
        usage: ASGIApp = UsageMiddleware(attempts, stream_usage=config.usage.stream_usage)
        pipeline: ASGIApp = TranslationMiddleware(usage, options=options, capabilities=capabilities)
        pipeline = CredentialStripMiddleware(pipeline)
        pipeline = ResponsesMiddleware(pipeline, options=options, capabilities=capabilities)
        provider_limits = {p.name: p.max_in_flight for p in config.providers if p.max_in_flight}
        # Store providers carry their own max_in_flight (on the Provider record): added later, they are
        # limited too, so the layer is there whenever there is a store.
        if provider_limits or isinstance(self.routes, LiveRouteTable):
            pipeline = ConcurrencyLimitMiddleware(
                pipeline, limits=provider_limits, by="provider", max_wait=routing.max_wait, state=self.state
            )
        deployment_limits = {
            f"{m.provider}/{m.model}": RateLimit(m.rpm, m.tpm) for m in config.models if m.rpm or m.tpm
        }
        if deployment_limits:
            pipeline = RateLimitMiddleware(
                pipeline,
                limits=deployment_limits,
                by="deployment",
                backend=self.state if self.state.shared else None,
                when_down=config.state.when_down,
            )
        pipeline = RetryMiddleware(
            pipeline,
            balancer=self.balancer,
            routes=self.routes,
            policies=assemble.retry_policies(config),
            backoff=Backoff(routing.backoff_base, routing.backoff_max, routing.max_retry_after),
            max_attempts=routing.max_attempts,
            deployment_header=routing.deployment_header,
        )
        # Answers name the model the client asked for, unless configured to relay the upstream's id.
        pipeline = ModelNameMiddleware(
            pipeline,
            default=config.translation.response_model,
            overrides={m.name: m.response_model for m in config.models if m.response_model is not None},
        )
        pipeline = ProviderResolverMiddleware(pipeline, routes=self.routes, balancer=self.balancer)
        token_limits = {t.name: t.max_in_flight for t in config.tokens if t.max_in_flight}
        if token_limits:
            pipeline = ConcurrencyLimitMiddleware(
                pipeline, limits=token_limits, by="token", max_wait=routing.max_wait, state=self.state
            )
        # Virtual keys (docs/keys.md): with a store, keys created at run time authenticate too.
        self.keys = _key_manager(config, self.routes, self.metrics)
        if not token_limits and self.keys is not None:  # a key's own max_in_flight
            pipeline = ConcurrencyLimitMiddleware(
                pipeline, limits={}, by="token", max_wait=routing.max_wait, state=self.state
            )
        limits = {t.name: RateLimit(t.rpm, t.tpm) for t in config.tokens if t.rpm or t.tpm}
        if limits or self.keys is not None:
            shared = self.state if self.state.shared else None
            pipeline = RateLimitMiddleware(pipeline, limits=limits, backend=shared, when_down=config.state.when_down)
        if self.keys is not None:
            pipeline = KeyBudgetMiddleware(pipeline, keys=self.keys)
        pipeline = UsageTotalsMiddleware(pipeline, state=self.state)
        self._post: dict[str, ASGIApp] = dict.fromkeys(LLM_ROUTES + PASSTHROUGH_ROUTES, pipeline)
        self._pipeline = pipeline
        self._get: dict[str, ASGIApp] = {"/health": _health, "/v1/models": self._models}
        self._max_body = config.server.max_body_bytes
        self._closed = False
        config_tokens = TokenTable(assemble.token_entries(config))
        tokens: TokenLookup = config_tokens if self.keys is None else KeyedTokens(config_tokens, self.keys)
        self._app = TokenAuthMiddleware(self._dispatch, tokens=tokens, exempt_paths=("/health",))
        self._keys_admin = (
            KeysAdminApp(self.keys, authenticate=self.admin.authenticate) if self.keys is not None else None
        )
        self._metrics_path = config.metrics.path if config.metrics.enabled else None
        self._metrics_app = MetricsEndpoint(self.metrics, admin_tokens=admin_tokens, open=config.metrics.open)
        # A client's x-request-id that is a credential is not used (ids are logged).
        credentials = [*admin_tokens, *(p.api_key for p in providers if p.api_key is not None)]
        self._observed = ObserveMiddleware(
            self._route,
            metrics=self.metrics,
            access_log=config.logging.access,
            is_credential=credential_matcher(tokens, credentials),
        )

    def _store_written(self) -> None:
        self._prepare_upstream_soon()
        self.state.store_changed()

    def _prepare_upstream_soon(self) -> None:
        # A provider may have been added: its first request should not wait for aiohttp's import and the
        # CA roots (a quarter of a second), so a thread makes them now (on the first change only).
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            threading.Thread(target=upstream.prepare, name="llmroute-upstream-prepare", daemon=True).start()

    async def start(self) -> None:
        """Connect the runtime state (lifespan startup does it; raises :class:`StateUnavailable`)."""
        if not self._state_started:
            await self.state.start()
            self._state_started = True

    async def _late_start(self) -> None:
        # Mounted without a lifespan: connect on the first request (then retry at most once a second).
        now = time.monotonic()
        if now < self._next_start:
            return
        self._next_start = now + 1.0
        try:
            await self.start()
        except StateUnavailable as exc:
            logger.error("[state]: %s", exc)

    async def aclose(self) -> None:
        """Close the runtime state, the upstream client and the provider store (later calls do nothing)."""
        if self._state_started:
            self._state_started = False
            await self.state.aclose()
        if self._closed:
            return
        self._closed = True
        await self.forwarder.aclose()
        if self.keys is not None:
            await anyio.to_thread.run_sync(self.keys.close)  # spend not yet written
        if isinstance(self.routes, LiveRouteTable):
            self.routes.store.close()

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """A lifespan for the app that mounts this gateway: ``FastAPI(lifespan=gateway.lifespan)``.

        Starlette and FastAPI send no lifespan events to mounted apps, so a mounted gateway would
        never close its connections or its store; this closes them when the outer app shuts down.
        To combine it with a lifespan of your own, use ``async with gateway:`` inside yours.
        """
        await self.start()
        try:
            yield
        finally:
            await self.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if not self._state_started:
                await self._late_start()
            path = route_path(scope)
            client_api = ClientAPI.from_path(path)
            ctx: RequestContext | None = scope.get(SCOPE_KEY)
            if ctx is None:
                scope[SCOPE_KEY] = RequestContext(
                    client_api=client_api, max_body_bytes=self._max_body, path_model=path_model(path)
                )
            else:
                # Whoever runs first creates the context: an outer layer's is kept (and seen by it
                # afterwards). The client API follows the path below this mount point; the body
                # limit is this gateway's, unless the body was already read.
                ctx.client_api = client_api
                ctx.path_model = path_model(path)
                if not ctx.body_read:
                    ctx.max_body_bytes = self._max_body
            await self._observed(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            # The gateway serves no websocket route: refuse the handshake (the server answers 403).
            await send({"type": "websocket.close", "code": 1008})

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope)
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            await self.admin(scope, receive, send)  # admin tokens only: router-token auth does not apply
        elif path == USAGE_PATH:
            await self.usage_admin(scope, receive, send)
        elif self._keys_admin is not None and path.startswith(KEY_PATHS):
            await self._keys_admin(scope, receive, send)  # admin tokens only
        elif path == self._metrics_path:
            await self._metrics_app(scope, receive, send)  # admin tokens, or open
        else:
            await self._app(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope)
        method = scope["method"]
        table = self._post if method == "POST" else self._get if method in ("GET", "HEAD") else None
        app = table.get(path) if table is not None else None
        if app is None and method == "POST" and ensure_context(scope).client_api is ClientAPI.GEMINI_GENERATE:
            app = self._pipeline  # /v1beta/models/{model}:generateContent (google-genai clients)
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
        await send_json(send, 200, body)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except StateUnavailable as exc:
                    await send({"type": "lifespan.startup.failed", "message": f"[state]: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def build_gateway(config: GatewayConfig, *, client: httpx.AsyncClient | None = None) -> Gateway:
    """Assemble the standard gateway from ``config``; ``client`` overrides the pooled upstream client."""
    return Gateway(config, client=client)


def _key_manager(
    config: GatewayConfig, routes: RouteTable | LiveRouteTable, metrics: GatewayMetrics
) -> KeyManager | None:
    """The virtual keys of ``config``'s store (None without a SQLite store, or with ``[keys] enabled = false``)."""
    if not config.keys.enabled or not isinstance(routes, LiveRouteTable):
        return None
    if not isinstance(routes.store, ProviderStore):
        # Keys and spend are tables of the provider store (SQLite, or PostgreSQL: docs/keys.md).
        logging.getLogger("asgi_llmroute.keys").warning("virtual keys are off: they need the provider store")
        return None
    prices = PriceTable({name: ModelPrice(**p.model_dump()) for name, p in config.prices.items()})
    teams = {t.name: TeamBudget(t.budget, t.budget_period) for t in config.teams}

    def on_spend(key: str, team: str | None, model: str, cost: float) -> None:
        metrics.spend.labels(key, team or "", model).inc(cost)

    return KeyManager(
        KeyStore(routes.store),
        prices,
        teams=teams,
        refresh=config.keys.refresh,
        flush=config.keys.flush,
        on_spend=on_spend,
    )


def admin_app(
    config: GatewayConfig,
    routes: RouteTable | LiveRouteTable,
    tokens: list[Secret],
    *,
    on_change: Callable[[], None] | None = None,
) -> ProviderAdminApp:
    """The admin API for ``config``'s store (which ``routes`` serves), as the gateway mounts it.

    After a write, ``routes`` re-reads the store and ``on_change`` is called (to tell other instances).
    """
    live = routes if isinstance(routes, LiveRouteTable) else None

    def changed() -> None:
        if live is not None:
            live.invalidate()
        if on_change is not None:
            on_change()

    return ProviderAdminApp(
        store=live.store if live is not None else None,
        tokens=tokens,
        reserved_providers=[p.name for p in config.providers],
        reserved_models=[m.name for m in config.models],
        on_change=changed if live is not None else None,
    )


async def _health(scope: Scope, receive: Receive, send: Send) -> None:
    await send_json(send, 200, {"status": "ok"})
