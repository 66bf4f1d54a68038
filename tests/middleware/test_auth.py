from __future__ import annotations

import pytest
from starlette.types import Message

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


def _app_with_auth():
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "app's own"})

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("secret data")
        await websocket.close()

    return Starlette(
        routes=[Route("/health", health), WebSocketRoute("/ws", ws)],
        middleware=[Middleware(TokenAuthMiddleware, tokens=TABLE)],
    )


def test_websockets_are_authenticated() -> None:
    from starlette.testclient import TestClient, WebSocketDenialResponse

    with TestClient(_app_with_auth()) as c:
        for headers in ({}, {"authorization": "Bearer sk-wrong"}):
            with pytest.raises(WebSocketDenialResponse) as denied, c.websocket_connect("/ws", headers=headers) as ws:
                ws.receive_text()
            assert denied.value.status_code == 401
            assert denied.value.json()["error"]["type"] == "authentication_error"
        with c.websocket_connect("/ws", headers={"authorization": "Bearer sk-alice"}) as ws:
            assert ws.receive_text() == "secret data"


@pytest.mark.parametrize("extension", [True, False])
async def test_websocket_denial(extension: bool) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "headers": [],
        "extensions": {"websocket.http.response": {}} if extension else {},
    }
    app = Spy()
    await TokenAuthMiddleware(app, tokens=TABLE)(scope, receive, send)
    assert app.calls == 0
    if not extension:
        assert sent == [{"type": "websocket.close", "code": 1008, "reason": "missing_api_key"}]
        return
    assert sent[0]["type"] == "websocket.http.response.start"
    assert sent[0]["status"] == 401
    assert b"missing_api_key" in b"".join(m.get("body", b"") for m in sent[1:])


def test_a_general_middleware_exempts_nothing_by_default() -> None:
    from starlette.testclient import TestClient

    with TestClient(_app_with_auth()) as c:
        assert c.get("/health").status_code == 401
        assert c.get("/health", headers={"x-api-key": "sk-alice"}).json() == {"status": "app's own"}
