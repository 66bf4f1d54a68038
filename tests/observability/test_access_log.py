"""One access log line per request, with the right fields, in JSON or key=value."""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from asgi_llmroute import ensure_context
from asgi_llmroute.logs import configure_logging
from asgi_llmroute.middleware.observe import ObserveMiddleware, _has_final_event
from tests.support.gateway import ROUTER_TOKEN
from tests.support.servers import serve

from ._support import capture_logs
from .conftest import Running

AUTH = {"authorization": f"Bearer {ROUTER_TOKEN}"}


def test_non_stream_line(gw: Running) -> None:
    gw.logs.clear()
    gw.openai().chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "Hi"}])
    (line,) = gw.logs.access()
    assert line.keys() >= {"request_id", "ttfb_ms", "duration_ms"}
    assert 0 < line["ttfb_ms"] <= line["duration_ms"]
    expected = {
        "method": "POST",
        "path": "/v1/chat/completions",
        "api": "openai.chat",
        "token": "alice",
        "model": "gpt-test",
        "deployment": "openai/gpt-4o-mini",
        "status": 200,
        "stream": False,
        "attempts": 1,
        "input_tokens": 11,
        "output_tokens": 7,
    }
    assert {k: line[k] for k in expected} == expected


def test_stream_line(gw: Running) -> None:
    gw.logs.clear()
    with gw.anthropic().messages.stream(
        model="claude", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        assert stream.get_final_text() == "Hello there!"
    (line,) = gw.logs.access()
    assert (line["api"], line["model"], line["deployment"]) == (
        "anthropic.messages",
        "claude",
        "anthropic/claude-sonnet-4-5",
    )
    assert (line["stream"], line["status"], line["input_tokens"], line["output_tokens"]) == (True, 200, 15, 9)
    assert line["cache_read_tokens"] == 2


def test_one_line_per_request(gw: Running) -> None:
    gw.logs.clear()
    client = gw.openai()
    for _ in range(5):
        client.models.list()
    lines = gw.logs.access(5)
    time.sleep(0.05)
    assert len(gw.logs.access(5)) == len(lines) == 5
    assert len({line["request_id"] for line in lines}) == 5


def test_upstream_error_line(gw: Running) -> None:
    gw.logs.clear()
    response = httpx.post(
        f"{gw.url}/v1/chat/completions", headers=AUTH, json={"model": "openai/fail-1", "messages": []}
    )
    assert response.status_code == 500  # the upstream's own error, relayed
    (line,) = gw.logs.access()
    assert (line["status"], line["attempts"], line["model"], line["deployment"]) == (
        500,
        1,
        "openai/fail-1",
        "openai/fail-1",
    )
    assert line["input_tokens"] is None


async def _slow_stream(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass


async def _raises(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("bug")


def test_disconnect_is_499_and_exception_is_500() -> None:
    with capture_logs() as logs, serve(ObserveMiddleware(_slow_stream)) as url:
        with httpx.stream("GET", f"{url}/s") as response:
            assert next(response.iter_raw()) == b"data: 1\n\n"
        (line,) = logs.access()
        assert (line["status"], line["stream"]) == (499, True)
    with capture_logs() as logs, serve(ObserveMiddleware(_raises)) as url:
        response = httpx.post(f"{url}/v1/messages", headers={"x-request-id": "boom-1"})
        assert response.status_code == 500
        assert response.headers["x-request-id"] == "boom-1"
        assert response.json()["type"] == "error"  # the client's (Anthropic) format
        (line,) = logs.access()
        assert (line["status"], line["request_id"]) == (500, "boom-1")
        errors = [r for r in logs.records if r.name == "asgi_llmroute.observe"]
        assert errors[0].exc_info is not None and errors[0].request_id == "boom-1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("fmt", ["json", "kv"])
def test_configure_logging_formats(fmt: Any) -> None:
    out = io.StringIO()
    logger = logging.getLogger("asgi_llmroute")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    try:
        configure_logging(fmt, "info", stream=out)
        configure_logging(fmt, "info", stream=out)  # idempotent: one handler
        fields = {"request_id": "r1", "token": "alice", "model": "m x", "status": 200, "stream": False, "ttfb_ms": None}
        logging.getLogger("asgi_llmroute.access").info("POST /v1 200", extra={"fields": fields})
        logging.getLogger("asgi_llmroute.forward").debug("hidden at info level")
    finally:
        for handler in [h for h in logger.handlers if h not in saved[2]]:
            logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    (text,) = out.getvalue().splitlines()
    if fmt == "json":
        line = json.loads(text)
        assert line["msg"] == "POST /v1 200" and line["status"] == 200 and line["model"] == "m x"
        assert line["level"] == "info" and line["logger"] == "asgi_llmroute.access" and line["ttfb_ms"] is None
    else:
        assert text.split(" ", 1)[1] == (
            'level=info logger=asgi_llmroute.access msg="POST /v1 200" request_id=r1 token=alice model="m x" '
            "status=200 stream=false"
        )


def test_observe_alone_passes_other_scopes_and_sets_context() -> None:
    seen: list[str | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            seen.append(ensure_context(scope).request_id)
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        else:
            seen.append(scope["type"])

    async def main() -> None:
        middleware = ObserveMiddleware(app, access_log=False)
        await middleware({"type": "lifespan"}, _never, _never)
        transport = httpx.ASGITransport(app=middleware)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/", headers={"x-request-id": "abc"})
        assert response.headers["x-request-id"] == "abc"

    anyio.run(main)
    assert seen == ["lifespan", "abc"]


async def _never(*args: object) -> Any:
    raise NotImplementedError


@pytest.mark.parametrize(
    ("body", "final"),
    [
        (b"data: [DONE]\n\n", True),
        (b'data: {"a":1}\n\ndata: [DONE]\n\n', True),
        (b"xdata: [DONE]\n\ndata: [DONE]\n\n", True),  # the first match is not a line's start, a later one is
        (b'data: {"text":"data: [DONE]"}\n\n', False),  # inside an event's data, not a line of its own
        (b"", False),
        (b'data: {"a":1}\n\n', False),
    ],
)
def test_the_final_event_counts_only_at_the_start_of_a_line(body: bytes, final: bool) -> None:
    assert _has_final_event(b"data: [DONE]", body) is final
