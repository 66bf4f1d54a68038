"""The Forwarder alone, on asyncio and trio, against raw HTTP/1.1 upstreams: relay, deadlines,
disconnects, cancellation from outside, malformed provider headers, failure logging."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from starlette.types import Message

from asgi_llmroute import Forwarder, UpstreamTimeouts, pooled_client
from asgi_llmroute.context import ClientAPI, RequestContext
from asgi_llmroute.providers.types import Deployment, Provider
from asgi_llmroute.secret import Secret
from tests.support.raw import Conn, keep_alive, raw_server

pytestmark = pytest.mark.anyio

KEY = "sk-forward-test-SECRET"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def provider(url: str, **options: Any) -> Provider:
    return Provider("up", "openai", f"{url}/v1", Secret(KEY), **options)


def scope_for(p: Provider, body: bytes = b'{"model":"m"}') -> dict[str, Any]:
    ctx = RequestContext(client_api=ClientAPI.from_path("/v1/chat/completions"))
    ctx.deployment = Deployment(p, "m")
    ctx.body = body
    return {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-type", b"application/json")],
        "query_string": b"",
        "llmroute": ctx,
    }


class Client:
    """The ASGI side: what the forwarder sent, and a receive() that can say the client left."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.leave = anyio.Event()

    async def receive(self) -> Message:
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


def sse(events: int, pause: float) -> Any:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n"  # one request per connection (the handler returns)
        )
        for i in range(events):
            piece = b'data: {"n": %d}\n\n' % i
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(pause)
        conn.send(b"0\r\n\r\n")

    return handler


async def test_relays_a_response_with_the_providers_key() -> None:
    with raw_server(keep_alive(b'{"ok":true}')) as server:
        forwarder = Forwarder()
        client = Client()
        await forwarder(scope_for(provider(server.url)), client.receive, client.send)
        await forwarder.aclose()
    assert client.status == 200 and client.body == b'{"ok":true}'
    head = server.requests[0].split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"post /v1/chat/completions ")
    assert f"authorization: bearer {KEY}".lower().encode() in head


async def test_a_stream_runs_past_the_total_timeout_and_stream_timeout_cuts_it() -> None:
    upstream = pooled_client()
    # One request first: what a client does once (on trio, httpx's first connection imports its
    # backend) must not count against the 0.3 s below on a loaded machine.
    with raw_server(keep_alive(b"{}")) as warm:
        await Forwarder(client=upstream)(scope_for(provider(warm.url)), Client().receive, Client().send)
    with raw_server(sse(12, 0.05)) as server:
        p = provider(server.url)
        forwarder = Forwarder(client=upstream, timeouts={"up": UpstreamTimeouts(total=0.3, idle=5)})
        client = Client()
        await forwarder(scope_for(p), client.receive, client.send)
        assert client.status == 200 and client.body.count(b"data: ") == 12  # not cut at 0.3 s

        forwarder = Forwarder(client=upstream, timeouts={"up": UpstreamTimeouts(total=10, idle=5, stream_total=0.3)})
        client = Client()
        await forwarder(scope_for(p), client.receive, client.send)
        await forwarder.aclose()
    assert client.status == 200
    assert client.body.count(b'data: {"n"') < 12
    assert b"stream timeout, 0.3s" in client.body


async def test_first_byte_timeout_answers_504() -> None:
    def silent(conn: Conn) -> None:
        conn.read_request()
        time.sleep(1.5)

    with raw_server(silent) as server:
        forwarder = Forwarder(timeouts={"up": UpstreamTimeouts(first_byte=0.2)})
        client = Client()
        with anyio.fail_after(3):
            await forwarder(scope_for(provider(server.url)), client.receive, client.send)
        await forwarder.aclose()
    assert client.status == 504
    assert b"first byte timeout" in client.body


async def test_a_disconnect_cancels_the_upstream_request() -> None:
    with raw_server(sse(200, 0.02)) as server:
        forwarder = Forwarder()
        client = Client()
        scope = scope_for(provider(server.url))

        async def leave_soon() -> None:
            await anyio.sleep(0.2)
            client.leave.set()

        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(leave_soon)
                await forwarder(scope, client.receive, client.send)
        await forwarder.aclose()
    assert scope["llmroute"].last_error == "disconnect"
    assert client.body.count(b"data: ") < 200


async def test_a_cancellation_from_outside_is_not_swallowed() -> None:
    with raw_server(sse(200, 0.02)) as server:
        forwarder = Forwarder()
        client = Client()
        after = []
        with anyio.move_on_after(0.2) as outer:
            await forwarder(scope_for(provider(server.url)), client.receive, client.send)
            after.append("the forwarder returned inside a cancelled scope")
        await forwarder.aclose()
    assert outer.cancelled_caught and after == []


async def test_an_outside_cancel_that_races_a_disconnect_still_propagates(anyio_backend: str) -> None:
    # The client leaves and, in the same loop iteration, the server cancels the request's task: the
    # forwarder's own scope must take back only its own cancellation.
    if anyio_backend != "asyncio":
        pytest.skip("asyncio task cancellation")
    with raw_server(sse(200, 0.02)) as server:
        forwarder = Forwarder()
        client = Client()
        task: asyncio.Task[None] | None = None

        async def receive() -> Message:
            await anyio.sleep(0.2)
            assert task is not None
            task.cancel()  # the outside cancel, just before the forwarder's own
            return {"type": "http.disconnect"}

        async def run() -> None:
            await forwarder(scope_for(provider(server.url)), receive, client.send)

        task = asyncio.get_running_loop().create_task(run())
        with pytest.raises(asyncio.CancelledError):
            await task
        await forwarder.aclose()


@pytest.mark.parametrize(
    "headers", [(("X-Custom", "a\r\nX-Evil: 1"),), (("X-Custom", "nul\x00"),), (("Bad Name", "v"),), (("X-U", "ü€"),)]
)
async def test_a_malformed_provider_header_is_a_clear_502_and_nothing_is_sent(
    headers: tuple[tuple[str, str], ...], caplog: pytest.LogCaptureFixture
) -> None:
    with raw_server(keep_alive(b"{}")) as server:
        forwarder = Forwarder()
        client = Client()
        await forwarder(scope_for(provider(server.url, headers=headers)), client.receive, client.send)
        await forwarder.aclose()
    assert server.requests == []
    assert client.status == 502
    error = json.loads(client.body)["error"]
    assert error["code"] == "provider_misconfigured"
    assert repr(headers[0][0]) in error["message"]
    assert len(headers[0][1]) < 3 or headers[0][1] not in error["message"]


async def test_an_api_key_with_a_newline_is_refused_without_showing_it() -> None:
    with raw_server(keep_alive(b"{}")) as server:
        p = Provider("up", "openai", f"{server.url}/v1", Secret("sk-SECRET\r\nX-Evil: 1"))
        client = Client()
        forwarder = Forwarder()
        await forwarder(scope_for(p), client.receive, client.send)
        await forwarder.aclose()
    assert server.requests == [] and client.status == 502
    assert b"API key" in client.body and b"SECRET" not in client.body


@pytest.fixture
def forward_log() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign,assignment]
    logger = logging.getLogger("asgi_llmroute.forward")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


async def test_an_upstream_failure_is_logged_with_its_reason(forward_log: list[logging.LogRecord]) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    forwarder = Forwarder()  # nobody listens: connection refused
    client = Client()
    await forwarder(scope_for(provider(url)), client.receive, client.send)
    await forwarder.aclose()
    assert client.status == 502
    [record] = [r for r in forward_log if "failed before responding" in r.getMessage()]
    message = record.getMessage()
    assert "ConnectError: " in message and url.rsplit(":", 1)[1] in message  # the reason, with the port
    assert KEY not in message


async def test_a_translated_body_over_the_limit_is_a_502_in_the_clients_format(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, anyio_backend: str
) -> None:
    if anyio_backend != "asyncio":
        # The same code on trio, where httpx's nested body generators, left when the relay stops
        # early, are reported at garbage collection: the behaviour is checked once.
        pytest.skip("backend-independent layer")
    import httpx

    from asgi_llmroute import build_gateway
    from asgi_llmroute.middleware import _rewrite
    from tests.support.gateway import ROUTER_TOKEN, gateway_config

    monkeypatch.setattr(_rewrite, "_MAX_BUFFERED", 1024 * 1024)
    huge = b'{"type":"message","content":[{"type":"text","text":"' + b"x" * (3 * 1024 * 1024) + b'"}]}'
    sent = []

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(huge))
        for i in range(0, len(huge), 65536):
            conn.send(huge[i : i + 65536])
            sent.append(i)

    with raw_server(handler) as server:
        gateway = build_gateway(gateway_config(server.url, server.url))
        async with (
            gateway,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client,
        ):
            response = await client.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {ROUTER_TOKEN}"},
                json={"model": "claude", "messages": [{"role": "user", "content": "hi"}]},
            )
    assert response.status_code == 502
    error = response.json()["error"]  # OpenAI's error shape: the client's format
    assert error["code"] == "response_too_large" and "1 MiB" in error["message"]
    assert "Traceback" not in caplog.text


async def test_a_cookie_one_caller_got_is_never_sent_for_another() -> None:
    def sets_a_cookie(conn: Conn) -> None:
        while True:
            conn.read_request()
            conn.send(b"HTTP/1.1 200 OK\r\nSet-Cookie: session=alice-only; Path=/\r\nContent-Length: 2\r\n\r\n{}")

    with raw_server(sets_a_cookie) as server:
        forwarder = Forwarder()
        for _ in range(2):
            client = Client()
            await forwarder(scope_for(provider(server.url)), client.receive, client.send)
            assert client.status == 200
        await forwarder.aclose()
    assert len(server.requests) == 2
    assert b"alice-only" not in server.requests[1]


@pytest.mark.parametrize("sent", [None, b"br"])
async def test_accept_encoding_goes_upstream_only_as_the_client_sent_it(sent: bytes | None) -> None:
    # httpx's default (gzip, deflate) would get the client a compressed body it did not ask for.
    with raw_server(keep_alive(b"{}")) as server:
        forwarder = Forwarder()
        scope = scope_for(provider(server.url))
        if sent is not None:
            scope["headers"].append((b"accept-encoding", sent))
        client = Client()
        await forwarder(scope, client.receive, client.send)
        await forwarder.aclose()
    assert client.status == 200
    head = server.requests[0].split(b"\r\n\r\n")[0].lower()
    values = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.startswith(b"accept-encoding:")]
    assert values == ([] if sent is None else [sent])
