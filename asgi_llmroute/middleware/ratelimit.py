"""Per-router-token rate limits: requests and tokens per minute, answered with 429 and ``Retry-After``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal, Protocol

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from ..context import RequestContext, get_context
from ..errors import GatewayError, send_error
from ..state import InMemoryRateLimitBackend, RateLimit, Rejection, StateUnavailable

__all__ = ["InMemoryRateLimitBackend", "RateLimit", "RateLimitBackend", "RateLimitMiddleware", "Rejection"]

logger = logging.getLogger("asgi_llmroute.state")

#: Bytes of request body per token, for the tpm reservation made at admission.
BYTES_PER_TOKEN = 4


class RateLimitBackend(Protocol):
    """Where the counts live (:class:`InMemoryRateLimitBackend`, or a :class:`StateBackend`)."""

    async def admit(self, key: str, limit: RateLimit, reserve: int = 0) -> Rejection | None:
        """Count one request for ``key`` (reserving ``reserve`` tokens) and return None, or refuse it."""
        ...

    async def settle(self, key: str, used: int, reserved: int = 0) -> None:
        """Replace a finished request's ``reserved`` estimate by the ``used`` tokens."""
        ...


class RateLimitMiddleware:
    """Enforce each router token's (or deployment's) ``rpm`` and ``tpm`` (see :class:`RateLimit`).

    ``limits`` maps router token names (``by="token"``) or deployments as ``"<provider>/<model>"``
    (``by="deployment"``, LiteLLM's deployment ``rpm``/``tpm``) to their limits; names not in it are
    unlimited, unless the principal carries limits of its own (a virtual key's ``rpm``/``tpm``, counted
    under the key's id). A refused request gets 429 (``rate_limit_error``, code ``rate_limit_exceeded``) with
    ``Retry-After`` in whole seconds, in the client's format. A deployment's refusal also sets
    ``ctx.last_error = "limited"``: put that one inside ``RetryMiddleware``, which then tries another
    deployment (without cooling this one down).

    With a ``tpm`` limit, a request reserves an estimate of its tokens when it is admitted (its
    body's ``Content-Length`` / 4) and settles with its real ``ctx.usage`` (input plus output
    tokens) when it finishes, so concurrent requests overshoot the budget by one estimate at most.

    ``backend`` is where the counts live: this process by default, or a shared
    :class:`~asgi_llmroute.state.StateBackend` (Redis). While a shared backend is unreachable,
    ``when_down`` decides: ``"open"`` admits, ``"closed"`` refuses with 503, ``"local"`` counts in
    this process until it is back.

    Put the token limit after authentication. Scope: reads ``ctx.principal`` (or ``ctx.deployment``)
    and ``ctx.usage``; writes ``ctx.last_error`` (deployments).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Mapping[str, RateLimit],
        backend: RateLimitBackend | None = None,
        when_down: Literal["open", "closed", "local"] = "local",
        by: Literal["token", "deployment"] = "token",
    ) -> None:
        if by not in ("token", "deployment"):
            raise ValueError("by must be 'token' or 'deployment'")
        self._by = by
        self._app = app
        self._limits = {name: limit for name, limit in limits.items() if limit.rpm or limit.tpm}
        self._backend: RateLimitBackend = backend if backend is not None else InMemoryRateLimitBackend()
        self._when_down = when_down
        self._local: InMemoryRateLimitBackend | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope) if scope["type"] == "http" else None
        name = self._name(ctx) if ctx is not None else None
        limit = self._limits.get(name) if name is not None else None
        principal = ctx.principal if ctx is not None else None
        if limit is None and self._by == "token" and principal is not None and (principal.rpm or principal.tpm):
            limit = RateLimit(principal.rpm, principal.tpm)  # a virtual key's own limits
            name = principal.key_id or principal.name
        if ctx is None or name is None or limit is None:
            await self._app(scope, receive, send)
            return
        key = name if self._by == "token" else f"deployment:{name}"
        reserve = _estimate(scope) if limit.tpm is not None else 0
        backend = self._backend
        try:
            rejection = await backend.admit(key, limit, reserve)
        except StateUnavailable:
            rejection, backend = await self._down(key, limit, reserve)
        if rejection is not None:
            if self._by == "deployment":
                ctx.last_error = "limited"
            await send_error(send, ctx.client_api.wire, _refusal(self._by, name, limit, rejection))
            return
        if limit.tpm is None:
            await self._app(scope, receive, send)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # settled even if the request was cancelled
                await self._settle(backend, key, ctx, reserve)

    def _name(self, ctx: RequestContext) -> str | None:
        if self._by == "token":
            return ctx.principal.name if ctx.principal is not None else None
        deployment = ctx.deployment
        return f"{deployment.provider.name}/{deployment.model}" if deployment is not None else None

    async def _down(self, key: str, limit: RateLimit, reserve: int) -> tuple[Rejection | None, RateLimitBackend]:
        if self._when_down == "open":
            return None, self._backend
        if self._when_down == "closed":
            return Rejection("unavailable", 1), self._backend
        if self._local is None:
            self._local = InMemoryRateLimitBackend()
        return await self._local.admit(key, limit, reserve), self._local

    async def _settle(self, backend: RateLimitBackend, key: str, ctx: RequestContext, reserved: int) -> None:
        usage = ctx.usage
        used = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
        try:
            await backend.settle(key, used, reserved)
        except StateUnavailable:
            pass  # the reservation stands until it leaves the window


def _estimate(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return max(1, int(value) // BYTES_PER_TOKEN)
            except ValueError:
                return 1
    return 1


def _refusal(by: str, name: str, limit: RateLimit, rejection: Rejection) -> GatewayError:
    if rejection.limit == "unavailable":
        return GatewayError(
            503,
            "Rate limits cannot be checked right now (the shared state is unreachable); retry shortly.",
            code="state_unavailable",
            headers=(("retry-after", str(rejection.retry_after)),),
        )
    amount = limit.rpm if rejection.limit == "rpm" else limit.tpm
    what = "requests" if rejection.limit == "rpm" else "tokens"
    return GatewayError(
        429,
        f"Rate limit reached for {'router token' if by == 'token' else 'deployment'} {name!r}: "
        f"{amount} {what} per minute. "
        f"Try again in {rejection.retry_after} s.",
        code="rate_limit_exceeded",
        headers=(("retry-after", str(rejection.retry_after)),),
    )
