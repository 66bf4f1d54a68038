"""Concurrency limits: at most N requests in flight per router token or per provider."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Literal

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import RequestContext, ensure_context, receive_body
from ..errors import GatewayError, send_error

__all__ = ["ConcurrencyLimitMiddleware", "Limiter"]


class Limiter:
    """A counting semaphore with a bounded, first-come-first-served wait.

    Taking a free slot costs a comparison and an increment; only a request that has to wait
    allocates (one event). A released slot is handed straight to the oldest waiter, so a stream of
    newcomers cannot starve it.
    """

    __slots__ = ("_waiters", "in_flight", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a concurrency limit must be at least 1")
        self.limit = limit
        self.in_flight = 0
        self._waiters: deque[anyio.Event] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def try_acquire(self) -> bool:
        """Take a free slot if there is one (and nobody is waiting for it)."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return True
        return False

    async def acquire(self, max_wait: float) -> bool:
        """Take a slot, waiting up to ``max_wait`` seconds; False if none came free in time."""
        if self.try_acquire():
            return True
        if max_wait <= 0:
            return False
        event = anyio.Event()
        self._waiters.append(event)
        try:
            with anyio.move_on_after(max_wait):
                await event.wait()
        except BaseException:
            # Cancelled from outside (the client left): pass on a slot we may have been handed.
            self._abandon(event)
            raise
        if event.is_set():
            return True
        self._abandon(event)
        return False

    def release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # the slot changes hands; in_flight stays
        else:
            self.in_flight -= 1

    def _abandon(self, event: anyio.Event) -> None:
        if event.is_set():
            self.release()
        else:
            self._waiters.remove(event)


class ConcurrencyLimitMiddleware:
    """Limit the requests in flight per router token (``by="token"``) or per provider (``by="provider"``).

    ``limits`` maps token or provider names to their limit; names not in it are not limited. A
    request over the limit waits up to ``max_wait`` seconds for a slot, then gets 429 with
    ``Retry-After: <retry_after>`` in the client's format (code ``concurrency_limit``); one whose
    client disconnects meanwhile leaves the queue at once. The slot is held until the inner app
    returns: the end of a stream, or the client's disconnect.

    Put the token limit after authentication; the provider limit after deployment choice (inside
    ``RetryMiddleware``, so that a full provider makes it try another deployment).

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
    ) -> None:
        if by not in ("token", "provider"):
            raise ValueError("by must be 'token' or 'provider'")
        self._app = app
        self._by = by
        self._limiters = {name: Limiter(limit) for name, limit in limits.items()}
        self._max_wait = max_wait
        self._headers = (("retry-after", str(retry_after)),)

    def limiter(self, name: str) -> Limiter | None:
        return self._limiters.get(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._limiters:
            await self._app(scope, receive, send)
            return
        ctx = ensure_context(scope)
        name = self._name(ctx)
        limiter = self._limiters.get(name) if name is not None else None
        if limiter is None:
            await self._app(scope, receive, send)
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

    async def _wait(self, limiter: Limiter, receive: Receive) -> tuple[bool | None, Receive]:
        """Wait for a slot while watching for the client leaving.

        Returns (True: got one, False: timed out, None: the client left) and a ``receive`` that
        replays what the watch read, so the inner app sees every message.
        """
        read: deque[Message] = deque()
        acquired: bool | None = False
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                nonlocal acquired
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        acquired = None
                        tg.cancel_scope.cancel()
                        return
                    read.append(message)  # the replayed body: the inner app gets it again

            tg.start_soon(watch)
            acquired = await limiter.acquire(self._max_wait)
            tg.cancel_scope.cancel()
        if not read:
            return acquired, receive

        async def replay() -> Message:
            return read.popleft() if read else await receive()

        return acquired, replay

    def _name(self, ctx: RequestContext) -> str | None:
        if self._by == "token":
            return ctx.principal.name if ctx.principal is not None else None
        return ctx.deployment.provider.name if ctx.deployment is not None else None
