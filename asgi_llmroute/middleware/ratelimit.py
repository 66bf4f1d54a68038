"""Per-router-token rate limits: requests and tokens per minute, answered with 429 and ``Retry-After``."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from ..context import get_context
from ..errors import GatewayError, send_error

__all__ = ["InMemoryRateLimitBackend", "RateLimit", "RateLimitBackend", "RateLimitMiddleware", "Rejection"]

WINDOW = 60.0  # seconds: the limits are per minute


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A router token's limits; None is unlimited."""

    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request was refused (``"rpm"`` or ``"tpm"``) and whole seconds until it could pass."""

    limit: str
    retry_after: int


class RateLimitBackend(Protocol):
    """Where the counts live. Async so that a shared store (Redis, ...) can implement it later."""

    async def admit(self, key: str, limit: RateLimit) -> Rejection | None:
        """Count one request for ``key`` and return None, or refuse it (not counted)."""
        ...

    async def spend(self, key: str, tokens: int) -> None:
        """Record ``tokens`` used by a finished request of ``key``."""
        ...


class _Window:
    __slots__ = ("requests", "tokens", "token_sum")

    def __init__(self) -> None:
        self.requests: deque[float] = deque()  # admission times, oldest first
        self.tokens: deque[tuple[float, int]] = deque()  # (time, tokens) of finished requests
        self.token_sum = 0


class InMemoryRateLimitBackend:
    """Sliding one-minute windows kept in this process (one per worker: see docs/observability.md).

    Requests are counted exactly (the (rpm+1)-th request inside any 60 s window is refused); tokens of
    finished requests are summed and new requests are refused while the sum reaches ``tpm``. ``clock``
    (monotonic seconds) is injectable for tests.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    async def admit(self, key: str, limit: RateLimit) -> Rejection | None:
        now = self._clock()
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        start = now - WINDOW
        requests = window.requests
        while requests and requests[0] <= start:
            requests.popleft()
        if limit.tpm is not None:
            tokens = window.tokens
            while tokens and tokens[0][0] <= start:
                window.token_sum -= tokens.popleft()[1]
            if window.token_sum >= limit.tpm:
                # Wait until enough of the spent tokens leave the window to go below the budget.
                remaining = window.token_sum
                for at, spent in tokens:
                    remaining -= spent
                    if remaining < limit.tpm:
                        return Rejection("tpm", _seconds(at + WINDOW - now))
        if limit.rpm is not None and len(requests) >= limit.rpm:
            return Rejection("rpm", _seconds(requests[len(requests) - limit.rpm] + WINDOW - now))
        requests.append(now)
        return None

    async def spend(self, key: str, tokens: int) -> None:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        window.tokens.append((self._clock(), tokens))
        window.token_sum += tokens


def _seconds(delay: float) -> int:
    return max(1, math.ceil(delay))


class RateLimitMiddleware:
    """Enforce each router token's ``rpm`` and ``tpm`` (see :class:`RateLimit`).

    ``limits`` maps router token names to their limits; tokens not in it are unlimited. A refused
    request gets 429 (``rate_limit_error``, code ``rate_limit_exceeded``) with ``Retry-After`` in
    whole seconds, in the client's format. After a request finishes, its ``ctx.usage`` input plus
    output tokens are spent from the token's budget.

    Put it after authentication. Scope: reads ``ctx.principal`` and ``ctx.usage``.
    """

    def __init__(
        self, app: ASGIApp, *, limits: Mapping[str, RateLimit], backend: RateLimitBackend | None = None
    ) -> None:
        self._app = app
        self._limits = {name: limit for name, limit in limits.items() if limit.rpm or limit.tpm}
        self._backend: RateLimitBackend = backend if backend is not None else InMemoryRateLimitBackend()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope) if scope["type"] == "http" else None
        principal = ctx.principal if ctx is not None else None
        limit = self._limits.get(principal.name) if principal is not None else None
        if ctx is None or principal is None or limit is None:
            await self._app(scope, receive, send)
            return
        rejection = await self._backend.admit(principal.name, limit)
        if rejection is not None:
            amount = limit.rpm if rejection.limit == "rpm" else limit.tpm
            what = "requests" if rejection.limit == "rpm" else "tokens"
            error = GatewayError(
                429,
                f"Rate limit reached for router token {principal.name!r}: {amount} {what} per minute. "
                f"Try again in {rejection.retry_after} s.",
                code="rate_limit_exceeded",
                headers=(("retry-after", str(rejection.retry_after)),),
            )
            await send_error(send, ctx.client_api.wire, error)
            return
        if limit.tpm is None:
            await self._app(scope, receive, send)
            return
        try:
            await self._app(scope, receive, send)
        except BaseException:
            with anyio.CancelScope(shield=True):  # spent even if the request was cancelled
                await self._spend(principal.name, ctx.usage)
            raise
        await self._spend(principal.name, ctx.usage)

    async def _spend(self, key: str, usage: dict[str, int]) -> None:
        tokens = usage.get("input_tokens", 0) + usage.get("output_tokens", 0)
        if tokens:
            await self._backend.spend(key, tokens)
