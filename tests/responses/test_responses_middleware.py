"""ResponsesMiddleware alone: what it does to the scope and context, and the frames it sends."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from asgi_llmroute import ClientAPI, Deployment, Provider, RequestContext, ResponsesMiddleware
from asgi_llmroute.context import SCOPE_KEY
from tests.middleware.apps import not_called_receive, not_called_send

from ._helpers import events, read, split

pytestmark = pytest.mark.anyio

CHAT = Provider(name="oa", api="openai", base_url="http://oa/v1")
NATIVE = Provider(name="native", api="openai", base_url="http://native/v1", responses_api=True)


class Inner:
    """Innermost app: records what it saw, answers with the given messages."""

    def __init__(self, *messages: Message) -> None:
        self.messages = messages
        self.body = b""
        self.ctx: RequestContext | None = None
        self.headers: dict[bytes, bytes] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        self.body = message.get("body", b"")
        self.ctx = scope.get(SCOPE_KEY)
        self.headers = dict(scope["headers"])
        for m in self.messages:
            await send(m)


def start(content_type: bytes, status: int = 200) -> Message:
    return {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}


def body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def call(app: Any, payload: dict[str, Any], provider: Provider = CHAT) -> tuple[list[Message], RequestContext]:
    raw = json.dumps(payload).encode()
    ctx = RequestContext(client_api=ClientAPI.OPENAI_RESPONSES, deployment=Deployment(provider, "m"))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/responses",
        "headers": [(b"accept-encoding", b"gzip"), (b"content-length", str(len(raw)).encode())],
        SCOPE_KEY: ctx,
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent, ctx


async def test_not_http_passes_through() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    await ResponsesMiddleware(app)({"type": "lifespan"}, not_called_receive, not_called_send)
    assert seen == [{"type": "lifespan"}]


async def test_native_provider_passes_through_untouched() -> None:
    inner = Inner(start(b"application/json"), body(b"{}"))
    payload = {"model": "m", "input": "hi", "previous_response_id": "resp_1"}
    sent, ctx = await call(ResponsesMiddleware(inner), payload, NATIVE)
    assert json.loads(inner.body) == payload and inner.headers[b"accept-encoding"] == b"gzip"
    assert ctx.client_api is ClientAPI.OPENAI_RESPONSES and ctx.upstream_path is None
    assert sent[1]["body"] == b"{}"


async def test_chat_request_and_sse_frames() -> None:
    chat = read("openai/stream_text_usage.sse")
    inner = Inner(start(b"text/event-stream"), *[body(c, True) for c in split(chat, 5)], body(b""))
    sent, ctx = await call(ResponsesMiddleware(inner), {"model": "m", "input": "hi", "stream": True})
    assert ctx.client_api is ClientAPI.OPENAI_CHAT and ctx.upstream_path == "/v1/chat/completions"
    assert json.loads(inner.body)["messages"] == [{"role": "user", "content": "hi"}]
    assert inner.headers[b"accept-encoding"] == b"identity" and b"content-length" not in inner.headers
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"].startswith(b"text/event-stream") and b"content-length" not in headers
    assert all(m["more_body"] for m in sent[1:-1]) and not sent[-1]["more_body"]
    evs = events(b"".join(m["body"] for m in sent[1:]))
    assert evs[-1]["type"] == "response.completed"
    assert ctx.usage["input_tokens"] == 1310 and ctx.usage["cache_read_tokens"] == 1152


async def test_json_response_gets_its_length_fixed() -> None:
    completion = read("openai/completion_text.json")
    inner = Inner(start(b"application/json"), body(completion[:10], True), body(completion[10:]))
    sent, ctx = await call(ResponsesMiddleware(inner), {"model": "m", "input": "hi"})
    headers = dict(sent[0]["headers"])
    assert int(headers[b"content-length"]) == len(sent[1]["body"])
    assert json.loads(sent[1]["body"])["object"] == "response"
    assert ctx.usage["output_tokens"] > 0


async def test_translation_error_is_an_openai_400() -> None:
    inner = Inner()
    sent, _ = await call(ResponsesMiddleware(inner), {"model": "m", "input": "hi", "conversation": "c"})
    assert sent[0]["status"] == 400 and inner.ctx is None
    assert json.loads(sent[1]["body"])["error"]["param"] == "conversation"


async def test_non_responses_requests_pass_through() -> None:
    inner = Inner(start(b"application/json"), body(b"{}"))
    ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT, deployment=Deployment(CHAT, "m"))
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": [], SCOPE_KEY: ctx}

    async def receive() -> Message:
        return {"type": "http.request", "body": b'{"model":"m"}', "more_body": False}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await ResponsesMiddleware(inner)(scope, receive, send)
    assert inner.body == b'{"model":"m"}' and sent[1]["body"] == b"{}" and ctx.upstream_path is None
