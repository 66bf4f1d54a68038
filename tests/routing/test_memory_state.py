"""MemoryState, the one-process StateBackend, on asyncio and trio: limits, leases, sessions,
usage totals and store-change listeners."""

from __future__ import annotations

import anyio
import pytest

from asgi_llmroute.state.base import RateLimit
from asgi_llmroute.state.memory import Limiter, MemoryState

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limits_reserve_settle_and_recover() -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    limit = RateLimit(rpm=2, tpm=100)
    assert await state.admit("t", limit, reserve=60) is None
    await state.settle("t", 30, reserved=60)  # used less than reserved: 30 tokens in the window
    await state.settle("t", 30, reserved=30)  # exactly as reserved: nothing changes
    assert await state.admit("t", limit, reserve=10) is None
    clock.now += 1
    refused = await state.admit("t", limit)
    assert refused is not None and refused.limit == "rpm" and 1 <= refused.retry_after <= 60
    await state.settle("other", 150)  # spend of a key never admitted
    clock.now += 61  # the window has passed
    assert await state.admit("t", limit) is None
    tpm = await state.admit("other", RateLimit(tpm=100))
    assert tpm is None  # the other key's spend left the window too
    await state.settle("other", 150)
    refused = await state.admit("other", RateLimit(tpm=100))
    assert refused is not None and refused.limit == "tpm" and refused.retry_after == 60


async def test_leases_wait_and_a_changed_limit_gets_a_new_limiter() -> None:
    state = MemoryState()
    first = await state.acquire("p", 1, max_wait=0)
    assert first is not None
    assert await state.acquire("p", 1, max_wait=0) is None  # full, and not waiting
    second = await state.acquire("p", 2, max_wait=0)  # the limit changed: a fresh limiter
    assert second is not None
    await first.release()
    await first.release()  # twice is harmless
    await second.release()


async def test_a_waiter_gets_the_released_slot_and_a_timed_out_one_leaves_the_queue() -> None:
    limiter = Limiter(1)
    assert limiter.try_acquire()
    assert await limiter.acquire(0.01) is False
    assert limiter.waiting == 0
    got: list[bool] = []
    async with anyio.create_task_group() as tg:

        async def wait() -> None:
            got.append(await limiter.acquire(5))

        tg.start_soon(wait)
        while limiter.waiting == 0:
            await anyio.sleep(0)
        limiter.release()  # handed straight to the waiter
    assert got == [True] and limiter.in_flight == 1
    limiter.release()
    assert limiter.in_flight == 0
    with pytest.raises(ValueError):
        Limiter(0)


async def test_a_cancelled_waiter_passes_on_a_slot_it_was_handed() -> None:
    limiter = Limiter(1)
    assert limiter.try_acquire()
    async with anyio.create_task_group() as tg:

        async def wait() -> None:
            await limiter.acquire(5)

        tg.start_soon(wait)
        while limiter.waiting == 0:
            await anyio.sleep(0)
        limiter.release()  # handed over...
        tg.cancel_scope.cancel()  # ...but the waiter is cancelled before it runs
    assert limiter.in_flight in (0, 1) and limiter.waiting == 0
    if limiter.in_flight:
        limiter.release()
    assert limiter.try_acquire()  # the slot is free again either way


async def test_sessions_usage_and_store_listeners() -> None:
    state = MemoryState(max_sessions=2)
    await state.start()
    state.remember("r", "s1", ("p", "m1"))
    state.remember("r", "s2", ("p", "m2"))
    state.remember("r", "s1", ("p", "m3"))  # refreshed: s1 is now the newest
    state.remember("r", "s3", ("p", "m4"))  # evicts the oldest, s2
    assert await state.session("r", "s1") == ("p", "m3")
    assert await state.session("r", "s2") is None
    state.cooldown(("p", "m1"), 5)
    state.on_cooldown(lambda key, seconds: None)
    state.add_usage("alice", "gpt", {"input_tokens": 3, "output_tokens": 2})
    state.add_usage("alice", "gpt", {"input_tokens": 1})
    (row,) = await state.usage()
    assert (row.token, row.model, row.requests, row.input_tokens, row.output_tokens) == ("alice", "gpt", 2, 4, 2)
    assert await state.usage("1999-01-01") == []
    calls: list[int] = []
    state.on_store_change(lambda: calls.append(1))
    state.store_changed()
    assert calls == [1]
    await state.aclose()
