"""LeanTransport against raw HTTP/1.1 servers whose every byte the test controls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from asgi_llmroute.transport import LeanTransport

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the transport's own path; under trio it delegates to httpx's transport


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[RawServer, str]]:
    raw = RawServer(handler)
    server = await asyncio.start_server(raw._serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield raw, f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def keep_alive(body: bytes, extra: bytes = b"") -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra)
            writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    return handler


async def fetch(client: httpx.AsyncClient, url: str, **kwargs: object) -> httpx.Response:
    request = client.build_request("POST", url, content=b'{"x": 1}', **kwargs)  # type: ignore[arg-type]
    response = await client.send(request, stream=True)
    await response.aread()
    return response


async def test_connections_are_reused() -> None:
    async with (
        raw_server(keep_alive(b'{"ok":true}')) as (server, url),
        httpx.AsyncClient(transport=LeanTransport()) as client,
    ):
        for _ in range(20):
            response = await fetch(client, url)
            assert response.json() == {"ok": True}
        await asyncio.gather(*(fetch(client, url) for _ in range(8)))
    assert server.connections == 8


async def test_header_names_and_body_reach_the_server_as_sent() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = await read_request(reader)
        seen.extend([head, body])
        writer.write(b"HTTP/1.1 201 Created\r\nX-Upstream: Yes\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    async with raw_server(handler) as (_, url), httpx.AsyncClient(transport=LeanTransport()) as client:
        response = await fetch(client, f"{url}/v1/x?a=1", headers={"X-Custom": "v"})
    assert response.status_code == 201 and response.text == "ok"
    assert response.headers.raw[0] == (b"X-Upstream", b"Yes")  # case kept: the forwarder lowercases
    assert seen[0].startswith(b"POST /v1/x?a=1 HTTP/1.1\r\n")
    assert b"\r\nX-Custom: v\r\n" in seen[0] and b"\r\nContent-Length: 8\r\n" in seen[0]
    assert seen[1] == b'{"x": 1}'


async def test_connection_close_is_not_reused() -> None:
    close = keep_alive(b"{}", b"Connection: close\r\n")
    async with raw_server(close) as (server, url), httpx.AsyncClient(transport=LeanTransport()) as client:
        for _ in range(3):
            await fetch(client, url)
    assert server.connections == 3


async def test_idle_connection_closed_by_the_server_is_replaced() -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        # Then close without saying so (a keep-alive timeout on the server's side).

    async with raw_server(one_then_close) as (server, url), httpx.AsyncClient(transport=LeanTransport()) as client:
        for _ in range(3):
            assert (await fetch(client, url)).text == "ok"
            await asyncio.sleep(0.05)
    assert server.connections == 3


async def test_chunked_and_close_delimited_bodies() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"data: 1\n\n", b"data: 2\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()

    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        async with raw_server(chunked) as (_, url):
            response = await client.send(client.build_request("POST", url, content=b""), stream=True)
            chunks = [c async for c in response.aiter_raw()]
            assert b"".join(chunks) == b"data: 1\n\ndata: 2\n\n" and len(chunks) == 2
        async with raw_server(until_close) as (_, url):
            response = await fetch(client, url)
            assert response.status_code == 200 and response.text == "all of it"


async def test_truncated_body_and_silence_raise_httpx_errors() -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        async with raw_server(truncated) as (_, url):
            with pytest.raises(httpx.RemoteProtocolError):
                await fetch(client, url)
        async with raw_server(silent) as (_, url):
            with pytest.raises(httpx.ReadTimeout):
                await fetch(client, url, timeout=0.2)
        async with raw_server(garbage) as (_, url):
            with pytest.raises(httpx.RemoteProtocolError):
                await fetch(client, url)
        with pytest.raises(httpx.ConnectError):
            await fetch(client, "http://127.0.0.1:9/")


async def test_large_body_is_relayed_with_backpressure() -> None:
    body = json.dumps({"data": "x" * (5 * 1024 * 1024)}).encode()
    async with raw_server(keep_alive(body)) as (_, url), httpx.AsyncClient(transport=LeanTransport()) as client:
        response = await client.send(client.build_request("POST", url, content=b"{}"), stream=True)
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            await asyncio.sleep(0)
        assert received == len(body)
        assert (await fetch(client, url)).content == body  # the connection is reused afterwards


async def test_early_close_drops_the_connection() -> None:
    big = keep_alive(b"y" * 4_000_000)
    async with raw_server(big) as (server, url), httpx.AsyncClient(transport=LeanTransport()) as client:
        response = await client.send(client.build_request("POST", url, content=b"{}"), stream=True)
        await response.aclose()  # not read to the end: cannot be reused
        await fetch(client, url)
    assert server.connections == 2


def test_header_plans_live_only_as_long_as_their_providers() -> None:
    # A removed or rotated provider's key must not stay in a process-wide cache.
    import gc

    from asgi_llmroute import forward
    from asgi_llmroute.providers.types import Provider
    from asgi_llmroute.secret import Secret

    def plans() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o) is forward._HeaderPlan)

    before = plans()
    providers = [Provider(f"p{i}", "openai", "https://x.example/v1", api_key=Secret(f"sk-{i}")) for i in range(50)]
    for provider in providers:
        assert forward._upstream_headers(provider) is forward._upstream_headers(provider)
    assert plans() >= before + 50
    del providers, provider
    assert plans() <= before
