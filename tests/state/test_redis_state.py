"""RedisState against a real redis-server: atomic limits, leases, cooldowns, sessions, usage, outages."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest

from asgi_llmroute.state import RateLimit, StateUnavailable
from asgi_llmroute.state.redis import RedisState
from tests.support.dbservers import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pair(redis: RedisServer) -> AsyncIterator[tuple[RedisState, RedisState]]:
    """Two instances sharing one Redis under a prefix of their own."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    a = RedisState(redis.url, prefix=prefix, lease_ttl=1.5)
    b = RedisState(redis.url, prefix=prefix, lease_ttl=1.5)
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


async def test_rpm_is_exact_across_instances(pair: tuple[RedisState, RedisState]) -> None:
    a, b = pair
    limit = RateLimit(rpm=30)
    results = []

    async def one(state: RedisState) -> None:
        results.append(await state.admit("alice", limit))

    async with anyio.create_task_group() as tg:
        for i in range(60):
            tg.start_soon(one, (a, b)[i % 2])
    admitted = [r for r in results if r is None]
    refused = [r for r in results if r is not None]
    assert len(admitted) == 30
    assert {r.limit for r in refused} == {"rpm"}
    assert all(1 <= r.retry_after <= 60 for r in refused)
    assert await a.admit("bob", limit) is None  # per key


async def test_tpm_reservations_bound_the_overshoot(pair: tuple[RedisState, RedisState]) -> None:
    a, b = pair
    limit = RateLimit(tpm=1000)
    # Reservations count at once: the 4th request of 300 tokens is refused before any finished.
    assert [await s.admit("k", limit, reserve=300) for s in (a, b, a, b)][:3] == [None, None, None]
    assert (await a.admit("k", limit, reserve=300)) is not None
    # Settling with the real (smaller) counts gives the budget back.
    for s in (a, b, a, b):
        await s.settle("k", 100, reserved=300)
    assert await b.admit("k", limit, reserve=300) is None
    rejection = None
    for _ in range(10):
        rejection = await a.admit("k", limit, reserve=300)
        if rejection is not None:
            break
    assert rejection is not None and rejection.limit == "tpm" and rejection.retry_after >= 1


async def test_leases_are_shared_and_expire(pair: tuple[RedisState, RedisState]) -> None:
    a, b = pair
    leases = [await s.acquire("provider:p", 2, 0) for s in (a, b)]
    assert all(lease is not None for lease in leases)
    assert await a.acquire("provider:p", 2, 0.05) is None
    assert leases[0] is not None
    await leases[0].release()
    await leases[0].release()  # idempotent
    third = await b.acquire("provider:p", 2, 0.5)
    assert third is not None
    # Held leases are renewed past their ttl (1.5 s) while their instance lives.
    await anyio.sleep(2.0)
    assert await a.acquire("provider:p", 2, 0) is None
    # A waiter gets a slot as soon as one is released.
    async with anyio.create_task_group() as tg:

        async def release_soon() -> None:
            await anyio.sleep(0.1)
            assert third is not None
            await third.release()

        tg.start_soon(release_soon)
        assert await a.acquire("provider:p", 2, 2.0) is not None


async def test_leases_of_a_dead_instance_expire(redis: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    dead = RedisState(redis.url, prefix=prefix, lease_ttl=1.0)
    alive = RedisState(redis.url, prefix=prefix, lease_ttl=1.0)
    await dead.start()
    await alive.start()
    try:
        assert await dead.acquire("token:t", 1, 0) is not None
        for task in dead._tasks:  # it stops renewing (as if the process had died)
            task.cancel()
        assert await alive.acquire("token:t", 1, 0) is None
        assert await alive.acquire("token:t", 1, 3.0) is not None
    finally:
        await alive.aclose()
        await dead.aclose()


async def test_cooldowns_sessions_and_store_changes_reach_the_other_instance(
    pair: tuple[RedisState, RedisState],
) -> None:
    a, b = pair
    cooled: list[tuple[tuple[str, str], float]] = []
    changed: list[int] = []
    b.on_cooldown(lambda d, s: cooled.append((d, s)))
    b.on_store_change(lambda: changed.append(1))
    await anyio.sleep(0.2)  # b is subscribed
    changed.clear()
    a.cooldown(("p", "m"), 5.0)
    a.remember("route", "sess-1", ("p2", "m2"))
    a.store_changed()
    with anyio.fail_after(3):
        while not cooled or not changed:
            await anyio.sleep(0.01)
    assert cooled == [(("p", "m"), 5.0)]
    assert await b.session("route", "sess-1") == ("p2", "m2")
    assert await b.session("route", "other") is None
    # A third instance starting now learns the cooldown in force.
    late = RedisState(a.url, prefix=a.prefix)
    seen: list[tuple[tuple[str, str], float]] = []
    late.on_cooldown(lambda d, s: seen.append((d, s)))
    await late.start()
    try:
        with anyio.fail_after(3):
            while not seen:
                await anyio.sleep(0.01)
        assert seen[0][0] == ("p", "m") and 3.0 < seen[0][1] <= 5.0
    finally:
        await late.aclose()


async def test_usage_totals_per_token_model_day(pair: tuple[RedisState, RedisState]) -> None:
    a, b = pair
    a.add_usage("alice", "gpt", {"input_tokens": 10, "output_tokens": 5})
    b.add_usage("alice", "gpt", {"input_tokens": 1, "output_tokens": 2})
    b.add_usage("bob", "claude", {"input_tokens": 7})
    await b._flush()
    rows = await a.usage()
    assert [(r.token, r.model, r.requests, r.input_tokens, r.output_tokens) for r in rows] == [
        ("alice", "gpt", 2, 11, 7),
        ("bob", "claude", 1, 7, 0),
    ]
    assert await a.usage("2000-01-01") == []


async def test_unreachable_at_start_is_one_clear_error() -> None:
    state = RedisState("redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(StateUnavailable) as info:
        await state.start()
    message = str(info.value)
    assert "127.0.0.1:1" in message and "hunter2" not in message and "\n" not in message


async def test_lost_and_restarted_mid_run(redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    state = RedisState(redis.url, prefix=f"t{uuid.uuid4().hex[:8]}:")
    await state.start()
    try:
        assert await state.admit("k", RateLimit(rpm=100)) is None
        redis.kill()
        with caplog.at_level(logging.ERROR, logger="asgi_llmroute.state"):
            with pytest.raises(StateUnavailable):
                await state.admit("k", RateLimit(rpm=100))
            with pytest.raises(StateUnavailable):  # fails fast while down
                await state.acquire("x", 1, 1.0)
            assert await state.session("r", "s") is None
        assert sum("lost Redis" in r.message for r in caplog.records) == 1
        redis.start()
        with anyio.fail_after(10):
            while not state.up:
                await anyio.sleep(0.05)
        assert await state.admit("k", RateLimit(rpm=100)) is None
    finally:
        if redis.process is None:
            redis.start()
        await state.aclose()


async def test_on_error_local_starts_without_redis(redis: RedisServer) -> None:
    state = RedisState("redis://127.0.0.1:1/0", on_error="local")
    await state.start()
    try:
        assert not state.up
        with pytest.raises(StateUnavailable):
            await state.admit("k", RateLimit(rpm=1))
    finally:
        await state.aclose()
