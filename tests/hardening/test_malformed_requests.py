"""Malformed requests a careless or hostile client sends: bodies that are not JSON, not UTF-8, not an
object, the wrong content type; heads that are too large, not UTF-8 or smuggle a second request. Each gets
the right status and a JSON error in the caller's format; the log holds no traceback and no secret."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from asgi_llmroute import build_gateway
from tests.support.cli import Served, llmroute_serve
from tests.support.gateway import ROUTER_TOKEN, gateway_config
from tests.support.servers import Upstream, serve

OPENAI = {"authorization": f"Bearer {ROUTER_TOKEN}", "content-type": "application/json"}
ANTHROPIC = {"x-api-key": ROUTER_TOKEN, "anthropic-version": "2023-06-01", "content-type": "application/json"}
GOOGLE = {"x-goog-api-key": ROUTER_TOKEN, "content-type": "application/json"}


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[Upstream, str]]:
    oa, an = Upstream(), Upstream()
    with serve(oa) as oa_url, serve(an) as an_url, serve(build_gateway(gateway_config(oa_url, an_url))) as url:
        yield oa, url


def _error(wire: str, response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    if wire == "anthropic":
        assert body["type"] == "error" and set(body) == {"type", "error"}, body
    else:
        assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    if wire == "google":
        assert error["code"] == response.status_code and error["status"], error
    return error


ROUTES = [
    ("/v1/chat/completions", "gpt-test", "openai", OPENAI),
    ("/v1/chat/completions", "claude", "openai", OPENAI),  # translated
    ("/v1/messages", "claude", "anthropic", ANTHROPIC),
    ("/v1/messages", "gpt-test", "anthropic", ANTHROPIC),  # translated
    ("/v1/responses", "claude", "openai", OPENAI),
    ("/v1/embeddings", "gpt-test", "openai", OPENAI),
]

BODIES = [
    (b"{not json", "not valid JSON"),
    (b"", "not valid JSON"),
    (b"\xff\xfe\x00{}", "not valid UTF-8"),
    (b'{"model": "%s", "messages": [{"role": "user", "content": "\xc3\x28"}]}', "not valid UTF-8"),
    (b"[]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b"model=x&messages=y", "not valid JSON"),
]


@pytest.mark.parametrize(("body", "message"), BODIES)
@pytest.mark.parametrize(("path", "model", "wire", "headers"), ROUTES)
def test_a_body_that_is_not_a_json_object_is_a_400_in_the_callers_format(
    gateway: tuple[Upstream, str], path: str, model: str, wire: str, headers: dict[str, str], body: bytes, message: str
) -> None:
    upstream, url = gateway
    before = len(upstream.requests)
    content = body.replace(b"%s", model.encode()) if b"%s" in body else body
    response = httpx.post(f"{url}{path}", content=content, headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    assert message in _error(wire, response)["message"]
    assert len(upstream.requests) == before


def test_a_bad_body_on_the_gemini_route_is_a_google_error(gateway: tuple[Upstream, str]) -> None:
    _, url = gateway
    for body in (b"{not json", b"\xff"):
        response = httpx.post(f"{url}/v1beta/models/claude:generateContent", content=body, headers=GOOGLE)
        assert response.status_code == 400 and _error("google", response)["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=\xe9"]
)
def test_a_json_body_under_another_content_type_is_served(gateway: tuple[Upstream, str], content_type: str) -> None:
    # The body decides, as with the providers' own APIs: the SDKs always send JSON.
    upstream, url = gateway
    body = json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}).encode()
    headers = {"authorization": f"Bearer {ROUTER_TOKEN}", "content-type": content_type.encode("latin-1")}
    response = httpx.post(f"{url}/v1/chat/completions", content=body, headers=headers)  # type: ignore[arg-type]
    assert response.status_code == 200 and upstream.last.json()["messages"][0]["content"] == "hi"


# -- heads, against `llmroute serve` (its own head limits) -------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    folder = tmp_path_factory.mktemp("heads")
    with llmroute_serve([], folder) as server:
        token = (folder / ".llmroute" / "router-token").read_text().strip()
        yield server, token
    assert "Traceback" not in server.output, server.output
    assert token not in server.output.split("router token (created now", 1)[1].split("\n", 1)[1], server.output


def _exchange(server: Served, data: bytes) -> tuple[int, bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    status_line, _, rest = out.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def _request(
    token: str, *, extra: bytes = b"", auth: bytes | None = None, path: bytes = b"/v1/chat/completions"
) -> bytes:
    body = b'{"model":"demo","messages":[{"role":"user","content":"hi"}]}'
    authorization = auth if auth is not None else f"Bearer {token}".encode()
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nAuthorization: " + authorization
        + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra
        + b"\r\n" + body
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("a 100 kB header", 431, "larger than"),
        ("a non-UTF-8 token", 401, "Invalid router token"),
        ("a 60 kB token", 401, "Invalid router token"),
        ("Content-Length and Transfer-Encoding", 400, "Invalid HTTP request"),
        ("a non-UTF-8 path", 400, "Invalid HTTP request"),
        ("a percent-encoded non-UTF-8 path", 404, "No route"),
        ("2000 small headers", 200, None),
        ("a 30 kB session id", 200, None),
    ],
)
def test_hostile_request_heads(served: tuple[Served, str], name: str, status: int, message: str | None) -> None:
    server, token = served
    data = {
        "a 100 kB header": lambda: _request(token, extra=b"X-Big: " + b"a" * 100_000 + b"\r\n"),
        "a non-UTF-8 token": lambda: _request(token, auth=b"Bearer \xff\xfe"),
        "a 60 kB token": lambda: _request(token, auth=b"Bearer " + b"x" * 60_000),
        "Content-Length and Transfer-Encoding": lambda: (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: gw\r\n\r\n"
        ),
        "a non-UTF-8 path": lambda: _request(token, path=b"/v1/chat/completions\xff"),
        "a percent-encoded non-UTF-8 path": lambda: _request(token, path=b"/v1/chat%ff/completions"),
        "2000 small headers": lambda: _request(token, extra=b"".join(b"X-H%d: v\r\n" % i for i in range(2000))),
        "a 30 kB session id": lambda: _request(token, extra=b"x-llmroute-session-id: " + b"s" * 30_000 + b"\r\n"),
    }[name]()
    got, body = _exchange(server, data)
    assert got == status, body
    error = json.loads(body)
    if message is None:
        assert error["choices"][0]["message"]["content"]
    else:
        assert message in error["error"]["message"]
        assert token not in body.decode("latin-1")
