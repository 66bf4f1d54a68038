"""Usage totals: each finished request's tokens added to its router token's and model's day."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..context import get_context
from ..state import StateBackend

__all__ = ["UsageTotalsMiddleware"]


class UsageTotalsMiddleware:
    """Add every finished request's ``ctx.usage`` to ``state``'s totals per token, model and UTC day.

    Read them with ``await state.usage(day)`` (the gateway serves them at ``GET /api/usage``). The
    counts are added in memory and, with a shared state, written in the background in batches:
    nothing is awaited on the request path.

    Put it after authentication. Scope: reads ``ctx.principal``, ``ctx.model`` and ``ctx.usage``
    after the inner app returns.
    """

    def __init__(self, app: ASGIApp, *, state: StateBackend) -> None:
        self._app = app
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._app(scope, receive, send)
        finally:
            ctx = get_context(scope) if scope["type"] == "http" else None
            if ctx is not None and ctx.principal is not None and ctx.model is not None:
                self._state.add_usage(ctx.principal.name, ctx.model, ctx.usage)
