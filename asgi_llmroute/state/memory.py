"""Runtime state kept in this process: today's behaviour, and the embedded default.

Each worker process has its own copy (so with ``--workers 4`` a token's ``rpm`` is four times its
limit); :mod:`.redis` shares the same state between workers and instances.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Literal

import anyio

from .base import CooldownListener, DeploymentKey, Lease, RateLimit, Rejection, UsageRow

__all__ = ["InMemoryRateLimitBackend", "Limiter", "MemoryState", "UsageTally", "utc_day"]

WINDOW = 60.0  # seconds: the limits are per minute


_DAY_SECONDS = 86400  # POSIX time has no leap seconds: every UTC day starts at a multiple of this
_last_day: tuple[float, str] = (float("inf"), "")  # (start, "YYYY-MM-DD") of the day utc_day() last named


def utc_day(at: float | None = None) -> str:
    """The UTC date of ``at`` (default: now) as ``YYYY-MM-DD``; formatted once per day, not per call."""
    global _last_day
    now = time.time() if at is None else at
    start, day = _last_day
    if start <= now < start + _DAY_SECONDS:
        return day
    day = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d")
    _last_day = (now - now % _DAY_SECONDS, day)
    return day


_Counts = dict[tuple[str, str, str], list[int]]  # (day, token, model) -> [requests, input, output tokens]


class UsageTally:
    """Requests and tokens counted in this process per UTC day, router token and model: MemoryState's
    record, and RedisState's increments waiting for the next flush."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: _Counts = {}

    def add(self, token: str, model: str, usage: Mapping[str, int]) -> None:
        """Count one request and its input and output tokens, today."""
        counts = self.counts.setdefault((utc_day(), token, model), [0, 0, 0])
        counts[0] += 1
        counts[1] += usage.get("input_tokens", 0)
        counts[2] += usage.get("output_tokens", 0)

    def take(self) -> _Counts:
        """Every count so far, leaving the tally empty."""
        counts, self.counts = self.counts, {}
        return counts

    def restore(self, counts: _Counts) -> None:
        """Add counts taken earlier back (they could not be written)."""
        for key, values in counts.items():
            mine = self.counts.setdefault(key, [0, 0, 0])
            for i, value in enumerate(values):
                mine[i] += value

    def rows(self, day: str) -> list[UsageRow]:
        """The day's counts, sorted."""
        return sorted(UsageRow(d, token, model, *c) for (d, token, model), c in self.counts.items() if d == day)


class _Window:
    __slots__ = ("requests", "token_sum", "tokens")

    def __init__(self) -> None:
        self.requests: deque[float] = deque()  # admission times, oldest first
        self.tokens: deque[tuple[float, int]] = deque()  # (time, tokens): reservations and their corrections
        self.token_sum = 0


class InMemoryRateLimitBackend:
    """Sliding one-minute windows kept in this process.

    Requests are counted exactly (the (rpm+1)-th request inside any 60 s window is refused). Tokens
    are counted when a request is admitted (its ``reserve``, an estimate) and corrected when it
    finishes (:meth:`spend` with the real count); new requests are refused while the window's sum
    reaches ``tpm``, so concurrent requests overshoot by one request's estimate at most. ``clock``
    (monotonic seconds) is injectable for tests.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    async def admit(self, key: str, limit: RateLimit, reserve: int = 0) -> Rejection | None:
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
                return Rejection("tpm", _seconds(WINDOW))  # pragma: no cover - only with negative corrections
        if limit.rpm is not None and len(requests) >= limit.rpm:
            return Rejection("rpm", _seconds(requests[len(requests) - limit.rpm] + WINDOW - now))
        requests.append(now)
        if reserve and limit.tpm is not None:
            window.tokens.append((now, reserve))
            window.token_sum += reserve
        return None

    async def spend(self, key: str, tokens: int, reserved: int = 0) -> None:
        if tokens == reserved:
            return
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        window.tokens.append((self._clock(), tokens - reserved))
        window.token_sum += tokens - reserved

    # The StateBackend spelling.
    async def settle(self, key: str, used: int, reserved: int = 0) -> None:
        await self.spend(key, used, reserved)


def _seconds(delay: float) -> int:
    return max(1, math.ceil(delay))


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


class _LocalLease:
    __slots__ = ("_limiter",)

    def __init__(self, limiter: Limiter) -> None:
        self._limiter: Limiter | None = limiter

    async def release(self) -> None:
        if self._limiter is not None:
            self._limiter.release()
            self._limiter = None


class MemoryState:
    """The :class:`~.base.StateBackend` of one process (nothing is shared)."""

    shared = False
    when_down: Literal["open", "closed", "local"] = "open"

    def __init__(self, *, max_sessions: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._rates = InMemoryRateLimitBackend(clock=clock)
        self._limiters: dict[str, Limiter] = {}
        self._sessions: OrderedDict[tuple[str, str], DeploymentKey] = OrderedDict()
        self._max_sessions = max_sessions
        self._usage = UsageTally()
        self._store_listeners: list[Callable[[], None]] = []

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def admit(self, key: str, limit: RateLimit, reserve: int = 0) -> Rejection | None:
        return await self._rates.admit(key, limit, reserve)

    async def settle(self, key: str, used: int, reserved: int = 0) -> None:
        await self._rates.spend(key, used, reserved)

    async def acquire(self, name: str, limit: int, max_wait: float) -> Lease | None:
        limiter = self._limiters.get(name)
        if limiter is None or limiter.limit != limit:
            limiter = self._limiters[name] = Limiter(limit)
        return _LocalLease(limiter) if await limiter.acquire(max_wait) else None

    def cooldown(self, deployment: DeploymentKey, seconds: float) -> None:
        pass  # the balancer of this process already knows

    def on_cooldown(self, listener: CooldownListener) -> None:
        pass  # nobody else reports one

    async def session(self, route: str, session: str) -> DeploymentKey | None:
        return self._sessions.get((route, session))

    def remember(self, route: str, session: str, deployment: DeploymentKey) -> None:
        key = (route, session)
        self._sessions[key] = deployment
        self._sessions.move_to_end(key)
        if len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)

    def add_usage(self, token: str, model: str, usage: Mapping[str, int]) -> None:
        self._usage.add(token, model, usage)

    async def usage(self, day: str | None = None) -> list[UsageRow]:
        return self._usage.rows(day or utc_day())

    def store_changed(self) -> None:
        for listener in self._store_listeners:
            listener()

    def on_store_change(self, listener: Callable[[], None]) -> None:
        self._store_listeners.append(listener)
