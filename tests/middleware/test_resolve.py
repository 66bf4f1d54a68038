from __future__ import annotations

import json

import pytest
from starlette.types import Message

from asgi_llmroute import Deployment, Provider, ProviderResolverMiddleware, Route, RouteTable
from asgi_llmroute.context import SCOPE_KEY, ClientAPI, Principal, RequestContext, get_context

from .apps import Spy, client, not_called_receive, not_called_send

pytestmark = pytest.mark.anyio

OPENAI = Provider(name="oa", api="openai", base_url="http://oa/v1")
ANTHROPIC = Provider(name="an", api="anthropic", base_url="http://an/")
TABLE = RouteTable(
    [OPENAI, ANTHROPIC],
    [Route("claude", (Deployment(ANTHROPIC, "claude-sonnet-4-5"),)), Route("same", (Deployment(OPENAI, "same"),))],
)


@pytest.mark.parametrize(
    ("model", "provider", "upstream_model"),
    [
        ("claude", "an", "claude-sonnet-4-5"),
        ("same", "oa", "same"),
        ("oa/gpt-5", "oa", "gpt-5"),
        ("an/claude-x/with-slash", "an", "claude-x/with-slash"),
    ],
)
async def test_resolution(model: str, provider: str, upstream_model: str) -> None:
    spy = Spy()
    body = {"model": model, "messages": [{"role": "user", "content": "é"}]}
    async with client(ProviderResolverMiddleware(spy, routes=TABLE)) as c:
        response = await c.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    ctx = get_context(spy.scope or {})
    assert ctx is not None and ctx.deployment is not None
    assert ctx.deployment.provider.name == provider
    assert ctx.model == model
    assert json.loads(spy.body) == {**body, "model": upstream_model}


async def test_unchanged_model_forwards_the_body_byte_for_byte() -> None:
    spy = Spy()
    raw = b'{ "model" : "same",  "x": 1.0 }'
    async with client(ProviderResolverMiddleware(spy, routes=TABLE)) as c:
        await c.post("/v1/chat/completions", content=raw)
    assert spy.body == raw


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b'{"model": "unknown"}', 404, "model_not_found"),
        (b'{"model": "nope/x"}', 404, "model_not_found"),
        (b'{"model": ""}', 400, "missing_model"),
        (b'{"model": 3}', 400, "missing_model"),
        (b'{"messages": []}', 400, "missing_model"),
        (b"not json", 400, "invalid_json"),
        (b"\xff\xfe", 400, "invalid_json"),
        (b"[]", 400, None),
    ],
)
async def test_errors(content: bytes, status: int, code: str | None) -> None:
    spy = Spy()
    async with client(ProviderResolverMiddleware(spy, routes=TABLE)) as c:
        response = await c.post("/v1/chat/completions", content=content)
        anthropic = await c.post("/v1/messages", content=content)
    assert response.status_code == status and anthropic.status_code == status
    assert response.json()["error"]["code"] == code
    assert anthropic.json()["type"] == "error"
    assert spy.calls == 0


async def test_principal_allow_list_is_enforced_when_auth_did_not_check() -> None:
    spy = Spy()
    resolver = ProviderResolverMiddleware(spy, routes=TABLE)

    async def with_principal(scope, receive, send):
        scope[SCOPE_KEY] = RequestContext(client_api=ClientAPI.OPENAI_CHAT, principal=Principal("p", ("same",)))
        await resolver(scope, receive, send)

    async with client(with_principal) as c:
        assert (await c.post("/v1/chat/completions", json={"model": "claude"})).status_code == 403
        assert (await c.post("/v1/chat/completions", json={"model": "same"})).status_code == 200


async def test_not_http_passes_through() -> None:
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    await ProviderResolverMiddleware(app, routes=TABLE)({"type": "lifespan"}, not_called_receive, not_called_send)
    assert seen == ["lifespan"]


async def test_a_client_gone_before_its_body_arrived_gets_nothing() -> None:
    spy = Spy()
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"model": "cl', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT)
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": [], SCOPE_KEY: ctx}
    await ProviderResolverMiddleware(spy, routes=TABLE)(scope, receive, send)  # no exception
    assert (spy.scope, sent, ctx.last_error) == (None, [], "disconnect")


@pytest.mark.parametrize(
    ("raw", "spliced"),
    [
        # The client's bytes kept, only the model's value replaced: spacing, key order, escapes.
        (b'{ "messages": [{"content": "a \\"model\\""}], "model" : "alias" }', True),
        (b'{"model":"al\\u0069as","stream":true}', True),
        # "model" twice (a nested key, a string value, a duplicate key): parsed and written again.
        (b'{"model":"alias","metadata":{"model":"x"}}', False),
        (b'{"model":"alias","messages":[{"role":"model"}]}', False),
        (b'{"model":"x","model":"alias"}', False),
    ],
)
def test_set_model_splices_the_value_into_the_clients_bytes(raw: bytes, spliced: bool) -> None:
    ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT)
    ctx.body = raw
    assert ctx.requested_model() == "alias"
    ctx.set_model('up/stream "v2"')
    assert json.loads(ctx.body) == {**json.loads(raw), "model": 'up/stream "v2"'}
    assert ctx.json()["model"] == 'up/stream "v2"'
    if spliced:
        assert ctx.body == raw.replace(b'"al\\u0069as"', b'"alias"').replace(b'"alias"', b'"up/stream \\"v2\\""')
