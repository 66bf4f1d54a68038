"""Provider resolution: the request's ``model`` picks a route and a deployment."""

from __future__ import annotations

from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from ..context import ClientTraits, ensure_context, receive_body
from ..errors import GatewayError, send_error
from ..providers.balance import Balancer
from ..providers.types import Route

__all__ = ["ProviderResolverMiddleware", "RouteResolver", "client_traits"]


def client_traits(headers: list[tuple[bytes, bytes]]) -> ClientTraits | None:
    """What the request headers say about the client: LiteLLM (``User-Agent: litellm/...`` or any
    ``x-litellm-*`` header) and its session id; None when there is nothing to note."""
    litellm = False
    session: str | None = None
    ours = False
    for name, value in headers:
        if name.startswith(b"x-l"):
            if name == b"x-llmroute-session-id":
                session, ours = value.decode("latin-1").strip() or None, True
            elif name.startswith(b"x-litellm-"):
                litellm = True
                if name == b"x-litellm-session-id" and not ours:
                    session = value.decode("latin-1").strip() or None
        elif name == b"user-agent" and value[:8].lower() == b"litellm/":
            litellm = True
    if not litellm and session is None:
        return None
    return ClientTraits(litellm=litellm, session_id=session)


class RouteResolver(Protocol):
    """Anything that maps a client-facing model name to a :class:`Route` (e.g. a ``RouteTable``)."""

    def resolve(self, model: str) -> Route | None: ...


class ProviderResolverMiddleware:
    """Resolve the JSON body's ``model`` to a route and pick its deployment.

    The body is read and parsed once (and replayed downstream); when the upstream model id differs
    from the client's name, the body's ``model`` is rewritten. 400 for a missing ``model``, 403 when
    the principal's allow-list excludes it, 404 for an unknown model.

    Without a ``balancer`` the route's first deployment is used; with one, the balancer chooses
    (strategy, cooldowns, session affinity). LiteLLM clients and session ids
    (``x-llmroute-session-id``, else ``x-litellm-session-id``) are noted in ``ctx.traits``.

    Scope: reads ``ctx.principal`` (if any); writes ``ctx.model``, ``ctx.route``, ``ctx.deployment``,
    ``ctx.traits``, ``ctx.client_body`` (the body as sent, for retries) and the body.
    """

    def __init__(self, app: ASGIApp, *, routes: RouteResolver, balancer: Balancer | None = None) -> None:
        self._app = app
        self._routes = routes
        self._balancer = balancer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ctx = ensure_context(scope)
        try:
            ctx, receive = await receive_body(scope, receive)
            model = ctx.requested_model()
            if not isinstance(model, str) or not model:
                raise GatewayError(400, "The request needs a 'model' string.", param="model", code="missing_model")
            principal = ctx.principal
            if principal is not None:
                principal.check(model)
            route = self._routes.resolve(model)
            if route is None or not route.deployments:
                raise GatewayError(404, f"Unknown model {model!r}.", param="model", code="model_not_found")
        except GatewayError as exc:
            await send_error(send, ctx.client_api.wire, exc)
            return
        traits = client_traits(scope["headers"])
        if traits is not None:
            ctx.traits = traits
        balancer = self._balancer
        session = ctx.traits.session_id
        if session is not None and balancer is not None and balancer.shared:
            await balancer.load_session(route, session)  # another instance may have served it
        chosen = balancer.choose(route, session=session) if balancer is not None else None
        deployment = chosen if chosen is not None else route.deployments[0]
        ctx.model = model
        ctx.route = route
        ctx.deployment = deployment
        ctx.client_body = ctx.body
        if deployment.model != model:
            ctx.set_model(deployment.model)
        await self._app(scope, receive, send)
