from __future__ import annotations

import pytest

from asgi_llmroute import CredentialStripMiddleware

from .apps import Spy, client, not_called_receive, not_called_send

pytestmark = pytest.mark.anyio


async def test_credentials_and_hop_by_hop_headers_are_removed() -> None:
    spy = Spy()
    headers = {
        "authorization": "Bearer sk-client",
        "x-api-key": "sk-client",
        "api-key": "sk-client",
        "x-goog-api-key": "g",
        "proxy-authorization": "Basic x",
        "cookie": "a=b",
        "openai-organization": "org",
        "x-litellm-api-key": "l",
        "connection": "keep-alive, x-private-hop",
        "x-private-hop": "1",
        "keep-alive": "timeout=5",
        "x-custom-secret": "s",
        "anthropic-beta": "tools",
        "user-agent": "test",
    }
    async with client(CredentialStripMiddleware(spy, extra_headers=["X-Custom-Secret"])) as c:
        await c.post("/v1/messages", headers=headers, content=b"{}")
    got = spy.headers
    for name in headers:
        if name in ("anthropic-beta", "user-agent"):
            assert got[name] == headers[name]
        else:
            assert name not in got, name
    assert "sk-client" not in repr(spy.scope)


async def test_not_http_passes_through() -> None:
    seen = []

    async def app(scope, receive, send):
        seen.append(scope)

    await CredentialStripMiddleware(app)({"type": "lifespan"}, not_called_receive, not_called_send)
    assert seen == [{"type": "lifespan"}]
