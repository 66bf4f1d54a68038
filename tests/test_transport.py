"""Conformance of the upstream hop against raw HTTP/1.1 servers whose every byte the test controls.

The servers run in threads on blocking sockets, so the same tests drive the transport on asyncio
(aiohttp) and on trio (httpx's own transport): both paths must behave the same.
"""

from __future__ import annotations

import functools
import gc
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from asgi_llmroute import build_gateway, pooled_client
from asgi_llmroute.config import parse_config
from asgi_llmroute.forward import _UpstreamClient
from asgi_llmroute.transport import UpstreamTransport, environment_proxies, validate_header
from tests.support.raw import Conn, keep_alive, raw_server

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _collect() -> Iterator[None]:
    yield
    gc.collect()  # an unclosed connection warns here, in the test that left it


# The two ways through the transport: httpx's client API (any caller), and the forwarder's direct path
# (``UpstreamTransport.open``: no httpx request or response objects).
HOPS = ["httpx", "direct"]


async def fetch(
    client: httpx.AsyncClient, url: str, method: str = "POST", hop: str = "httpx", **kwargs: object
) -> httpx.Response:
    content = b'{"x": 1}' if method == "POST" else None
    if hop == "direct":
        assert isinstance(client, _UpstreamClient)
        found = client.direct(url)
        assert found is not None
        transport, defaults = found
        given = [(k.lower().encode(), v.encode()) for k, v in dict(kwargs.pop("headers", {})).items()]  # type: ignore[call-overload]
        timeout = kwargs.pop("timeout", 600.0)
        headers = [*given, *(d for d in defaults if d[0] not in {k for k, _ in given})]
        upstream = await transport.open(method, url, headers, content or b"", (timeout, timeout, timeout))  # type: ignore[arg-type]
        chunks = []
        try:
            while chunk := await upstream.read():
                chunks.append(chunk)
        finally:
            await upstream.aclose()
        return httpx.Response(upstream.status, headers=upstream.headers, content=b"".join(chunks))
    request = client.build_request(method, url, content=content, **kwargs)  # type: ignore[arg-type]
    response = await client.send(request, stream=True)
    await response.aread()
    await response.aclose()
    return response


@pytest.mark.parametrize("hop", HOPS)
async def test_connections_are_reused(hop: str) -> None:
    with raw_server(keep_alive(b'{"ok":true}')) as server:
        async with pooled_client() as client:
            for _ in range(20):
                response = await fetch(client, server.url, hop=hop)
                assert response.json() == {"ok": True}
            async with anyio.create_task_group() as tg:
                for _ in range(8):
                    tg.start_soon(functools.partial(fetch, client, server.url, hop=hop))
    assert server.connections <= 8
    assert len(server.requests) == 28


@pytest.mark.parametrize("hop", HOPS)
async def test_the_request_reaches_the_server_as_sent(hop: str) -> None:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 201 Created\r\nX-Upstream: Yes\r\nContent-Length: 2\r\n\r\nok")

    with raw_server(handler) as server:
        async with pooled_client() as client:
            response = await fetch(client, f"{server.url}/v1/files/a%2Fb?a=1&b=%20", headers={"X-Custom": "v"}, hop=hop)
    assert response.status_code == 201 and response.text == "ok"
    assert (b"X-Upstream", b"Yes") in response.headers.raw  # case kept: the forwarder lowercases
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/files/a%2Fb?a=1&b=%20 HTTP/1.1\r\n")
    lines = [line.lower() for line in head.split(b"\r\n")]
    assert b"x-custom: v" in lines and b"content-length: 8" in lines
    assert not any(line.startswith(b"transfer-encoding") for line in lines)
    assert body == b'{"x": 1}'


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
@pytest.mark.parametrize("hop", HOPS)
async def test_a_request_the_server_received_is_never_sent_again(method: str, hop: str) -> None:
    # The first request is answered; the second is read in full and the connection then closes
    # without an answer. The request reached the server: sending it again would run it twice.
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conn.read_request()

    with raw_server(handler) as server:
        async with pooled_client() as client:
            assert (await fetch(client, server.url, method, hop=hop)).text == "ok"
            with pytest.raises(httpx.RemoteProtocolError):
                await fetch(client, server.url, method, hop=hop)
    assert len(server.requests) == 2


@pytest.mark.parametrize("hop", HOPS)
async def test_an_idle_connection_the_server_closed_is_replaced(hop: str) -> None:
    def one_then_close(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        # then close without saying so (the server's keep-alive timeout)

    with raw_server(one_then_close) as server:
        async with pooled_client() as client:
            for _ in range(3):
                assert (await fetch(client, server.url, hop=hop)).text == "ok"
                await anyio.sleep(0.05)
    assert server.connections == 3 and len(server.requests) == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"X-Injected", b"a\r\nX-Evil: 1"),
        (b"X-Injected", b"a\nX-Evil: 1"),
        (b"X-Injected", b"a\rb"),
        (b"X-Injected", b"a\x00b"),
        (b"X Bad", b"v"),
        (b"X-Bad:", b"v"),
        (b"", b"v"),
    ],
)
async def test_a_malformed_header_is_refused_before_anything_is_sent(name: bytes, value: bytes) -> None:
    with raw_server(keep_alive(b"{}")) as server:
        async with pooled_client() as client:
            request = client.build_request("POST", server.url, content=b"{}", headers=[(name, value)])
            with pytest.raises(httpx.LocalProtocolError):
                await client.send(request, stream=True)
            assert isinstance(client, _UpstreamClient)
            direct = client.direct(server.url)
            assert direct is not None
            with pytest.raises(httpx.LocalProtocolError):
                await direct[0].open("POST", server.url, [(b"accept", b"*/*"), (name, value)], b"{}", (5, 5, 5))
    assert server.requests == []
    with pytest.raises(ValueError):
        validate_header(name, value)


@pytest.mark.parametrize("hop", HOPS)
async def test_head_is_answered_without_waiting_for_a_body(hop: str) -> None:
    def handler(conn: Conn) -> None:
        while True:
            head, _ = conn.read_request()
            if head.startswith(b"HEAD "):
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            else:
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with raw_server(handler) as server:
        async with pooled_client() as client:
            with anyio.fail_after(3):
                response = await fetch(client, server.url, "HEAD", timeout=10, hop=hop)
                assert response.status_code == 200 and response.content == b""
                assert response.headers["content-length"] == "1234"
                assert (await fetch(client, server.url, hop=hop)).text == "ok"
    assert server.connections == 1  # and the connection stayed usable


@pytest.mark.parametrize("inline", [True, False])
async def test_interim_1xx_chunked_and_close_delimited_bodies(inline: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies read the same whether the transport reads aiohttp's reader in place of ``readany()`` or, for an
    aiohttp whose reader lacks the fields it reads, through ``readany()``."""
    from asgi_llmroute import transport

    if not inline:
        monkeypatch.setattr(transport, "_INLINE_READER", False)
    else:
        transport._inline_reader()
        assert transport._INLINE_READER is not False  # the installed aiohttp takes the inline read

    def chunked(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"data: 1\n\n", b"data: 2\n\n"):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.05)
        conn.send(b"0\r\n\r\n")

    def until_close(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")

    async with pooled_client() as client:
        with raw_server(chunked) as server:
            response = await client.send(client.build_request("POST", server.url, content=b"{}"), stream=True)
            chunks = [c async for c in response.aiter_raw()]
            await response.aclose()
            assert b"".join(chunks) == b"data: 1\n\ndata: 2\n\n" and len(chunks) == 2  # as they came
        with raw_server(until_close) as server:
            response = await fetch(client, server.url)
            assert response.status_code == 200 and response.text == "all of it"


@pytest.mark.parametrize("hop", HOPS)
async def test_failures_raise_httpx_errors_with_their_reason(hop: str) -> None:
    def truncated(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")

    def silent(conn: Conn) -> None:
        conn.read_request()
        time.sleep(2)

    def garbage(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"NOT HTTP AT ALL\r\n\r\n")

    async with pooled_client() as client:
        with raw_server(truncated) as server, pytest.raises(httpx.RemoteProtocolError):
            await fetch(client, server.url, hop=hop)
        with raw_server(silent) as server, pytest.raises(httpx.ReadTimeout):
            await fetch(client, server.url, timeout=0.2, hop=hop)
        with raw_server(garbage) as server, pytest.raises(httpx.RemoteProtocolError):
            await fetch(client, server.url, hop=hop)
        closed = socket.create_server(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        with pytest.raises(httpx.ConnectError) as refused:
            await fetch(client, f"http://127.0.0.1:{port}/", hop=hop)
        assert str(refused.value)  # the reason, for the log: refused, DNS, certificate, ...


async def test_connections_per_origin_are_bounded() -> None:
    with raw_server(keep_alive(b"{}", delay=0.1)) as server:
        client = pooled_client(transport=UpstreamTransport(max_connections_per_origin=2))
        async with client, anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(fetch, client, server.url)
    assert len(server.requests) == 6
    assert server.most_open <= 2


async def test_a_slow_reader_holds_the_upstream_back() -> None:
    total = 48 * 1024 * 1024
    sent = [0]
    finished = threading.Event()

    def firehose(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        piece = b"z" * 65536
        while sent[0] < total:
            conn.send(piece)
            sent[0] += len(piece)
        finished.set()

    with raw_server(firehose) as server:
        async with pooled_client() as client:
            response = await client.send(client.build_request("POST", server.url, content=b"{}"), stream=True)
            received = 0
            async for chunk in response.aiter_raw():
                if received == 0:
                    await anyio.sleep(0.5)  # a slow client: the upstream must wait, not fill our memory
                    assert sent[0] < total // 2 and not finished.is_set()
                received += len(chunk)
            await response.aclose()
    assert received == total


async def test_closing_early_drops_the_connection() -> None:
    with raw_server(keep_alive(b"y" * 4_000_000)) as server:
        async with pooled_client() as client:
            response = await client.send(client.build_request("POST", server.url, content=b"{}"), stream=True)
            await response.aclose()  # not read to the end: cannot be reused
            await fetch(client, server.url)
    assert server.connections == 2


def test_header_plans_live_only_as_long_as_their_providers() -> None:
    # A removed or rotated provider's key must not stay in a process-wide cache.
    from asgi_llmroute import upstream_headers
    from asgi_llmroute.providers.types import Provider
    from asgi_llmroute.secret import Secret

    def plans() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o) is upstream_headers.HeaderPlan)

    before = plans()
    providers = [Provider(f"p{i}", "openai", "https://x.example/v1", api_key=Secret(f"sk-{i}")) for i in range(50)]
    for provider in providers:
        assert upstream_headers.header_plan(provider) is upstream_headers.header_plan(provider)
    assert plans() >= before + 50
    del providers, provider
    assert plans() <= before


def proxy_handler(conn: Conn) -> None:
    head, _ = conn.read_request()
    body = json.dumps({"target": head.split(b"\r\n")[0].split(b" ")[1].decode()}).encode()
    conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.mark.parametrize("hop", HOPS)
async def test_requests_go_through_the_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch, hop: str) -> None:
    with raw_server(proxy_handler) as proxy:
        for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "NO_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://user:p%40ss@"))
        async with pooled_client() as client:
            response = await fetch(client, "http://upstream.invalid:8080/v1/chat/completions", hop=hop)
        assert response.json() == {"target": "http://upstream.invalid:8080/v1/chat/completions"}
        lines = [line.lower() for line in proxy.requests[0].split(b"\r\n")]
        assert b"proxy-authorization: basic dxnlcjpwqhnz" in lines, lines  # user:p@ss

        with raw_server(keep_alive(b'{"direct":true}')) as direct:
            monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
            async with pooled_client() as client:
                assert (await fetch(client, direct.url, hop=hop)).json() == {"direct": True}
            assert len(direct.requests) == 1 and len(proxy.requests) == 1


def test_an_unsupported_proxy_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:secret@127.0.0.1:1080")
    with pytest.raises(ValueError, match="HTTPS_PROXY=.*only http:// and https:// proxies") as refused:
        environment_proxies()
    assert "secret" not in str(refused.value)
    with pytest.raises(ValueError):
        UpstreamTransport()


async def test_the_gateway_client_keeps_httpx_features_it_is_given() -> None:
    # pooled_client() sends the forwarder's streamed requests straight to the transport; with event
    # hooks or auth it goes through httpx's full path.
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    with raw_server(keep_alive(b"{}")) as server:
        async with pooled_client() as client:
            request = client.build_request("POST", f"{server.url}/fast", content=b"{}")
            response = await client.send(request, stream=True)
            assert response.request is request
            await response.aread()
            await response.aclose()
        async with pooled_client(event_hooks={"request": [hook]}, auth=("u", "p")) as client:
            await fetch(client, f"{server.url}/hooked")
    assert seen == ["/hooked"]
    assert b"authorization: basic dtpw" in server.requests[1].lower()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_gateways_connections_per_origin_come_from_upstream_config(anyio_backend: str) -> None:
    with raw_server(keep_alive(b'{"object":"list","data":[]}', delay=0.1)) as server:
        config = parse_config(
            {
                "tokens": [{"name": "t", "key": "sk-router-test-0123456789"}],
                "providers": [{"name": "up", "api": "openai", "base_url": f"{server.url}/v1"}],
                "models": [{"name": "m", "provider": "up", "model": "m"}],
                "upstream": {"max_connections_per_origin": 2, "keepalive_timeout": 5},
            },
            source="test",
        )
        gateway = build_gateway(config)
        headers = {"authorization": "Bearer sk-router-test-0123456789"}
        async with gateway, httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw:

            async def call() -> None:
                response = await gw.post("/v1/embeddings", json={"model": "m", "input": "x"}, headers=headers)
                assert response.status_code == 200, response.text

            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(call)
    assert len(server.requests) == 6
    assert server.most_open <= 2


@pytest.mark.parametrize("hop", HOPS)
async def test_no_tls_set_up_in_a_request_and_one_context_for_every_transport(
    monkeypatch: pytest.MonkeyPatch, hop: str
) -> None:
    # Loading the CA roots takes tens of ms, hundreds on a loaded machine: done in a request, it counted
    # against that request's first-byte and total deadlines (and timed out first requests that were
    # never sent). It is done once per process, when the first transport is made.
    made: list[object] = []
    create = httpx.create_ssl_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(1)
        return create(*args, **kwargs)

    monkeypatch.setattr(httpx, "create_ssl_context", counted)
    first, second = UpstreamTransport(), UpstreamTransport()
    assert first._ssl() is second._ssl()
    before = len(made)
    with raw_server(keep_alive(b"{}")) as server:
        async with pooled_client() as client:
            assert (await fetch(client, f"{server.url}/v1", hop=hop)).status_code == 200
    assert len(made) == before
