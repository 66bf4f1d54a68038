"""The connection's edge under ``llmroute serve``: head limits, slowloris, HTTP/1.0, bad methods, SIGTERM.

Each test runs the real ``llmroute serve`` process and talks to it over raw sockets, the way hostile
or old clients do.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Send

from tests.support.cli import llmroute_serve
from tests.support.servers import Recorded, Upstream, serve

TOKEN = "sk-test-serving-token"


def _raw(url: str, data: bytes, *, wait: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it (or ``wait`` passes)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.settimeout(wait)
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may close before a large head is fully sent
        out = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:  # reset: closed while our bytes were still arriving
                return out
            if not chunk:
                return out
            out += chunk
        raise AssertionError(f"the server kept the connection open past {wait} s; got {out[:200]!r}")


def _status_and_json(response: bytes) -> tuple[int, dict[str, object], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body), head


def _config(tmp_path: Path, upstream_url: str = "http://127.0.0.1:9", **server: object) -> Path:
    lines = ["[server]"] + [f"{k} = {json.dumps(v)}" for k, v in server.items()]
    lines += [
        "[[tokens]]",
        'name = "t"',
        f'key = "{TOKEN}"',
        "[[providers]]",
        'name = "up"',
        'api = "openai"',
        f'base_url = "{upstream_url}/v1"',
        "[[models]]",
        'name = "m"',
        'provider = "up"',
        'model = "m"',
    ]
    path = tmp_path / "llmroute.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("serving")
    config = _config(tmp_path, head_timeout=1.5, body_timeout=1.5)
    with llmroute_serve(["--config", str(config)], cwd=tmp_path) as served:
        yield served.url


def test_a_request_head_over_the_limit_gets_431_before_auth(gateway: str) -> None:
    request = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
    status, body, head = _status_and_json(_raw(gateway, request))
    assert status == 431
    assert b"connection: close" in head
    assert "65536" in body["error"]["message"]  # type: ignore[index]


def test_many_headers_count_together(gateway: str) -> None:
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(100))
    status, _, _ = _status_and_json(_raw(gateway, b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"))
    assert status == 431


def test_a_huge_header_is_not_read_to_its_end(gateway: str) -> None:
    # 16 MiB of header: the server answers and closes long before it could have buffered it.
    host, port = gateway.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.settimeout(10)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        with pytest.raises(OSError):
            for _ in range(16 * 64):
                sock.sendall(b"c" * 16384)
                sent += 16384
        assert sent < 8 * 1024 * 1024


def test_an_ordinary_request_still_works(gateway: str) -> None:
    response = httpx.get(f"{gateway}/health", headers={"x-fine": "a" * 4000})
    assert response.status_code == 200


def test_a_head_that_stalls_is_closed_with_408(gateway: str) -> None:
    response = _raw(gateway, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: app", wait=15)
    status, body, _ = _status_and_json(response)
    assert status == 408
    assert body["type"] == "error"  # the path said Anthropic: the Anthropic error shape


def test_a_body_shorter_than_its_content_length_is_closed_with_408(gateway: str) -> None:
    head = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
    head += b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    status, body, head_out = _status_and_json(_raw(gateway, head + b'{"model": "m"', wait=15))
    assert status == 408
    assert b"connection: close" in head_out
    assert body["type"] == "error" and "stalled" in body["error"]["message"]  # type: ignore[index]


def test_a_body_that_keeps_moving_is_read_past_the_body_timeout(gateway: str) -> None:
    payload = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
    head += b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload)
    host, port = gateway.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.settimeout(15)
        sock.sendall(head)
        third = len(payload) // 3
        for piece in (payload[:third], payload[third : 2 * third], payload[2 * third :]):
            time.sleep(0.8)  # 2.4 s in all, past the 1.5 s body_timeout; no gap reaches it
            sock.sendall(piece)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    assert status == 502  # read in full and routed (the upstream port is closed), not 408


def test_a_connection_that_sends_nothing_is_closed(gateway: str) -> None:
    assert _raw(gateway, b"", wait=15) == b""


def test_keep_alive_requests_each_get_a_fresh_head_allowance(gateway: str) -> None:
    host, port = gateway.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.settimeout(10)
        for _ in range(3):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 40_000 + b"\r\n\r\n")
            reply = b""
            while not reply.endswith(b'{"status":"ok"}'):
                chunk = sock.recv(65536)
                assert chunk, reply
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200")
            time.sleep(0.5)


@pytest.mark.parametrize(("method", "expected"), [(b"FOO", 501), (b"BREW", 501), (b"G@T", 400)])
def test_an_unknown_method_gets_a_json_error(gateway: str, method: bytes, expected: int) -> None:
    status, body, head = _status_and_json(_raw(gateway, method + b" /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == expected
    assert b"content-type: application/json" in head
    assert "error" in body


def test_garbage_gets_a_json_400(gateway: str) -> None:
    status, body, head = _status_and_json(_raw(gateway, b"\x00\x01\x02 nonsense\r\n\r\n"))
    assert status == 400
    assert b"content-type: application/json" in head


def _endless_stream() -> Upstream:
    async def reply(request: Recorded, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        n = 0
        while True:
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
            chunk["choices"] = [{"index": 0, "delta": {"content": f"{n} "}, "finish_reason": None}]
            await send(
                {"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(), "more_body": True}
            )
            n += 1
            await asyncio.sleep(0.05)

    return Upstream(reply=reply)


def _stream_request(version: str) -> bytes:
    body = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}).encode()
    return (
        b"POST /v1/chat/completions HTTP/%s\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (version.encode(), TOKEN.encode(), len(body), body)
    )


def test_http_1_0_streams_are_close_delimited(tmp_path: Path) -> None:
    async def few(request: Recorded, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for n in range(3):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
            chunk["choices"] = [{"index": 0, "delta": {"content": f"{n} "}, "finish_reason": None}]
            await send(
                {"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(), "more_body": True}
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    with (
        serve(Upstream(reply=few)) as upstream_url,
        llmroute_serve(["--config", str(_config(tmp_path, upstream_url))], cwd=tmp_path) as gw,
    ):
        response = _raw(gw.url, _stream_request("1.0"))
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"transfer-encoding" not in head.lower()
        assert b"connection: close" in head.lower()
        assert body.endswith(b"data: [DONE]\n\n")
        assert body.count(b"data: ") == 4  # raw events, no chunk-size lines in between
        # HTTP/1.1 clients still get chunked streams.
        response = _raw(gw.url, _stream_request("1.1").replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
        assert b"transfer-encoding: chunked" in response.partition(b"\r\n\r\n")[0].lower()


def test_sigterm_ends_endless_streams_and_exits(tmp_path: Path) -> None:
    upstream = _endless_stream()
    config = _config(tmp_path, "UPSTREAM", shutdown_timeout=2)
    with serve(upstream) as upstream_url:
        config.write_text(config.read_text().replace("UPSTREAM", upstream_url))
        with llmroute_serve(["--config", str(config)], cwd=tmp_path) as served:
            with httpx.Client(timeout=30) as client:
                body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
                headers = {"authorization": f"Bearer {TOKEN}"}
                with client.stream("POST", f"{served.url}/v1/chat/completions", json=body, headers=headers) as r:
                    lines = r.iter_lines()
                    assert next(line for line in lines if line.startswith("data: "))
                    started = time.monotonic()
                    os.kill(served.pid, signal.SIGTERM)
                    rest = list(lines)  # ends: the server ends the stream within its shutdown timeout
                    elapsed = time.monotonic() - started
            assert elapsed < 20
            errors = [json.loads(line[6:]) for line in rest if line.startswith('data: {"error"')]
            assert errors and errors[-1]["error"]["code"] == "shutting_down"
            assert "data: [DONE]" not in rest
            served.wait_for("Finished server process", timeout=20)
            assert "Traceback" not in served.output


def test_a_websocket_handshake_gets_a_json_error_and_the_connection_closes(tmp_path: Path) -> None:
    handshake = (
        b"GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with llmroute_serve(["--config", str(_config(tmp_path))], cwd=tmp_path) as served:
        status, body, head = _status_and_json(_raw(served.url, handshake))
        time.sleep(0.2)
        output = served.output
    assert status == 401  # the plain request's answer (no token), in OpenAI's error shape
    assert body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert b"connection: close" in head
    assert "WebSocket library" not in output  # uvicorn's advice to install one does not apply
