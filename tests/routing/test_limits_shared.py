"""ConcurrencyLimitMiddleware with a shared state (a scripted stand-in for Redis), on asyncio and
trio: leases are taken and given back, a full limit waits then refuses, and a state that is down
fails closed (503), local (this process's limiter) or open, as configured."""

from __future__ import annotations

import json
from typing import Any, Literal

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from asgi_llmroute import ConcurrencyLimitMiddleware
from asgi_llmroute.context import ClientAPI, Principal, RequestContext
from asgi_llmroute.state.base import StateUnavailable
from tests.routing.test_limits import Client, scope_for

pytestmark = pytest.mark.anyio


class Lease:
    def __init__(self, state: SharedState) -> None:
        self.state = state

    async def release(self) -> None:
        self.state.released += 1


class SharedState:
    """Answers ``acquire`` from a script: a lease, None (full) or StateUnavailable."""

    shared = True

    def __init__(self, script: list[str], when_down: Literal["open", "closed", "local"] = "local") -> None:
        self.script = script
        self.when_down = when_down
        self.calls: list[tuple[str, int, float]] = []
        self.released = 0

    async def acquire(self, name: str, limit: int, max_wait: float) -> Lease | None:
        self.calls.append((name, limit, max_wait))
        step = self.script.pop(0)
        if step == "down":
            raise StateUnavailable("redis://127.0.0.1:1 is unreachable")
        return Lease(self) if step == "lease" else None


async def run(
    state: SharedState, *, limit: int = 1, client_api: ClientAPI = ClientAPI.OPENAI_CHAT, hold_local: bool = False
) -> tuple[list[Message], list[bool], RequestContext, ConcurrencyLimitMiddleware]:
    called: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(True)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = ConcurrencyLimitMiddleware(app, limits={"alice": limit}, max_wait=0.2, state=state)  # type: ignore[arg-type]
    local = middleware.limiter("alice")
    assert local is not None
    if hold_local:
        assert local.try_acquire()  # this process's slot is taken
    ctx = RequestContext(client_api=client_api, principal=Principal("alice"))
    client = Client(b'{"model": "m"}')
    with anyio.fail_after(5):
        await middleware(scope_for(ctx), client.receive, client.send)
    assert local.in_flight == (1 if hold_local else 0)  # every local slot taken was given back
    return client.sent, called, ctx, middleware


def error(sent: list[Message]) -> tuple[int, Any]:
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


async def test_a_free_lease_is_taken_and_given_back() -> None:
    state = SharedState(["lease"])
    sent, called, _, _ = await run(state, limit=3)
    assert called == [True] and sent[0]["status"] == 200
    assert state.calls == [("token:alice", 3, 0)] and state.released == 1


async def test_a_full_limit_waits_then_gets_a_lease_or_is_refused() -> None:
    state = SharedState(["full", "lease"])
    sent, called, _, _ = await run(state)
    assert called == [True] and state.calls[1] == ("token:alice", 1, 0.2) and state.released == 1
    state = SharedState(["full", "full"])
    sent, called, ctx, _ = await run(state, client_api=ClientAPI.ANTHROPIC_MESSAGES)
    status, body = error(sent)
    assert (status, body["type"], called, ctx.last_error) == (429, "error", [], "limited")


async def test_down_and_closed_is_a_503() -> None:
    sent, called, _, _ = await run(SharedState(["down"], when_down="closed"))
    status, body = error(sent)
    assert status == 503 and body["error"]["code"] == "state_unavailable" and called == []
    assert ("retry-after", "1") in [(k.decode(), v.decode()) for k, v in sent[0]["headers"]]


async def test_down_while_waiting_and_closed_is_a_503_too() -> None:
    sent, called, _, _ = await run(SharedState(["full", "down"], when_down="closed"))
    assert error(sent)[0] == 503 and called == []


async def test_down_and_open_lets_the_request_through() -> None:
    state = SharedState(["down"], when_down="open")
    sent, called, _, _ = await run(state)
    assert called == [True] and state.released == 0


async def test_down_and_local_uses_this_process_limiter() -> None:
    sent, called, _, _ = await run(SharedState(["down"], when_down="local"))
    assert called == [True] and sent[0]["status"] == 200
    # With the local slot taken, the request waits max_wait and is refused.
    sent, called, ctx, _ = await run(SharedState(["down"], when_down="local"), hold_local=True)
    assert error(sent)[0] == 429 and called == [] and ctx.last_error == "limited"
