"""The serving layers alone: GracefulShutdown ends a request the server cancels in the client's
format, and ServeConfig refuses limits that cannot work."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from asgi_llmroute.context import ClientAPI, RequestContext
from asgi_llmroute.middleware.observe import ObserveMiddleware
from asgi_llmroute.serving import GracefulShutdown, ServeConfig


def _scope(api: ClientAPI = ClientAPI.OPENAI_CHAT) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/v1/x",
        "headers": [],
        "llmroute": RequestContext(client_api=api),
    }


def _run(inner: Any, scope: dict[str, Any], *, broken_send: bool = False, observed: bool = False) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if broken_send and sent:
            raise OSError("connection gone")
        sent.append(message)

    # observed: as under the gateway, ObserveMiddleware records what went out and no send wrapper watches it.
    app = ObserveMiddleware(inner, access_log=False) if observed else inner
    shutdown = GracefulShutdown(app)
    assert shutdown._recorded is observed
    asyncio.run(shutdown(scope, receive, send))
    return sent


def _cancelled_after(*messages: Message) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)
        raise asyncio.CancelledError

    return app


START_SSE: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"Content-Type", b"text/event-stream")],
}
START_SSE_LOWER: Message = {**START_SSE, "headers": [(b"content-type", b"text/event-stream")]}
START_JSON: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json")],
}


@pytest.mark.parametrize("observed", [False, True])
def test_a_request_cancelled_before_answering_gets_a_503_in_the_callers_format(observed: bool) -> None:
    sent = _run(_cancelled_after(), _scope(ClientAPI.ANTHROPIC_MESSAGES), observed=observed)
    assert sent[0]["status"] == 503
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body["type"] == "error" and "shutting down" in body["error"]["message"]


@pytest.mark.parametrize("observed", [False, True])
def test_a_stream_cut_mid_event_gets_the_event_closed_then_an_error_event(observed: bool) -> None:
    start = START_SSE_LOWER if observed else START_SSE  # ASGI names are lower-case; the wrapper lowers them
    part: Message = {"type": "http.response.body", "body": b'data: {"partial', "more_body": True}
    empty: Message = {"type": "http.response.body", "body": b"", "more_body": True}
    sent = _run(_cancelled_after(start, part, empty), _scope(), observed=observed)
    last = sent[-1]["body"]
    assert last.startswith(b"\n\n") and b"shutting_down" in last
    whole: Message = {"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True}
    sent = _run(_cancelled_after(start, whole), _scope(), observed=observed)
    assert not sent[-1]["body"].startswith(b"\n") and b"shutting_down" in sent[-1]["body"]


@pytest.mark.parametrize("observed", [False, True])
def test_a_cut_json_body_is_left_to_the_server_and_a_finished_answer_untouched(observed: bool) -> None:
    half: Message = {"type": "http.response.body", "body": b'{"a":', "more_body": True}
    assert _run(_cancelled_after(START_JSON, half), _scope(), observed=observed)[-1] == half  # nothing appended
    done: Message = {"type": "http.response.body", "body": b"{}", "more_body": False}
    assert _run(_cancelled_after(START_JSON, done), _scope(), observed=observed)[-1] == done


def test_a_gone_connection_and_a_request_without_context_end_quietly() -> None:
    scope = _scope()
    del scope["llmroute"]
    sent = _run(_cancelled_after(), scope, broken_send=True)  # the 503 body cannot be sent: no error raised
    assert sent[0]["status"] == 503


def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    _run(app, {"type": "lifespan"})
    assert seen == ["lifespan"]
    assert repr(GracefulShutdown(app)).startswith("GracefulShutdown(")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_head_bytes": 100}, "max_head_bytes"),
        ({"head_timeout": 0}, "head_timeout"),
        ({"body_timeout": 0}, "body_timeout"),
        ({"shutdown_timeout": -1}, "shutdown_timeout"),
    ],
)
def test_serve_config_refuses_unworkable_limits(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServeConfig(app=lambda *a: None, **kwargs)


def test_serve_config_rounds_the_shutdown_timeout_up_to_whole_seconds() -> None:
    config = ServeConfig(app=lambda *a: None, shutdown_timeout=0.2)
    assert config.timeout_graceful_shutdown == 1
