"""Virtual keys in the request path: budgets checked before the upstream call, spend recorded after.

``KeyedTokens`` lets :class:`~asgi_llmroute.TokenAuthMiddleware` accept virtual keys beside the
config's router tokens; :class:`KeyBudgetMiddleware` (after authentication) refuses a request whose
key or team has used up its budget, with 400 ``budget_exceeded`` in the client's format, and records
what every request of a virtual key used once it has ended (streams included: a stream that crosses
the budget finishes, and the key is refused afterwards).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..context import Principal, get_context
from ..errors import send_error
from ..keys.manager import KeyManager
from .auth import TokenTable

__all__ = ["KeyBudgetMiddleware", "KeyedTokens"]


class KeyedTokens:
    """Router tokens from config first, then virtual keys (same ``lookup`` as :class:`TokenTable`)."""

    __slots__ = ("keys", "tokens")

    def __init__(self, tokens: TokenTable, keys: KeyManager) -> None:
        self.tokens = tokens
        self.keys = keys

    def __len__(self) -> int:
        return len(self.tokens) + len(self.keys)

    def lookup(self, token: str) -> Principal | None:
        principal = self.tokens.lookup(token)
        return principal if principal is not None else self.keys.principal(token)


class KeyBudgetMiddleware:
    """Enforce virtual keys' budgets and record their spend (see the module docstring).

    Scope: reads ``ctx.principal`` (set by token auth), ``ctx.model``, ``ctx.deployment`` and, after
    the inner app returns, ``ctx.usage``. Requests of config tokens pass untouched.
    """

    def __init__(self, app: ASGIApp, *, keys: KeyManager) -> None:
        self._app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope) if scope["type"] == "http" else None
        principal = ctx.principal if ctx is not None else None
        if ctx is None or principal is None or principal.key_id is None:
            await self._app(scope, receive, send)
            return
        refusal = self.keys.refusal(principal)
        if refusal is not None:
            await send_error(send, ctx.client_api.wire, refusal)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            if ctx.usage and ctx.model is not None:
                deployment = ctx.deployment
                self.keys.record(
                    principal,
                    ctx.model,
                    ctx.usage,
                    upstream_model=deployment.model if deployment is not None else None,
                    provider=deployment.provider.api if deployment is not None else None,
                )
        await self.keys.maintain()  # the response is complete: the client waits for none of this
