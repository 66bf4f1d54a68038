"""The forwarder's relay on both event loops anyio supports (asyncio's own path, and trio's anyio path).

The upstream is a real HTTP/1.1 server on 127.0.0.1 (an anyio listener, so it runs on either loop);
the client is httpx's own transport, which also runs on both.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream
from starlette.types import Message

from asgi_llmroute import (
    ClientAPI,
    Deployment,
    Forwarder,
    Provider,
    RequestContext,
    UpstreamTimeouts,
    build_gateway,
    parse_config,
)

pytestmark = pytest.mark.anyio

_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()
_CHUNKS = [f'data: {{"n":{i}}}\n\n'.encode() for i in range(5)]


class _Upstream:
    def __init__(self) -> None:
        self.port = 0
        self.cancelled = anyio.Event()  # the stall handler was cut off (the forwarder hung up)
        self.paths: list[str] = []

    async def handle(self, stream: SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            lines = head.split(b"\r\n")
            self.paths.append(lines[0].split()[1].decode())
            length = next(
                (int(v) for k, _, v in (x.partition(b":") for x in lines[1:]) if k.lower() == b"content-length"), 0
            )
            body = head.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += await stream.receive()
            path = self.paths[-1]
            if path.startswith("/chat"):
                await stream.send(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(_COMPLETION)}\r\n\r\n".encode()
                    + _COMPLETION
                )
                return
            if path.startswith("/json"):
                data = b'{"ok":true,"echo":' + body + b"}"
                await stream.send(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nServer: up\r\n"
                    + f"content-length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                return
            await stream.send(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            if path.startswith("/stream"):
                for chunk in _CHUNKS:
                    await stream.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await stream.send(b"0\r\n\r\n")
                return
            # /stall: one event, then nothing until the forwarder gives up on us.
            await stream.send(f"{len(_CHUNKS[0]):x}\r\n".encode() + _CHUNKS[0] + b"\r\n")
            try:
                while await stream.receive():
                    pass
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                self.cancelled.set()


@asynccontextmanager
async def _upstream() -> AsyncIterator[_Upstream]:
    upstream = _Upstream()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    upstream.port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, upstream.handle)
        try:
            yield upstream
        finally:
            tg.cancel_scope.cancel()


def _scope(upstream: _Upstream, kind: str) -> dict[str, object]:
    provider = Provider(name="up", api="openai", base_url=f"http://127.0.0.1:{upstream.port}/{kind}/v1")
    ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT)
    ctx.deployment = Deployment(provider, "m")
    return {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"authorization", b"Bearer client-token")],
        "llmroute": ctx,
    }


class _Client:
    """The ASGI server side: the request body, then ``http.disconnect`` once ``leave`` is set."""

    def __init__(self, body: bytes = b'{"model":"m"}') -> None:
        self.body = body
        self.sent: list[Message] = []
        self.leave = anyio.Event()
        self._read = False

    async def receive(self) -> Message:
        if not self._read:
            self._read = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def body_bytes(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def test_relays_a_json_answer() -> None:
    async with _upstream() as upstream, httpx.AsyncClient() as client:
        forwarder = Forwarder(client=client)
        scope = _scope(upstream, "json")
        caller = _Client()
        with anyio.fail_after(10):
            await forwarder(scope, caller.receive, caller.send)
    start = caller.sent[0]
    assert start["status"] == 200
    names = {k for k, _ in start["headers"]}
    assert b"content-type" in names and b"server" not in names
    assert caller.body_bytes() == b'{"ok":true,"echo":{"model":"m"}}'
    assert upstream.paths == ["/json/v1/chat/completions"]
    assert scope["llmroute"].attempts == 1  # type: ignore[attr-defined]


async def test_relays_a_stream_chunk_by_chunk() -> None:
    async with _upstream() as upstream, httpx.AsyncClient() as client:
        caller = _Client()
        with anyio.fail_after(10):
            await Forwarder(client=client)(_scope(upstream, "stream"), caller.receive, caller.send)
    assert caller.body_bytes() == b"".join(_CHUNKS)
    assert caller.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_a_client_that_leaves_mid_stream_stops_the_upstream_request() -> None:
    async with _upstream() as upstream, httpx.AsyncClient() as client:
        scope = _scope(upstream, "stall")
        caller = _Client()

        async def send(message: Message) -> None:
            caller.sent.append(message)
            if message.get("body"):
                caller.leave.set()  # the first event arrived; the client goes away

        with anyio.fail_after(10):
            await Forwarder(client=client)(scope, caller.receive, send)
            await upstream.cancelled.wait()  # the upstream connection was closed
    ctx = scope["llmroute"]
    assert ctx.last_error == "disconnect"  # type: ignore[attr-defined]
    assert caller.body_bytes() == _CHUNKS[0]


async def test_the_total_deadline_ends_a_stalled_stream_with_an_error_event() -> None:
    async with _upstream() as upstream, httpx.AsyncClient() as client:
        scope = _scope(upstream, "stall")
        caller = _Client()
        forwarder = Forwarder(client=client, timeouts={"up": UpstreamTimeouts(connect=5, idle=5, total=0.5)})
        with anyio.fail_after(10):
            await forwarder(scope, caller.receive, caller.send)
            await upstream.cancelled.wait()
    assert scope["llmroute"].last_error == "timeout"  # type: ignore[attr-defined]
    body = caller.body_bytes()
    assert body.startswith(_CHUNKS[0])
    assert b'"error"' in body[len(_CHUNKS[0]) :]
    assert caller.sent[-1]["more_body"] is False


async def test_the_whole_standard_stack() -> None:
    """Every layer of build_gateway() on this loop: auth, rate and concurrency limits, resolution,
    retries, Responses, stripping, translation (Anthropic client, OpenAI upstream), usage, metrics."""
    async with _upstream() as upstream, httpx.AsyncClient() as client:
        config = parse_config(
            {
                "tokens": [{"name": "t", "key": "sk-router", "rpm": 100, "max_in_flight": 4}],
                "admin": {"tokens": ["sk-admin"]},
                "providers": [{"name": "up", "api": "openai", "base_url": f"http://127.0.0.1:{upstream.port}/chat/v1"}],
                "models": [{"name": "claude-ish", "provider": "up", "model": "m"}],
            }
        )
        gateway = build_gateway(config, client=client)
        body = b'{"model":"claude-ish","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}'
        scope = _scope(upstream, "chat")
        scope.pop("llmroute")
        scope.update(
            path="/v1/messages",
            raw_path=b"/v1/messages",
            headers=[(b"content-type", b"application/json"), (b"x-api-key", b"sk-router")],
        )
        caller = _Client(body)
        with anyio.fail_after(10):
            await gateway(scope, caller.receive, caller.send)
        assert caller.sent[0]["status"] == 200
        message = json.loads(caller.body_bytes())
        assert message["type"] == "message" and message["content"] == [{"type": "text", "text": "hi"}]
        assert message["usage"]["input_tokens"] == 3 and message["usage"]["output_tokens"] == 1
        assert upstream.paths == ["/chat/v1/chat/completions"]
        metrics = _Client(b"")
        metrics_scope = {**scope, "method": "GET", "path": "/metrics", "raw_path": b"/metrics"}
        metrics_scope["headers"] = [(b"authorization", b"Bearer sk-admin")]
        with anyio.fail_after(10):
            await gateway(metrics_scope, metrics.receive, metrics.send)
        assert b'llmroute_output_tokens_total{model="claude-ish",token="t"} 1.0' in metrics.body_bytes()
