"""The forwarder's relay at its edges, on asyncio and trio: an upstream that dies before its body
is a clean 502 (nothing was committed), a client whose connection breaks while the answer is being
written ends the relay quietly, and a client that leaves after the answer is not a disconnect."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest
from starlette.types import Message

from asgi_llmroute import Forwarder
from tests.support.raw import Conn, raw_server
from tests.test_forward import Client, provider, scope_for

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def head_then_close(conn: Conn) -> None:
    conn.read_request()
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    conn.sock.close()


def stream(conn: Conn) -> None:
    """Three events, each in its own write with a pause between, so that each reaches the relay in
    its own read (the relay sends what one read brings, and the end of the body with the last one)."""
    conn.read_request()
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
    for i in range(3):
        piece = b'data: {"n": %d}\n\n' % i
        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        time.sleep(0.2)
    conn.send(b"0\r\n\r\n")


async def test_an_upstream_that_closes_before_its_body_is_a_clean_502() -> None:
    with raw_server(head_then_close) as server:
        forwarder = Forwarder()
        scope = scope_for(provider(server.url))
        client = Client()
        with anyio.fail_after(10):
            await forwarder(scope, client.receive, client.send)
        await forwarder.aclose()
    assert client.status == 502
    assert json.loads(client.body)["error"]["message"]
    assert scope["llmroute"].last_error is not None


#: On trio, httpx's and httpcore's nested body generators, left when the relay stops reading early, are
#: reported when garbage-collected (closing ours with aclosing() does not reach theirs); the
#: connection itself is closed by ``response.aclose()``. The behaviour is what these tests check.
LEFT_EARLY = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


class BrokenClient(Client):
    """The server raises OSError from send() once the connection is gone (ASGI 2.4)."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    async def send(self, message: Message) -> None:
        if len(self.messages) >= self.after:
            raise OSError("connection reset")
        self.messages.append(message)


@LEFT_EARLY
async def test_a_connection_that_breaks_mid_answer_ends_the_relay_as_a_disconnect() -> None:
    with raw_server(stream) as server:
        forwarder = Forwarder()
        scope = scope_for(provider(server.url))
        client = BrokenClient(after=2)  # the start and the first event, then the connection is gone
        with anyio.fail_after(10):
            await forwarder(scope, client.receive, client.send)
        await forwarder.aclose()
    assert client.status == 200 and len(client.messages) == 2
    assert scope["llmroute"].last_error == "disconnect"


@LEFT_EARLY
async def test_a_connection_that_breaks_after_the_final_event_is_a_complete_request() -> None:
    with raw_server(stream) as server:
        forwarder = Forwarder()
        scope = scope_for(provider(server.url))
        ctx: Any = scope["llmroute"]
        client = BrokenClient(after=2)
        original = client.send

        async def send(message: Message) -> None:
            ctx.completed = True  # a layer in front saw the final event go out
            await original(message)

        with anyio.fail_after(10):
            await forwarder(scope, client.receive, send)
        await forwarder.aclose()
    assert ctx.last_error != "disconnect"
