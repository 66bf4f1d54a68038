"""[state] and [store] backend settings: validated at start, with messages naming the key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from asgi_llmroute import assemble
from asgi_llmroute.config import ConfigError, parse_config
from asgi_llmroute.gateway import build_gateway
from asgi_llmroute.state import MemoryState
from asgi_llmroute.state.redis import RedisState

pytestmark = pytest.mark.anyio

STORE = {"secret": "env:LLMROUTE_TEST_STORE_SECRET"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"state": {"backend": "redis"}}, 'state: backend = "redis" needs a url'),
        ({"state": {"backend": "redis", "url": "http://x"}}, "state: url: must start with redis://"),
        ({"state": {"backend": "memcached"}}, "state.backend: Input should be 'memory' or 'redis'"),
        ({"state": {"when_down": "maybe"}}, "state.when_down"),
        ({"state": {"prefix": "has space"}}, "state.prefix"),
        ({"store": {**STORE, "backend": "postgres"}}, 'store: backend = "postgres" needs a dsn'),
        ({"store": {**STORE, "dsn": "postgresql://h/db"}}, 'store: dsn is only used with backend = "postgres"'),
        ({"store": {**STORE, "backend": "postgres", "dsn": "mysql://h"}}, "store: dsn: must start with postgresql://"),
        ({"state": {"backend": "redis", "url": "env:LLMROUTE_TEST_NO_SUCH_VAR"}}, "state.url"),
    ],
)
def test_invalid(data: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMROUTE_TEST_STORE_SECRET", "x" * 43)
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="llmroute.toml")
    assert message in str(info.value)


def test_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMROUTE_TEST_REDIS_URL", "rediss://:pw@cache.internal:6380/2")
    config = parse_config({"state": {"backend": "redis", "url": "env:LLMROUTE_TEST_REDIS_URL", "prefix": "gw1:"}})
    state = assemble.state_backend(config)
    assert isinstance(state, RedisState) and state.prefix == "gw1:" and state.when_down == "local"
    assert "pw" not in repr(state) and "rediss://:***@cache.internal:6380/2" in repr(state)
    assert isinstance(assemble.state_backend(parse_config({})), MemoryState)


async def test_usage_api_with_the_in_memory_state() -> None:
    config = parse_config(
        {
            "tokens": [{"name": "alice", "key": "sk-usage-memory-0123456789"}],
            "admin": {"tokens": ["sk-admin-usage-0123456789"]},
            "providers": [{"name": "demo", "api": "openai", "base_url": "builtin://demo/v1"}],
            "models": [{"name": "demo", "provider": "demo", "model": "demo"}],
        }
    )
    gateway = build_gateway(config)
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(2):
            reply = await client.post(
                "/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-usage-memory-0123456789"}
            )
            assert reply.status_code == 200
        assert (await client.get("/api/usage")).status_code == 401
        bad = await client.get(
            "/api/usage?day=yesterday", headers={"authorization": "Bearer sk-admin-usage-0123456789"}
        )
        assert bad.status_code == 400
        reply = await client.get("/api/usage", headers={"authorization": "Bearer sk-admin-usage-0123456789"})
        assert reply.status_code == 200
        [row] = reply.json()["data"]
        assert row["token"] == "alice" and row["model"] == "demo" and row["requests"] == 2
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0
    await gateway.aclose()
