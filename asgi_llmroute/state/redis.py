"""Runtime state shared through Redis by every worker and instance that points at it.

One cohesive thing over 400 lines: RedisState, the Redis backend (its connection, request-path calls and batched
writes).

Needs the ``redis`` extra (redis-py), imported only when a ``[state] backend = "redis"`` is built.

On the request path: one script call to admit a rate-limited request (its rpm window and tpm
reservation checked and counted atomically, on Redis's clock), one to settle its tokens, one to
take a concurrency lease, one to give it back, and one read for a session id. Cooldowns, sessions
and usage are written by a background task in batches (one pipeline per batch); cooldowns and
store changes reach the other instances by pub/sub on ``<prefix>events``.

When Redis cannot be reached, calls fail fast with :class:`~.base.StateUnavailable` (the
middlewares then apply ``when_down``), one reconnect task retries with backoff, and everything
resumes when Redis is back: the subscription is renewed and current cooldowns are read again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from ..secret import redact_url
from .base import CooldownListener, DeploymentKey, Lease, RateLimit, Rejection, StateUnavailable, UsageRow
from .memory import UsageTally, utc_day
from .redis_scripts import ACQUIRE, ADMIT, RENEW, SETTLE

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisState"]

logger = logging.getLogger("asgi_llmroute.state")

_SESSION_TTL = 3600  # seconds a session is remembered after its last success
_USAGE_TTL = 90 * 86400  # seconds a day's usage totals are kept
_FLUSH_INTERVAL = 0.2  # seconds between background batches (cooldowns are sent at once)
_SEP = "\x1f"


def _shown(url: str) -> str:
    return redact_url(url, "<redis url>")


class _RedisLease:
    __slots__ = ("_id", "_key", "_state")

    def __init__(self, state: RedisState, key: str, lease_id: str) -> None:
        self._state: RedisState | None = state
        self._key = key
        self._id = lease_id

    async def release(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            await state._release(self._key, self._id)


class RedisState:
    """The :class:`~.base.StateBackend` of every instance that uses the Redis at ``url``.

    - ``prefix``: put before every key and the pub/sub channel (several gateways can share one Redis).
    - ``when_down``: what limits do while Redis is unreachable (``"open"``, ``"closed"``, ``"local"``).
    - ``on_error``: at start, ``"fail"`` raises :class:`StateUnavailable`; ``"local"`` starts anyway
      (as if Redis had just been lost) and connects when it can.
    - ``lease_ttl``: seconds a concurrency slot outlives an instance that died holding it.
    - ``timeout``: seconds a Redis call may take before Redis counts as down.
    """

    shared = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "llmroute:",
        when_down: Literal["open", "closed", "local"] = "local",
        on_error: Literal["fail", "local"] = "fail",
        lease_ttl: float = 15.0,
        timeout: float = 0.5,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.when_down = when_down
        self.on_error = on_error
        self._ttl_ms = max(1000, int(lease_ttl * 1000))
        self._timeout = timeout
        self._instance = uuid.uuid4().hex[:12]
        self._counter = 0
        self._redis: Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._up = False
        self._tasks: list[asyncio.Task[None]] = []
        self._reconnecting: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._pending: list[tuple[str, tuple[Any, ...]]] = []  # cooldowns and sessions to write
        self._usage = UsageTally()  # counts to add at the next flush
        self._leases: dict[str, str] = {}  # lease id -> semaphore key, renewed while held
        self._cooldown_listeners: list[CooldownListener] = []
        self._store_listeners: list[Callable[[], None]] = []
        self._started = False

    def __repr__(self) -> str:
        return f"RedisState({_shown(self.url)!r})"

    @property
    def up(self) -> bool:
        return self._up

    # -- connection ------------------------------------------------------------------------------

    def _client(self) -> Redis:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # One immediate retry (a pooled connection that a Redis restart broke reconnects), no more:
        # a call fails fast and the reconnect task takes over.
        return Redis.from_url(
            self.url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), 1),
            client_name=f"llmroute-{self._instance}",
        )

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._redis = self._client()
        for name, source in (("admit", ADMIT), ("settle", SETTLE), ("acquire", ACQUIRE), ("renew", RENEW)):
            self._scripts[name] = self._redis.register_script(source)
        try:
            await self._redis.ping()
        except Exception as exc:
            message = f"cannot reach Redis at {_shown(self.url)}: {_describe(exc)}"
            if self.on_error == "fail":
                await self._redis.aclose()
                self._redis = None
                self._started = False
                raise StateUnavailable(message) from None
            logger.warning("%s; serving with local state until it is reachable ([state] on_error = local)", message)
            self._down_since_start()
        else:
            self._up = True
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(t) for t in (self._subscribe(), self._flush_loop(), self._renew_loop())]

    def _down_since_start(self) -> None:
        self._up = False
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def aclose(self) -> None:
        tasks = [*self._tasks, *([self._reconnecting] if self._reconnecting else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except BaseException:  # noqa: S110 - cancelled, or already failed and reported
                pass
        self._tasks = []
        self._reconnecting = None
        if self._redis is not None:
            if self._up:
                try:
                    await self._flush()
                    if self._leases:
                        pipe = self._redis.pipeline(transaction=False)
                        for lease_id, key in self._leases.items():
                            pipe.zrem(key, lease_id)
                        await pipe.execute()
                except Exception:  # noqa: S110 - best effort: the leases expire anyway
                    pass
            await self._redis.aclose()
            self._redis = None
        self._started = False

    def _lost(self, exc: BaseException) -> StateUnavailable:
        """Note that Redis failed (logged once per outage) and start reconnecting."""
        if self._up:
            self._up = False
            logger.error(
                "lost Redis at %s: %s; limits now %s, reconnecting",
                _shown(self.url),
                _describe(exc),
                {"open": "fail open", "closed": "fail closed", "local": "count locally"}[self.when_down],
            )
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())
        return StateUnavailable(f"Redis at {_shown(self.url)} is unreachable")

    async def _reconnect(self) -> None:
        delay = 0.05
        while True:
            await asyncio.sleep(delay)
            assert self._redis is not None
            try:
                # Connections opened before the outage are dead: drop them all, then check a fresh one.
                await self._redis.connection_pool.disconnect(inuse_connections=True)
                await self._redis.ping()
            except Exception:
                delay = min(delay * 2, 2.0)
                continue
            self._up = True
            logger.warning("Redis at %s is reachable again; shared state resumed", _shown(self.url))
            self._wake.set()
            return

    def _ready(self) -> Redis:
        if not self._up or self._redis is None:
            if not self._started:
                raise StateUnavailable("the Redis state was not started (the gateway's lifespan did not run)")
            raise self._lost(ConnectionError("down"))
        return self._redis

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _member(self) -> str:
        self._counter += 1
        return f"{self._instance}:{self._counter}"

    # -- rate limits -----------------------------------------------------------------------------

    def _rate_keys(self, key: str) -> list[str]:
        # One hash tag per limited name: both keys land in one slot (one script, even on a cluster).
        return [self._key("rl", "{" + key + "}", "r"), self._key("rl", "{" + key + "}", "t")]

    async def admit(self, key: str, limit: RateLimit, reserve: int = 0) -> Rejection | None:
        self._ready()
        args = [limit.rpm or 0, limit.tpm or 0, reserve if limit.tpm else 0, self._member()]
        try:
            kind, value = await self._scripts["admit"](keys=self._rate_keys(key), args=args)
        except Exception as exc:
            raise self._lost(exc) from None
        if kind == 0:
            return None
        return Rejection("rpm" if kind == 1 else "tpm", max(1, -(-int(value) // 1000)))

    async def settle(self, key: str, used: int, reserved: int = 0) -> None:
        if used == reserved:
            return
        self._ready()
        try:
            await self._scripts["settle"](keys=self._rate_keys(key)[1:], args=[used - reserved])
        except Exception as exc:
            raise self._lost(exc) from None

    # -- concurrency leases ----------------------------------------------------------------------

    async def acquire(self, name: str, limit: int, max_wait: float) -> Lease | None:
        self._ready()
        key = self._key("sem", name)
        lease_id = self._member()
        deadline = time.monotonic() + max_wait
        pause = 0.005
        while True:
            try:
                got = await self._scripts["acquire"](keys=[key], args=[limit, lease_id, self._ttl_ms])
            except Exception as exc:
                raise self._lost(exc) from None
            if got:
                self._leases[lease_id] = key
                return _RedisLease(self, key, lease_id)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 1.5, 0.05)

    async def _release(self, key: str, lease_id: str) -> None:
        self._leases.pop(lease_id, None)
        if not self._up or self._redis is None:
            return  # it expires by itself
        try:
            await self._redis.zrem(key, lease_id)
        except Exception as exc:
            self._lost(exc)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            if not self._leases or not self._up:
                continue
            held = list(self._leases.items())
            try:
                await self._scripts["renew"](
                    keys=[key for _, key in held], args=[self._ttl_ms, *(lease for lease, _ in held)]
                )
            except Exception as exc:
                self._lost(exc)

    # -- cooldowns, sessions, store changes: background writes and pub/sub ------------------------

    def cooldown(self, deployment: DeploymentKey, seconds: float) -> None:
        self._pending.append(("cool", (deployment, seconds)))
        self._wake.set()  # sent at once: other instances should stop using it now

    def on_cooldown(self, listener: CooldownListener) -> None:
        self._cooldown_listeners.append(listener)

    async def session(self, route: str, session: str) -> DeploymentKey | None:
        try:
            redis = self._ready()
            value = await redis.get(self._key("sess", route, session))
        except StateUnavailable:
            return None
        except Exception as exc:
            self._lost(exc)
            return None
        if value is None:
            return None
        text = value if isinstance(value, str) else value.decode("utf-8", "replace")
        provider, _, model = text.partition(_SEP)
        return provider, model

    def remember(self, route: str, session: str, deployment: DeploymentKey) -> None:
        self._pending.append(("sess", (route, session, deployment)))
        self._wake.set()

    def add_usage(self, token: str, model: str, usage: Mapping[str, int]) -> None:
        self._usage.add(token, model, usage)

    async def usage(self, day: str | None = None) -> list[UsageRow]:
        day = day or utc_day()
        redis = self._ready()
        try:
            await self._flush()
            raw = await redis.hgetall(self._key("usage", day))
        except Exception as exc:
            raise self._lost(exc) from None
        totals: dict[tuple[str, str], list[int]] = {}
        for field, value in raw.items():
            name = field if isinstance(field, str) else field.decode("utf-8", "replace")
            token, model, what = name.split(_SEP)
            counts = totals.setdefault((token, model), [0, 0, 0])
            counts[{"n": 0, "in": 1, "out": 2}[what]] = int(value)
        return sorted(UsageRow(day, token, model, *counts) for (token, model), counts in totals.items())

    def store_changed(self) -> None:
        self._pending.append(("store", ()))
        self._wake.set()

    def on_store_change(self, listener: Callable[[], None]) -> None:
        self._store_listeners.append(listener)

    async def _flush_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), _FLUSH_INTERVAL)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if not self._up:
                # Cooldowns and sessions are stale by the time Redis is back; usage is kept and sent then.
                self._pending.clear()
                continue
            try:
                await self._flush()
            except Exception as exc:
                self._lost(exc)

    async def _flush(self) -> None:
        pending, self._pending = self._pending, []
        usage = self._usage.take()
        if not pending and not usage:
            return
        assert self._redis is not None
        pipe = self._redis.pipeline(transaction=False)
        channel = self._key("events")
        for kind, args in pending:
            if kind == "cool":
                (provider, model), seconds = args
                key = self._key("cool", provider + _SEP + model)
                if seconds > 0:
                    pipe.set(key, "1", px=max(1, int(seconds * 1000)))
                else:
                    pipe.delete(key)
                event = {"k": "cool", "i": self._instance, "p": provider, "m": model, "s": seconds}
                pipe.publish(channel, json.dumps(event))
            elif kind == "sess":
                route, session, (provider, model) = args
                pipe.set(self._key("sess", route, session), provider + _SEP + model, ex=_SESSION_TTL)
            else:
                pipe.publish(channel, json.dumps({"k": "store", "i": self._instance}))
        for (day, token, model), (n, tokens_in, tokens_out) in usage.items():
            key = self._key("usage", day)
            base = token + _SEP + model + _SEP
            pipe.hincrby(key, base + "n", n)
            pipe.hincrby(key, base + "in", tokens_in)
            pipe.hincrby(key, base + "out", tokens_out)
            pipe.expire(key, _USAGE_TTL)
        try:
            await pipe.execute()
        except BaseException:
            self._usage.restore(usage)  # not lost: added again next time
            raise

    async def _subscribe(self) -> None:
        delay = 0.05
        channel = self._key("events")
        while True:
            if not self._up or self._redis is None:
                await asyncio.sleep(delay)
                continue
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                await self._resync()
                delay = 0.05
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._deliver(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._lost(exc)
                delay = min(delay * 2, 2.0)
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except Exception:  # noqa: S110 - the connection is gone already
                    pass

    async def _resync(self) -> None:
        """After (re)subscribing: read the cooldowns in force and re-read the store (changes may be missed)."""
        assert self._redis is not None
        keys = [key async for key in self._redis.scan_iter(match=self._key("cool", "*"), count=500)]
        if keys:
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.pttl(key)
            ttls = await pipe.execute()
            start = len(self._key("cool", ""))
            for key, ttl in zip(keys, ttls, strict=True):
                if ttl and ttl > 0:
                    provider, _, model = key.decode("utf-8", "replace")[start:].partition(_SEP)
                    self._notify_cooldown((provider, model), ttl / 1000)
        for listener in self._store_listeners:
            listener()

    def _deliver(self, data: Any) -> None:
        try:
            event = json.loads(data)
            if event.get("i") == self._instance:
                return
            if event["k"] == "cool":
                self._notify_cooldown((str(event["p"]), str(event["m"])), float(event["s"]))
            elif event["k"] == "store":
                for listener in self._store_listeners:
                    listener()
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("ignoring a malformed message on %s", self._key("events"))

    def _notify_cooldown(self, deployment: DeploymentKey, seconds: float) -> None:
        for listener in self._cooldown_listeners:
            listener(deployment, seconds)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
