"""Limiter and ConcurrencyLimitMiddleware alone, on asyncio and trio."""

from __future__ import annotations

import anyio
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_llmroute import ConcurrencyLimitMiddleware, Deployment, Provider
from asgi_llmroute.context import SCOPE_KEY, ClientAPI, Principal, RequestContext
from asgi_llmroute.middleware.limits import Limiter
from tests.middleware.apps import client, not_called_receive, not_called_send

pytestmark = pytest.mark.anyio


async def test_free_slots_are_taken_at_once() -> None:
    limiter = Limiter(2)
    assert await limiter.acquire(0) and await limiter.acquire(0)
    assert not await limiter.acquire(0)
    limiter.release()
    assert limiter.in_flight == 1
    assert await limiter.acquire(0)


async def test_waiters_are_served_in_order_and_time_out() -> None:
    limiter = Limiter(1)
    assert await limiter.acquire(0)
    got: list[str] = []

    async def wait(name: str, timeout: float) -> None:
        if await limiter.acquire(timeout):
            got.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, "first", 5)
        await anyio.sleep(0.01)
        tg.start_soon(wait, "second", 5)
        tg.start_soon(wait, "late", 0.05)  # gives up before a slot frees
        await anyio.sleep(0.02)
        tg.start_soon(wait, "third", 5)
        await anyio.sleep(0.1)
        assert limiter.waiting == 3
        limiter.release()  # handed to "first"
        await anyio.sleep(0.01)
        limiter.release()  # to "second"
        await anyio.sleep(0.01)
        limiter.release()  # to "third"
    assert got == ["first", "second", "third"]
    assert (limiter.in_flight, limiter.waiting) == (1, 0)


async def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    limiter = Limiter(1)
    assert await limiter.acquire(0)
    got: list[str] = []
    scopes: list[anyio.CancelScope] = []

    async def wait(name: str) -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            if await limiter.acquire(5):
                got.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, "leaving")
        await anyio.sleep(0.01)
        tg.start_soon(wait, "next")
        await anyio.sleep(0.01)
        limiter.release()  # handed to "leaving", which is cancelled before it can run
        scopes[0].cancel()
        await anyio.sleep(0.05)
        scopes[1].cancel()
    # The slot is never lost: either the leaver kept it (its wait had already ended) or "next" got it.
    assert got in (["leaving"], ["next"])
    assert (limiter.in_flight, limiter.waiting) == (1, 0)


async def test_cancelled_while_waiting_leaves_the_queue() -> None:
    limiter = Limiter(1)
    assert await limiter.acquire(0)
    with anyio.move_on_after(0.02):
        with anyio.CancelScope() as scope:
            scope.deadline = anyio.current_time() + 0.01
            await limiter.acquire(5)
    assert (limiter.in_flight, limiter.waiting) == (1, 0)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Limiter(0)


async def app_ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def with_context(app: ASGIApp, ctx: RequestContext) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        scope[SCOPE_KEY] = ctx
        await app(scope, receive, send)

    return wrapped


async def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    middleware = ConcurrencyLimitMiddleware(app, limits={"alice": 1})
    await middleware({"type": "lifespan"}, not_called_receive, not_called_send)
    assert seen == ["lifespan"]


@pytest.mark.parametrize(
    ("client_api", "body"),
    [
        (
            ClientAPI.ANTHROPIC_MESSAGES,
            {
                "type": "error",
                "error": {
                    "type": "rate_limit_error",
                    "message": "Too many requests in flight for token 'alice'; retry shortly.",
                },
            },
        ),
        (
            ClientAPI.OPENAI_CHAT,
            {
                "error": {
                    "message": "Too many requests in flight for token 'alice'; retry shortly.",
                    "type": "rate_limit_error",
                    "param": None,
                    "code": "concurrency_limit",
                }
            },
        ),
    ],
)
async def test_over_the_limit_is_429_in_the_client_format(client_api: ClientAPI, body: object) -> None:
    middleware = ConcurrencyLimitMiddleware(app_ok, limits={"alice": 1}, max_wait=0, retry_after=3)
    limiter = middleware.limiter("alice")
    assert limiter is not None and await limiter.acquire(0)  # someone else holds the only slot
    ctx = RequestContext(client_api=client_api, principal=Principal("alice"))
    async with client(with_context(middleware, ctx)) as c:
        response = await c.post("/v1/x", content=b"{}")
    assert (response.status_code, response.headers["retry-after"], response.json()) == (429, "3", body)
    assert ctx.last_error == "limited"
    limiter.release()
    async with client(
        with_context(middleware, RequestContext(client_api=client_api, principal=Principal("alice")))
    ) as c:
        assert (await c.post("/v1/x")).status_code == 200
    assert limiter.in_flight == 0  # released when the app returned


async def test_unlimited_names_and_anonymous_requests_pass() -> None:
    middleware = ConcurrencyLimitMiddleware(app_ok, limits={"alice": 1}, max_wait=0)
    for principal in (Principal("bob"), None):
        ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT, principal=principal)
        async with client(with_context(middleware, ctx)) as c:
            assert (await c.post("/v1/x")).status_code == 200


async def test_by_provider_uses_the_deployment() -> None:
    provider = Provider(name="oa", api="openai", base_url="http://oa/v1")
    middleware = ConcurrencyLimitMiddleware(app_ok, limits={"oa": 1}, by="provider", max_wait=0.05)
    limiter = middleware.limiter("oa")
    assert limiter is not None and await limiter.acquire(0)
    ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT, deployment=Deployment(provider, "m"))
    async with client(with_context(middleware, ctx)) as c:
        response = await c.post("/v1/x")
    assert response.status_code == 429
    assert "provider 'oa'" in response.json()["error"]["message"]


def test_by_must_be_token_or_provider() -> None:
    with pytest.raises(ValueError):
        ConcurrencyLimitMiddleware(app_ok, limits={}, by="model")  # type: ignore[arg-type]


class Client:
    """A raw ASGI client: sends a body, then says ``http.disconnect`` when ``leave`` is set."""

    def __init__(self, body: bytes) -> None:
        self.messages = [{"type": "http.request", "body": body[:3], "more_body": True}]
        self.messages.append({"type": "http.request", "body": body[3:], "more_body": False})
        self.leave = anyio.Event()
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.messages:
            return self.messages.pop(0)
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)


def scope_for(ctx: RequestContext) -> Scope:
    return {"type": "http", "method": "POST", "path": "/v1/x", "headers": [], SCOPE_KEY: ctx}


async def test_a_waiter_whose_client_leaves_gives_up_its_place_at_once() -> None:
    called: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(True)

    middleware = ConcurrencyLimitMiddleware(app, limits={"alice": 1}, max_wait=30)
    limiter = middleware.limiter("alice")
    assert limiter is not None and await limiter.acquire(0)
    ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT, principal=Principal("alice"))
    visitor = Client(b'{"model": "m"}')
    with anyio.fail_after(5):  # not max_wait
        async with anyio.create_task_group() as tg:
            tg.start_soon(middleware, scope_for(ctx), visitor.receive, visitor.send)
            await anyio.wait_all_tasks_blocked()
            assert limiter.waiting == 1
            visitor.leave.set()
    assert (called, visitor.sent, limiter.waiting, limiter.in_flight) == ([], [], 0, 1)
    assert ctx.last_error == "disconnect"
    limiter.release()
    assert limiter.in_flight == 0


async def test_a_waiter_that_gets_a_slot_sees_its_whole_request() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        seen.append(await receive())

    middleware = ConcurrencyLimitMiddleware(app, limits={"alice": 1}, max_wait=30)
    limiter = middleware.limiter("alice")
    assert limiter is not None and await limiter.acquire(0)
    ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT, principal=Principal("alice"))
    visitor = Client(b'{"model": "m"}')
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(middleware, scope_for(ctx), visitor.receive, visitor.send)
            await anyio.wait_all_tasks_blocked()
            limiter.release()  # the slot passes to the waiter
            await anyio.wait_all_tasks_blocked()
            visitor.leave.set()
    assert seen == [
        {"type": "http.request", "body": b'{"model": "m"}', "more_body": False},
        {"type": "http.disconnect"},
    ]
    assert visitor.sent[0]["status"] == 200
    assert limiter.in_flight == 0
