"""Request ids end to end: taken from the client when well-formed, returned, and in every log line."""

from __future__ import annotations

import enum
import json
import logging
import re
import socket
from typing import Any

import httpx
import pytest

from asgi_llmroute.logs import REQUEST_ID, JSONFormatter, KeyValueFormatter, RequestIdFilter
from asgi_llmroute.middleware.observe import valid_request_id
from tests.support.gateway import ROUTER_TOKEN

from .conftest import Running

HEX32 = re.compile(r"[0-9a-f]{32}")
AUTH = {"authorization": f"Bearer {ROUTER_TOKEN}"}
CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "Hi"}]}


def test_generated_id_is_returned_and_logged(gw: Running) -> None:
    gw.logs.clear()
    completion = gw.openai().chat.completions.with_raw_response.create(**CHAT)  # type: ignore[call-overload]
    request_id = completion.headers["x-request-id"]
    assert HEX32.fullmatch(request_id)
    assert completion.parse()._request_id == request_id  # what the OpenAI SDK reports
    (line,) = gw.logs.access()
    assert line["request_id"] == request_id


def test_client_id_is_kept(gw: Running) -> None:
    gw.logs.clear()
    response = httpx.post(
        f"{gw.url}/v1/chat/completions", headers={**AUTH, "x-request-id": "trace-42:a.b_c"}, json=CHAT
    )
    assert response.headers["x-request-id"] == "trace-42:a.b_c"
    assert gw.logs.access()[0]["request_id"] == "trace-42:a.b_c"


@pytest.mark.parametrize(
    "value",
    ["", "a" * 129, "two words", "x;drop", "<script>", "id\tx", 'q"uote', "é", "a,b"],
)
def test_malformed_client_id_is_replaced(gw: Running, value: str) -> None:
    headers: Any = [(k.encode(), v.encode()) for k, v in AUTH.items()] + [(b"x-request-id", value.encode())]
    response = httpx.post(f"{gw.url}/v1/chat/completions", headers=headers, json=CHAT)
    assert HEX32.fullmatch(response.headers["x-request-id"])
    assert response.headers.get_list("x-request-id") == [response.headers["x-request-id"]]


@pytest.mark.parametrize(
    ("value", "ok"),
    [(b"a", True), (b"A" * 128, True), (b"A" * 129, False), (b"a\r\nx-evil: 1", False), (b"a\x00", False)],
)
def test_valid_request_id(value: bytes, ok: bool) -> None:
    assert valid_request_id(value) is ok


def test_upstream_request_id_is_kept_under_another_name(gw: Running) -> None:
    gw.logs.clear()
    response = httpx.post(f"{gw.url}/v1/chat/completions", headers=AUTH, json=CHAT)
    assert response.headers["x-upstream-request-id"] == "req_upstream_1"
    assert response.headers["x-request-id"] != "req_upstream_1"
    assert gw.logs.access()[0]["upstream_request_id"] == "req_upstream_1"


def test_ids_on_errors_and_unauthenticated_requests(gw: Running) -> None:
    gw.logs.clear()
    for response in (
        httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, headers={"x-request-id": "no-token"}),
        httpx.get(f"{gw.url}/nowhere", headers={**AUTH, "x-request-id": "no-route"}),
        httpx.get(f"{gw.url}/health", headers={"x-request-id": "health"}),
    ):
        assert response.headers["x-request-id"] in ("no-token", "no-route", "health")
    assert [(a["request_id"], a["status"]) for a in gw.logs.access(3)] == [
        ("no-token", 401),
        ("no-route", 404),
        ("health", 200),
    ]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_other_log_lines_about_a_request_carry_its_id(start: Any) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    running: Running = start(
        providers=[{"name": "dead", "api": "openai", "base_url": f"{dead}/v1", "api_key": "k"}],
        models=[{"name": "gpt-test", "provider": "dead", "model": "m"}],
        routing={"max_attempts": 3, "backoff_base": 0, "backoff_max": 0},
    )
    running.logs.clear()
    response = httpx.post(f"{running.url}/v1/chat/completions", headers={**AUTH, "x-request-id": "dead-1"}, json=CHAT)
    assert response.status_code == 502
    others = [r for r in running.logs.records if r.name != "asgi_llmroute.access"]
    assert "asgi_llmroute.forward" in {r.name for r in others}
    assert all(r.request_id == "dead-1" for r in others)  # type: ignore[attr-defined]
    warning = others[0]
    assert warning.request_id == "dead-1"  # type: ignore[attr-defined]
    assert json.loads(JSONFormatter().format(warning))["request_id"] == "dead-1"
    assert "request_id=dead-1" in KeyValueFormatter().format(warning)
    access = running.logs.access()[0]
    assert (access["status"], access["request_id"]) == (502, "dead-1")
    assert access["attempts"] == sum(r.name == "asgi_llmroute.forward" for r in others)


def test_request_id_filter_outside_a_request() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "plain", None, None)
    assert RequestIdFilter().filter(record)
    assert record.request_id is None  # type: ignore[attr-defined]
    token = REQUEST_ID.set("inside")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "msg %s", ("a b",), None)
        RequestIdFilter().filter(record)
        assert record.request_id == "inside"  # type: ignore[attr-defined]
        assert KeyValueFormatter().format(record).endswith('msg="msg a b" request_id=inside')
    finally:
        REQUEST_ID.reset(token)


def test_a_credential_is_never_used_as_request_id(gw: Running) -> None:
    from tests.support.gateway import OPENAI_KEY

    for secret in (ROUTER_TOKEN, OPENAI_KEY):
        response = httpx.post(f"{gw.url}/v1/chat/completions", headers={**AUTH, "x-request-id": secret}, json=CHAT)
        assert HEX32.fullmatch(response.headers["x-request-id"])


def test_key_value_lines_quote_only_what_needs_it() -> None:
    class Code(enum.IntEnum):
        OK = 200

    fields = {"a": "x y", "b": "", "c": True, "d": 3, "e": 1.5, "f": None, "g": "plain", "h": Code.OK, "i": 'q"'}
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.fields = fields
    line = KeyValueFormatter().format(record)
    assert line.endswith(' a="x y" b="" c=true d=3 e=1.5 g=plain h=200 i="q\\""'), line
