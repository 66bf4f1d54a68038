"""What the limit layers do while a shared state backend is unreachable: when_down = local, open, closed."""

from __future__ import annotations

import json
from typing import Any, Literal

import anyio
import pytest

from asgi_llmroute.context import SCOPE_KEY, ClientAPI, Principal, RequestContext
from asgi_llmroute.middleware.limits import ConcurrencyLimitMiddleware
from asgi_llmroute.middleware.ratelimit import RateLimitMiddleware
from asgi_llmroute.state import MemoryState, RateLimit, StateUnavailable

pytestmark = pytest.mark.anyio


class DownState(MemoryState):
    """A shared backend whose every call finds the server gone."""

    shared = True

    def __init__(self, when_down: Literal["open", "closed", "local"]) -> None:
        super().__init__()
        self.when_down = when_down

    async def admit(self, key: str, limit: RateLimit, reserve: int = 0) -> Any:
        raise StateUnavailable("Redis at redis://127.0.0.1:1/0 is unreachable")

    async def settle(self, key: str, used: int, reserved: int = 0) -> None:
        raise StateUnavailable("down")

    async def acquire(self, name: str, limit: int, max_wait: float) -> Any:
        raise StateUnavailable("down")


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _call(app: Any) -> tuple[int, Any]:
    ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT)
    ctx.principal = Principal("t")
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": [], SCOPE_KEY: ctx}
    sent: list[Any] = []

    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> Any:
        if messages:
            return messages.pop()
        await anyio.sleep_forever()  # the client stays connected

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


@pytest.mark.parametrize("when_down", ["open", "local", "closed"])
async def test_rate_limits_while_down(when_down: Literal["open", "closed", "local"]) -> None:
    state = DownState(when_down)
    app = RateLimitMiddleware(_ok, limits={"t": RateLimit(rpm=2, tpm=10**6)}, backend=state, when_down=when_down)
    statuses = [(await _call(app))[0] for _ in range(4)]
    if when_down == "open":
        assert statuses == [200, 200, 200, 200]
    elif when_down == "local":
        assert statuses == [200, 200, 429, 429]  # counted in this process
    else:
        status, body = await _call(app)
        assert statuses == [503] * 4 and status == 503
        assert body["error"]["code"] == "state_unavailable" and "Redis" not in body["error"]["message"]


@pytest.mark.parametrize("when_down", ["open", "local", "closed"])
async def test_concurrency_limits_while_down(when_down: Literal["open", "closed", "local"]) -> None:
    state = DownState(when_down)
    app = ConcurrencyLimitMiddleware(_ok, limits={"t": 1}, by="token", max_wait=0, state=state)
    status, body = await _call(app)
    assert status == (503 if when_down == "closed" else 200)
    if when_down == "closed":
        assert body["error"]["code"] == "state_unavailable"
    if when_down == "local":
        limiter = app.limiter("t")
        assert limiter is not None and limiter.in_flight == 0  # the local slot was given back
        assert limiter.try_acquire()  # held elsewhere: the next request waits max_wait (0), then 429
        status, body = await _call(app)
        assert status == 429 and body["error"]["code"] == "concurrency_limit"
