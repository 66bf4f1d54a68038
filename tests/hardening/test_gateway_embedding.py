"""The gateway embedded behind other middlewares and as the default config's defaults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from asgi_llmroute import build_gateway
from asgi_llmroute.config import parse_config
from asgi_llmroute.context import RequestContext, ensure_context
from asgi_llmroute.demo import DEMO_BASE_URL

pytestmark = pytest.mark.anyio

TOKEN = "sk-router-embedding-0123456789abcdef"


def _config(**extra: Any):
    return parse_config(
        {
            "tokens": [{"name": "alice", "key": TOKEN}],
            "providers": [{"name": "demo-openai", "api": "openai", "base_url": f"{DEMO_BASE_URL}/v1"}],
            "models": [{"name": "demo", "provider": "demo-openai", "model": "demo"}],
            "logging": {"access": False},
            **extra,
        },
        source="test",
    )


class Outer:
    """A user's middleware in front of the gateway that creates the context first, as documented."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: RequestContext | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen = ensure_context(scope)
        await self.app(scope, receive, send)


async def test_a_context_created_outside_the_gateway_is_honoured() -> None:
    gateway = build_gateway(_config())
    outer = Outer(gateway)
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        response = await c.post(
            "/v1/chat/completions",
            json={"model": "demo", "messages": [{"role": "user", "content": "Hi"}]},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    await gateway.aclose()
    assert response.status_code == 200, response.text
    ctx = outer.seen
    assert ctx is not None
    assert ctx.principal is not None and ctx.principal.name == "alice"
    assert ctx.model == "demo"
    assert ctx.usage.get("input_tokens", 0) > 0 or ctx.usage, ctx.usage


async def test_deployment_header_is_off_by_default_and_on_when_asked() -> None:
    for extra, expected in (({}, None), ({"routing": {"deployment_header": True}}, "demo-openai/demo")):
        gateway = build_gateway(_config(**extra))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as c:
            response = await c.post(
                "/v1/chat/completions",
                json={"model": "demo", "messages": [{"role": "user", "content": "Hi"}]},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        await gateway.aclose()
        assert response.status_code == 200
        assert response.headers.get("x-llmroute-deployment") == expected
        assert response.headers["x-llmroute-attempts"] == "1"
