from __future__ import annotations

import pytest

from asgi_llmroute import TokenAuthMiddleware, TokenEntry, TokenTable
from asgi_llmroute.tokens import token_digest

from .apps import Spy, client, not_called_receive, not_called_send

pytestmark = pytest.mark.anyio

TABLE = TokenTable(
    [
        TokenEntry.from_key("alice", "sk-alice"),
        TokenEntry("bob", token_digest("sk-bob"), ("claude-*", "gpt-4o")),
    ]
)


@pytest.mark.parametrize(
    ("headers", "status", "principal"),
    [
        ({"authorization": "Bearer sk-alice"}, 200, "alice"),
        ({"authorization": "bearer sk-alice"}, 200, "alice"),
        ({"authorization": "BEARER   sk-alice  "}, 200, "alice"),
        ({"x-api-key": "sk-alice"}, 200, "alice"),
        ({"x-api-key": " sk-alice "}, 200, "alice"),
        ({"x-api-key": "sk-other", "authorization": "Bearer sk-alice"}, 200, "alice"),
        ({"x-api-key": "sk-alice", "authorization": "Bearer sk-other"}, 200, "alice"),
        ({"authorization": "Basic sk-alice"}, 401, None),
        ({"authorization": "Bearer"}, 401, None),
        ({"authorization": "Bearer "}, 401, None),
        ({"x-api-key": ""}, 401, None),
        ({"authorization": "Bearer sk-alicE"}, 401, None),
        ({"authorization": "Bearer sk-alice-longer"}, 401, None),
        ({}, 401, None),
    ],
)
async def test_token_sources(headers: dict[str, str], status: int, principal: str | None) -> None:
    spy = Spy()
    async with client(TokenAuthMiddleware(spy, tokens=TABLE)) as c:
        response = await c.post("/v1/chat/completions", headers=headers, json={"model": "m"})
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"principal": principal}
    else:
        assert spy.calls == 0
        assert response.json()["error"]["type"] == "authentication_error"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_anthropic_path_gets_anthropic_error_shape() -> None:
    async with client(TokenAuthMiddleware(Spy(), tokens=TABLE)) as c:
        response = await c.post("/v1/messages", json={})
    assert response.status_code == 401
    assert response.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": response.json()["error"]["message"]},
    }


@pytest.mark.parametrize(
    ("model", "status"),
    [("claude-sonnet", 200), ("gpt-4o", 200), ("gpt-4o-mini", 403), ("other", 403)],
)
async def test_model_allow_list(model: str, status: int) -> None:
    spy = Spy()
    async with client(TokenAuthMiddleware(spy, tokens=TABLE)) as c:
        response = await c.post("/v1/chat/completions", headers={"x-api-key": "sk-bob"}, json={"model": model})
    assert response.status_code == status
    if status == 200:
        assert spy.body == b'{"model":"' + model.encode() + b'"}'  # the body read for the check is replayed
    else:
        assert response.json()["error"]["code"] == "model_not_allowed"


async def test_exempt_paths() -> None:
    spy = Spy()
    async with client(TokenAuthMiddleware(spy, tokens=TABLE, exempt_paths=["/health", "/open"])) as c:
        assert (await c.get("/open")).status_code == 200
        assert (await c.get("/closed")).status_code == 401


async def test_not_http_passes_through() -> None:
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    await TokenAuthMiddleware(app, tokens=TABLE)({"type": "lifespan"}, not_called_receive, not_called_send)
    assert seen == ["lifespan"]


def test_duplicate_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="same key"):
        TokenTable([TokenEntry.from_key("a", "k"), TokenEntry.from_key("b", "k")])


def test_lookup_uses_digests_only() -> None:
    assert TABLE.lookup("sk-alice") is not None
    assert TABLE.lookup("sk-alice ") is None
    assert "sk-alice" not in repr(TABLE.lookup("sk-alice"))
