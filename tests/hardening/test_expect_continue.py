"""A client's ``Expect: 100-continue`` (curl sends it for large bodies) is not passed upstream: the
gateway has the whole body already, and an upstream that sends no 100 Continue must still get it."""

from __future__ import annotations

import httpx
import pytest

from asgi_llmroute import build_gateway
from asgi_llmroute.config import parse_config
from tests.support.raw import Conn, raw_server
from tests.support.servers import serve

TOKEN = "sk-router-expect-0123456789abcdef"


def _no_continue(conn: Conn) -> None:
    conn.read_request()  # the whole body, without ever answering 100 Continue
    body = b'{"id":"c1","object":"chat.completion","created":0,"model":"m","choices":[]}'
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.mark.parametrize("expect", ["100-continue", "100-Continue"])
def test_expect_is_not_forwarded_and_the_body_goes_at_once(expect: str) -> None:
    with raw_server(_no_continue) as upstream:
        provider = {"name": "up", "api": "openai", "base_url": f"{upstream.url}/v1", "timeout": 5, "max_retries": 0}
        config = parse_config({"tokens": [{"name": "t", "key": TOKEN}], "providers": [provider]}, source="test")
        with serve(build_gateway(config)) as url:
            response = httpx.post(
                f"{url}/v1/chat/completions",
                headers={"authorization": f"Bearer {TOKEN}", "expect": expect},
                json={"model": "up/m", "messages": [{"role": "user", "content": "x" * 100_000}]},
                timeout=30,
            )
    assert response.status_code == 200, response.text  # before: 504 after the 5 s timeout
    assert len(upstream.requests) == 1 and b"\r\nexpect:" not in upstream.requests[0].lower()
