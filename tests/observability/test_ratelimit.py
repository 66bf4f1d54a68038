"""Rate limits per router token: rpm and tpm hit exactly at the configured numbers."""

from __future__ import annotations

from typing import Any

import anthropic
import anyio
import httpx
import openai
import pytest

from asgi_llmroute.config import ConfigError
from asgi_llmroute.middleware.ratelimit import InMemoryRateLimitBackend, RateLimit, RateLimitMiddleware, Rejection
from tests.support.gateway import LIMITED_TOKEN, ROUTER_TOKEN, gateway_config

from .conftest import Running

MESSAGES: Any = [{"role": "user", "content": "Hi"}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _admit(backend: InMemoryRateLimitBackend, limit: RateLimit, key: str = "k") -> Rejection | None:
    return anyio.run(backend.admit, key, limit)


def test_rpm_window_is_exact() -> None:
    clock = Clock()
    backend = InMemoryRateLimitBackend(clock=clock)
    limit = RateLimit(rpm=5)
    for _ in range(5):
        assert _admit(backend, limit) is None
        clock.now += 1  # requests at t = 1000 .. 1004
    assert _admit(backend, limit) == Rejection("rpm", 55)  # the first leaves the window at 1060
    assert _admit(backend, limit, key="other") is None  # per key
    clock.now = 1059.9
    assert _admit(backend, limit) == Rejection("rpm", 1)
    clock.now = 1060.0
    assert _admit(backend, limit) is None  # the oldest has left the window
    assert _admit(backend, limit) == Rejection("rpm", 1)  # the second leaves at 1061


def test_tpm_blocks_once_the_budget_is_spent() -> None:
    clock = Clock()
    backend = InMemoryRateLimitBackend(clock=clock)
    limit = RateLimit(tpm=100)

    async def spend(tokens: int) -> None:
        await backend.spend("k", tokens)

    assert _admit(backend, limit) is None
    anyio.run(spend, 60)
    clock.now += 10
    assert _admit(backend, limit) is None  # 60 < 100
    anyio.run(spend, 39)
    assert _admit(backend, limit) is None  # 99 < 100
    anyio.run(spend, 1)
    clock.now += 5
    assert _admit(backend, limit) == Rejection("tpm", 45)  # below 100 once the 60 at t=1000 leave
    clock.now = 1060.0
    assert _admit(backend, limit) is None


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"tokens\[0\]\.rpm"):
        gateway_config("http://a", "http://b", tokens=[{"name": "x", "key": "k", "rpm": 0}])


def test_unlimited_and_unauthenticated_requests_pass() -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    middleware: Any = RateLimitMiddleware(app, limits={"a": RateLimit()})
    anyio.run(middleware, {"type": "lifespan"}, None, None)
    anyio.run(middleware, {"type": "http", "path": "/", "headers": []}, None, None)
    assert calls == ["lifespan", "http"]


@pytest.fixture(scope="module")
def limited(start: Any) -> Running:
    tokens = [
        {"name": "alice", "key": ROUTER_TOKEN, "rpm": 5},
        {"name": "limited", "key": LIMITED_TOKEN, "tpm": 30},
    ]
    return start(tokens=tokens)  # type: ignore[no-any-return]


def test_rpm_through_the_server(limited: Running) -> None:
    client = limited.openai()
    for _ in range(5):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    retry_after = int(caught.value.response.headers["retry-after"])
    assert 55 <= retry_after <= 60
    assert caught.value.code == "rate_limit_exceeded"
    assert "5 requests per minute" in caught.value.message
    # Anthropic clients get their own format.
    with pytest.raises(anthropic.RateLimitError) as refused:
        limited.anthropic().messages.create(model="claude", max_tokens=5, messages=MESSAGES)
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert refused.value.response.headers["retry-after"] == str(retry_after)
    # Listing models is not an LLM request: not limited.
    assert client.models.list().data


def test_tpm_through_the_server(limited: Running) -> None:
    limited.logs.clear()
    client = limited.openai(LIMITED_TOKEN)
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    limited.logs.access()  # the line follows the accounting of the request's tokens
    client.chat.completions.create(model="gpt-test", messages=MESSAGES)  # 18 < 30
    limited.logs.access(2)  # both have been accounted (18 + 18 = 36 >= 30)
    response = httpx.post(
        f"{limited.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {LIMITED_TOKEN}"},
        json={"model": "gpt-test", "messages": MESSAGES},
    )
    assert response.status_code == 429
    assert "30 tokens per minute" in response.json()["error"]["message"]
    assert 1 <= int(response.headers["retry-after"]) <= 60
