"""RetryMiddleware alone: a scripted inner app stands in for the per-attempt pipeline."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from asgi_llmroute import (
    Backoff,
    Balancer,
    Deployment,
    Provider,
    ProviderResolverMiddleware,
    RetryMiddleware,
    RetryPolicy,
    Route,
    RouteTable,
)
from asgi_llmroute.context import ClientAPI, Principal, RequestContext, ensure_context, get_context
from asgi_llmroute.middleware.retry import parse_retry_after
from tests.middleware.apps import client, not_called_receive, not_called_send

pytestmark = pytest.mark.anyio

A = Provider(name="a", api="openai", base_url="http://a/v1")
B = Provider(name="b", api="openai", base_url="http://b/v1")
C = Provider(name="c", api="anthropic", base_url="http://c")
NO_WAIT = Backoff(base=0.0, max=0.0)


class Script:
    """Inner app: answers attempt n with ``statuses[n]`` and records what each attempt saw."""

    def __init__(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses)
        self.headers = headers or {}
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope)
        assert ctx is not None and ctx.deployment is not None
        self.seen.append(
            {
                "deployment": f"{ctx.deployment.provider.name}/{ctx.deployment.model}",
                "body": json.loads(ctx.body),
                "headers": list(scope["headers"]),
                "upstream_path": ctx.upstream_path,
                "client_api": ctx.client_api,
            }
        )
        # What inner layers do to the request: rewrite body, headers, path, API.
        ctx.set_json({"rewritten": True})
        scope["headers"].append((b"x-inner", b"1"))
        ctx.upstream_path = "/v1/messages"
        ctx.client_api = ClientAPI.OPENAI_CHAT
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        headers = [(b"content-type", b"application/json"), (b"x-llmroute-attempts", b"spoofed")]
        headers += [(k.encode(), v.encode()) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"status":%d,' % status, "more_body": True})
        await send({"type": "http.response.body", "body": b'"n":%d}' % len(self.seen)})

    @property
    def deployments(self) -> list[str]:
        return [seen["deployment"] for seen in self.seen]


def stack(
    inner: Script,
    routes: list[Route],
    *,
    balancer: Balancer | None = None,
    policy: RetryPolicy | None = None,
    **options: Any,
) -> Any:
    table = RouteTable([A, B, C], routes)
    balancer = balancer if balancer is not None else Balancer()
    options.setdefault("backoff", NO_WAIT)
    options.setdefault("deployment_header", True)
    retry = RetryMiddleware(inner, balancer=balancer, routes=table, default_policy=policy, **options)
    return ProviderResolverMiddleware(retry, routes=table, balancer=balancer)


async def call(app: Any, model: str = "m", **kwargs: Any) -> Any:
    async with client(app) as c:
        return await c.post("/v1/chat/completions", json={"model": model, "messages": []}, **kwargs)


async def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await RetryMiddleware(app, balancer=Balancer())({"type": "lifespan"}, not_called_receive, not_called_send)
    assert seen == ["lifespan"]


async def test_needs_a_resolved_route() -> None:
    retry = RetryMiddleware(Script(200), balancer=Balancer())
    with pytest.raises(RuntimeError, match="ProviderResolverMiddleware"):
        await call(retry)


async def test_success_is_committed_and_stamped() -> None:
    inner = Script(200)
    response = await call(stack(inner, [Route("m", (Deployment(A, "up-a"),))]))
    assert response.status_code == 200
    assert response.json() == {"status": 200, "n": 1}
    assert response.headers["x-llmroute-deployment"] == "a/up-a"
    assert response.headers.get_list("x-llmroute-attempts") == ["1"]  # the inner app's copy is replaced


async def test_non_retryable_status_is_not_retried() -> None:
    inner = Script(400, 200)
    response = await call(stack(inner, [Route("m", (Deployment(A, "up-a"), Deployment(B, "up-b")))]))
    assert (response.status_code, response.headers["x-llmroute-attempts"]) == (400, "1")
    assert inner.deployments == ["a/up-a"]


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
async def test_retryable_statuses_move_to_the_next_deployment(status: int) -> None:
    inner = Script(status, 200)
    response = await call(stack(inner, [Route("m", (Deployment(A, "up-a"), Deployment(B, "up-b")))]))
    assert response.status_code == 200
    assert response.json() == {"status": 200, "n": 2}  # nothing of the first answer reached the client
    assert response.headers["x-llmroute-deployment"] == "b/up-b"
    assert response.headers["x-llmroute-attempts"] == "2"


async def test_each_attempt_starts_from_the_clients_request() -> None:
    inner = Script(503, 200)
    route = Route("m", (Deployment(A, "up-a"), Deployment(B, "m")))
    await call(stack(inner, [route]), headers={"x-client": "yes"})
    first, second = inner.seen
    assert first["body"] == {"model": "up-a", "messages": []}
    assert second["body"] == {"model": "m", "messages": []}  # the client's own model name again
    assert second["upstream_path"] is None
    assert second["client_api"] is ClientAPI.OPENAI_CHAT
    assert (b"x-inner", b"1") not in second["headers"]
    assert (b"x-client", b"yes") in second["headers"]


async def test_retries_with_backoff_then_the_last_answer_is_relayed() -> None:
    inner = Script(500)
    policy = RetryPolicy(max_retries=2, cooldown=0)
    began = time.monotonic()
    response = await call(
        stack(inner, [Route("m", (Deployment(A, "up-a"),))], policy=policy, backoff=Backoff(0.05, 0.1))
    )
    elapsed = time.monotonic() - began
    assert response.status_code == 500
    assert response.json() == {"status": 500, "n": 3}
    assert response.headers["x-llmroute-attempts"] == "3"
    assert inner.deployments == ["a/up-a"] * 3
    assert 0.05 <= elapsed < 1.0  # half to all of 0.05, then of 0.1


async def test_max_attempts_caps_everything() -> None:
    inner = Script(500)
    route = Route("m", (Deployment(A, "up-a"), Deployment(B, "up-b")), fallbacks=("f",))
    fallback = Route("f", (Deployment(C, "up-c"),))
    response = await call(stack(inner, [route, fallback], max_attempts=2))
    assert response.headers["x-llmroute-attempts"] == "2"
    assert len(inner.seen) == 2


async def test_fallbacks_in_order_with_cycles_cut() -> None:
    inner = Script(500, 500, 200)
    routes = [
        Route("m", (Deployment(A, "up-a"),), fallbacks=("x", "m", "f1", "f2")),
        Route("f1", (Deployment(B, "up-b"),), fallbacks=("m", "f1")),
        Route("f2", (Deployment(C, "up-c"),)),
    ]
    response = await call(stack(inner, routes))
    assert inner.deployments == ["a/up-a", "b/up-b", "c/up-c"]  # unknown "x" skipped, cycles cut
    assert response.headers["x-llmroute-deployment"] == "c/up-c"
    assert inner.seen[2]["body"]["model"] == "up-c"
    assert inner.seen[2]["client_api"] is ClientAPI.OPENAI_CHAT


async def test_without_cooldowns_retries_come_before_fallbacks() -> None:
    inner = Script(500, 500, 200)
    routes = [Route("m", (Deployment(A, "up-a"),), fallbacks=("f",)), Route("f", (Deployment(B, "up-b"),))]
    await call(stack(inner, routes, policy=RetryPolicy(max_retries=1, cooldown=0)))
    assert inner.deployments == ["a/up-a", "a/up-a", "b/up-b"]


async def test_a_cooling_model_starts_on_its_healthy_fallback() -> None:
    balancer = Balancer()
    balancer.failed(balancer.stats(Deployment(A, "up-a")), 60)
    inner = Script(200)
    routes = [Route("m", (Deployment(A, "up-a"),), fallbacks=("f",)), Route("f", (Deployment(B, "up-b"),))]
    response = await call(stack(inner, routes, balancer=balancer))
    assert inner.deployments == ["b/up-b"]
    assert response.headers["x-llmroute-attempts"] == "1"


async def test_a_cooling_model_without_healthy_fallback_is_still_tried() -> None:
    balancer = Balancer()
    for d in (Deployment(A, "up-a"), Deployment(B, "up-b")):
        balancer.failed(balancer.stats(d), 60)
    inner = Script(200)
    routes = [Route("m", (Deployment(A, "up-a"),), fallbacks=("f",)), Route("f", (Deployment(B, "up-b"),))]
    response = await call(stack(inner, routes, balancer=balancer))
    assert (response.status_code, inner.deployments) == (200, ["a/up-a"])
    assert not balancer.cooling(Deployment(A, "up-a"))  # a success closes the breaker


async def test_retry_after_sets_the_delay_and_the_cooldown() -> None:
    clock = [1000.0]
    balancer = Balancer(clock=lambda: clock[0])
    inner = Script(429, 200, headers={"retry-after-ms": "50"})
    began = time.monotonic()
    await call(stack(inner, [Route("m", (Deployment(A, "up-a"),))], balancer=balancer, policy=RetryPolicy(cooldown=1)))
    assert time.monotonic() - began >= 0.05
    assert inner.deployments == ["a/up-a", "a/up-a"]
    inner = Script(429, 200, headers={"retry-after": "20"})
    await call(
        stack(inner, [Route("m", (Deployment(B, "up-b"),))], balancer=balancer, backoff=Backoff(max_retry_after=5))
    )
    assert inner.deployments == ["b/up-b"]  # longer than max_retry_after: relayed, not waited for
    assert balancer.stats(Deployment(B, "up-b")).cooldown_until == 1005.0  # cooled for max_retry_after


async def test_409_does_not_cool_the_deployment_down() -> None:
    balancer = Balancer()
    await call(stack(Script(409, 200), [Route("m", (Deployment(A, "up-a"),))], balancer=balancer))
    assert balancer.stats(Deployment(A, "up-a")).cooldown_until == 0


async def test_our_own_limit_is_only_retried_elsewhere() -> None:
    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope)
        assert ctx is not None
        ctx.last_error = "limited"
        calls.append(ctx.deployment)
        await send({"type": "http.response.start", "status": 429, "headers": [(b"retry-after", b"1")]})
        await send({"type": "http.response.body", "body": b"{}"})

    calls: list[Deployment | None] = []
    balancer = Balancer()
    table = RouteTable([A, B], [Route("m", (Deployment(A, "up-a"), Deployment(B, "up-b")))])
    retry = RetryMiddleware(limited, balancer=balancer, routes=table, backoff=NO_WAIT)
    response = await call(ProviderResolverMiddleware(retry, routes=table, balancer=balancer))
    assert response.status_code == 429
    assert len(calls) == 2  # each deployment once, no waiting retries
    assert not balancer.cooling(Deployment(A, "up-a"))


async def test_a_large_retryable_body_is_relayed_rather_than_held() -> None:
    async def huge_error(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": []})
        for _ in range(3):
            await send({"type": "http.response.body", "body": b"x" * 600_000, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    table = RouteTable([A, B], [Route("m", (Deployment(A, "up-a"), Deployment(B, "up-b")))])
    app = ProviderResolverMiddleware(RetryMiddleware(huge_error, balancer=Balancer(), routes=table), routes=table)
    response = await call(app)
    assert (response.status_code, len(response.content)) == (503, 1_800_000)
    assert response.headers["x-llmroute-attempts"] == "1"


async def test_nothing_sent_means_nothing_retried() -> None:
    calls: list[int] = []

    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(1)  # e.g. the client went away: the forwarder sends nothing

    table = RouteTable([A, B], [Route("m", (Deployment(A, "up-a"), Deployment(B, "up-b")))])
    app = RetryMiddleware(silent, balancer=Balancer(), routes=table)
    ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT, route=table.resolve("m"), deployment=Deployment(A, "up-a"))
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "headers": [], "llmroute": ctx}, not_called_receive, send)
    assert (calls, sent) == ([1], [])


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        ([(b"retry-after", b"3")], 3.0),
        ([(b"retry-after", b" 1.5 ")], 1.5),
        ([(b"retry-after", b"soon")], None),
        ([(b"retry-after", b"-1")], None),
        ([(b"retry-after-ms", b"250")], 0.25),
        ([(b"retry-after", b"9"), (b"retry-after-ms", b"250")], 0.25),
        ([(b"retry-after-ms", b"nan-ish"), (b"retry-after", b"2")], 2.0),
        ([(b"retry-after", b"Wed, 21 Oct 2015 07:28:00 GMT")], 0.0),  # in the past
    ],
)
def test_parse_retry_after(headers: list[tuple[bytes, bytes]], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True).encode()
    seconds = parse_retry_after([(b"retry-after", when)])
    assert seconds is not None and 25 < seconds <= 30


@pytest.mark.parametrize("retry", [1, 2, 3, 10])
def test_backoff_is_jittered_within_bounds(retry: int) -> None:
    backoff = Backoff(base=0.5, max=4.0)
    cap = min(4.0, 0.5 * 2 ** (retry - 1))
    delays = [backoff.delay(retry) for _ in range(200)]
    assert all(cap / 2 <= d <= cap for d in delays)
    assert len(set(delays)) > 1


def as_principal(app: Any, *models: str) -> Any:
    """What TokenAuthMiddleware leaves in the context for a token with this allow-list."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        ensure_context(scope).principal = Principal("restricted", models)
        await app(scope, receive, send)

    return wrapped


async def test_fallbacks_the_token_may_not_use_are_skipped() -> None:
    inner = Script(500, 500, 200)
    routes = [
        Route("m", (Deployment(A, "up-a"),), fallbacks=("secret", "f1")),
        Route("secret", (Deployment(B, "up-secret"),), fallbacks=("f2",)),
        Route("f1", (Deployment(B, "up-b"),)),
        Route("f2", (Deployment(C, "up-c"),)),
    ]
    policy = RetryPolicy(max_retries=0)
    response = await call(as_principal(stack(inner, routes, policy=policy), "m", "f2"))
    # Neither "secret" nor f1 is tried; f2, secret's own fallback, is: the token may use it.
    assert inner.deployments == ["a/up-a", "c/up-c"]
    assert response.headers["x-llmroute-deployment"] == "c/up-c"


async def test_a_cooling_model_does_not_start_on_a_forbidden_fallback() -> None:
    balancer = Balancer()
    balancer.failed(balancer.stats(Deployment(A, "up-a")), 60)
    inner = Script(503)
    routes = [Route("m", (Deployment(A, "up-a"),), fallbacks=("f",)), Route("f", (Deployment(B, "up-b"),))]
    policy = RetryPolicy(max_retries=0)
    response = await call(as_principal(stack(inner, routes, balancer=balancer, policy=policy), "m"))
    assert inner.deployments == ["a/up-a"]
    assert response.status_code == 503


async def test_deployment_header_is_opt_in() -> None:
    route = [Route("m", (Deployment(A, "up-a"),))]
    response = await call(stack(Script(200), route, deployment_header=False))
    assert "x-llmroute-deployment" not in response.headers
    assert response.headers["x-llmroute-attempts"] == "1"
    response = await call(stack(Script(200), route))
    assert response.headers["x-llmroute-deployment"] == "a/up-a"


async def test_deployment_header_never_carries_unprintable_text() -> None:
    response = await call(stack(Script(200), [Route("m", (Deployment(A, "up-\N{SNOWMAN}"),))]))
    assert response.status_code == 200
    assert "x-llmroute-deployment" not in response.headers
