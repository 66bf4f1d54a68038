"""Concurrency limits: at most N requests in flight per router token or per provider."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, TypeVar

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import RequestContext, ensure_context, receive_body
from ..disconnect import run_while_connected
from ..errors import GatewayError, send_error
from ..state import Lease, Limiter, StateBackend, StateUnavailable

_T = TypeVar("_T")

__all__ = ["ConcurrencyLimitMiddleware", "Limiter"]


class ConcurrencyLimitMiddleware:
    """Limit the requests in flight per router token (``by="token"``) or per provider (``by="provider"``).

    ``limits`` maps token or provider names to their limit; names not in it are not limited (a
    virtual key's ``ctx.principal.max_in_flight``, and a provider's own ``Provider.max_in_flight``,
    apply when its name is not in ``limits``). A
    request over the limit waits up to ``max_wait`` seconds for a slot, then gets 429 with
    ``Retry-After: <retry_after>`` in the client's format (code ``concurrency_limit``); one whose
    client disconnects meanwhile leaves the queue at once. The slot is held until the inner app
    returns: the end of a stream, or the client's disconnect.

    Put the token limit after authentication; the provider limit after deployment choice (inside
    ``RetryMiddleware``, so that a full provider makes it try another deployment).

    With a shared ``state`` (Redis), the slots are leases shared by every instance (named
    ``<by>:<name>``), renewed while the request runs and expiring if its instance dies; a waiting
    request polls for a free one. While the state is unreachable, ``state.when_down`` decides:
    ``"open"`` lets requests through, ``"closed"`` answers 503, ``"local"`` uses this process's
    slots until it is back.

    Scope: reads ``ctx.principal`` or ``ctx.deployment``; a waiting request reads its body into
    ``ctx.body``; writes ``ctx.last_error`` (``"limited"`` on 429, ``"disconnect"``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Mapping[str, int],
        by: Literal["token", "provider"] = "token",
        max_wait: float = 10.0,
        retry_after: int = 1,
        state: StateBackend | None = None,
    ) -> None:
        if by not in ("token", "provider"):
            raise ValueError("by must be 'token' or 'provider'")
        self._app = app
        self._by = by
        self._limiters = {name: Limiter(limit) for name, limit in limits.items()}
        #: Limiters of virtual keys and providers that carry their own limit, by key id or provider name.
        self._own: dict[str, Limiter] = {}
        self._max_wait = max_wait
        self._headers = (("retry-after", str(retry_after)),)
        self._limits = dict(limits)
        self._state = state if state is not None and state.shared else None

    def limiter(self, name: str) -> Limiter | None:
        return self._limiters.get(name) or self._own.get(name)

    def _own_limiter(self, name: str, limit: int) -> Limiter:
        """The limiter of a key or provider that carries its own limit (a new one when the limit changed)."""
        limiter = self._own.get(name)
        if limiter is None or limiter.limit != limit:
            limiter = self._own[name] = Limiter(limit)
        return limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ctx = ensure_context(scope)
        name = self._name(ctx)
        limiter = self._limiters.get(name) if name is not None else None
        if limiter is None and self._by == "token" and ctx.principal is not None and ctx.principal.max_in_flight:
            # A virtual key's own limit: one limiter per key, made on its first request.
            name = ctx.principal.key_id or ctx.principal.name
            limiter = self._own_limiter(name, ctx.principal.max_in_flight)
        elif limiter is None and self._by == "provider" and ctx.deployment is not None:
            own = ctx.deployment.provider.max_in_flight  # a store provider's own limit (its record)
            if own and name is not None and name not in self._limits:
                limiter = self._own_limiter(name, own)
        if limiter is None:
            await self._app(scope, receive, send)
            return
        if self._state is not None:
            assert name is not None
            await self._shared(self._state, name, limiter, scope, receive, send)
            return
        if not limiter.try_acquire():
            try:
                ctx, receive = await receive_body(scope, receive)
            except GatewayError as exc:
                await send_error(send, ctx.client_api.wire, exc)
                return
            acquired, receive = await self._wait(limiter, receive)
            if acquired is None:
                ctx.last_error = "disconnect"  # left while waiting: nobody to answer
                return
        else:
            acquired = True
        if not acquired:
            ctx.last_error = "limited"
            message = f"Too many requests in flight for {self._by} {name!r}; retry shortly."
            error = GatewayError(429, message, code="concurrency_limit", headers=self._headers)
            await send_error(send, ctx.client_api.wire, error)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            limiter.release()

    async def _shared(
        self, state: StateBackend, name: str, limiter: Limiter, scope: Scope, receive: Receive, send: Send
    ) -> None:
        ctx = ensure_context(scope)
        key, limit = f"{self._by}:{name}", self._limits.get(name, limiter.limit)
        lease: Lease | None = None
        local = False
        try:
            try:
                lease = await state.acquire(key, limit, 0)
                if lease is None:
                    ctx, receive = await receive_body(scope, receive)

                    async def wait() -> Lease | object | None:
                        try:
                            return await state.acquire(key, limit, self._max_wait)
                        except StateUnavailable:
                            return _DOWN  # raised below, outside the watch's task group

                    waited, receive = await self._watch(wait, receive)
                    if waited is _LEFT:
                        ctx.last_error = "disconnect"
                        return
                    if waited is _DOWN:
                        raise StateUnavailable("lost while waiting")
                    lease = waited  # type: ignore[assignment]
            except StateUnavailable:
                if state.when_down == "closed":
                    message = "Concurrency limits cannot be checked right now (the shared state is unreachable)."
                    error = GatewayError(503, message, code="state_unavailable", headers=self._headers)
                    await send_error(send, ctx.client_api.wire, error)
                    return
                if state.when_down == "local":
                    if not limiter.try_acquire():
                        ctx, receive = await receive_body(scope, receive)
                        got, receive = await self._wait(limiter, receive)
                        if got is None:
                            ctx.last_error = "disconnect"
                            return
                        if not got:
                            await self._refuse(ctx, name, send)
                            return
                    local = True
                else:
                    await self._app(scope, receive, send)  # fail open
                    return
        except GatewayError as exc:
            await send_error(send, ctx.client_api.wire, exc)
            return
        if lease is None and not local:
            await self._refuse(ctx, name, send)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            if local:
                limiter.release()
            elif lease is not None:
                with anyio.CancelScope(shield=True):
                    await lease.release()

    async def _refuse(self, ctx: RequestContext, name: str, send: Send) -> None:
        ctx.last_error = "limited"
        message = f"Too many requests in flight for {self._by} {name!r}; retry shortly."
        error = GatewayError(429, message, code="concurrency_limit", headers=self._headers)
        await send_error(send, ctx.client_api.wire, error)

    async def _wait(self, limiter: Limiter, receive: Receive) -> tuple[bool | None, Receive]:
        """Wait for a slot while watching for the client leaving.

        Returns (True: got one, False: timed out, None: the client left) and a ``receive`` that
        replays what the watch read, so the inner app sees every message.
        """
        got, receive = await self._watch(lambda: limiter.acquire(self._max_wait), receive)
        return (None if got is _LEFT else bool(got)), receive

    async def _watch(self, acquire: Callable[[], Awaitable[_T]], receive: Receive) -> tuple[_T | object, Receive]:
        """Run ``acquire`` while watching for the client leaving (then: :data:`_LEFT`)."""
        read: deque[Message] = deque()  # the replayed body: the inner app gets it again
        connected, acquired = await run_while_connected(receive, acquire, keep=read.append)
        if not connected:
            return _LEFT, receive
        if not read:
            return acquired, receive

        async def replay() -> Message:
            return read.popleft() if read else await receive()

        return acquired, replay

    def _name(self, ctx: RequestContext) -> str | None:
        if self._by == "token":
            return ctx.principal.name if ctx.principal is not None else None
        return ctx.deployment.provider.name if ctx.deployment is not None else None


_LEFT = object()  # the client left while waiting for a slot
_DOWN = object()  # the shared state was lost while waiting
