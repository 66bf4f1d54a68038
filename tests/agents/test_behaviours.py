"""What real agents tripped over, end to end: a real gateway under uvicorn, real upstream servers, the
official SDKs and raw HTTP as clients (issue: agents through the gateway)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import httpx
import pytest
from starlette.types import Send

from asgi_llmroute.config import GatewayConfig
from tests.routing._support import (
    AUTH,
    RawServer,
    anthropic_provider,
    chat_stream,
    dying_stream,
    openai_chunks,
    openai_provider,
    routing_config,
)
from tests.support.gateway import ROUTER_TOKEN
from tests.support.gateway import serve_gateway as gateway
from tests.support.servers import Recorded, json_reply, serve
from tests.support.servers import serve_upstreams as upstreams

MESSAGES: Any = [{"role": "user", "content": "Hi"}]


def sse(obj: Any, event: str | None = None) -> bytes:
    data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
    return (f"event: {event}\n".encode() + data) if event else data


def anthropic_events(text: str = "Hello", model: str = "claude-up") -> list[bytes]:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": []}
    usage = {"input_tokens": 13, "output_tokens": 1}
    return [
        sse({"type": "message_start", "message": {**message, "usage": usage}}, "message_start"),
        sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
        sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            "content_block_delta",
        ),
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]


def lingering_stream(chunks: list[bytes], linger: float = 2.0) -> Any:
    """An SSE answer whose body stays open ``linger`` seconds after its last event (as proxies do)."""

    async def reply(request: Recorded, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await asyncio.sleep(linger)
        await send({"type": "http.response.body", "body": b""})

    return reply


def two_formats(oa_url: str, an_url: str, **extra: Any) -> GatewayConfig:
    return routing_config(
        [openai_provider("oa", oa_url), anthropic_provider("an", an_url)],
        [
            {"name": "gpt", "provider": "oa", "model": "gpt-up"},
            {"name": "claude", "provider": "an", "model": "claude-up"},
        ],
        **extra,
    )


class AccessLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.fields: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.fields.append(dict(getattr(record, "fields", {})))

    def wait(self, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.fields) < count:
            assert time.monotonic() < deadline, "no access log line"
            time.sleep(0.02)
        return self.fields


@contextmanager
def access_log() -> Iterator[AccessLog]:
    handler = AccessLog()
    logger = logging.getLogger("asgi_llmroute.access")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# -- 7. query strings ----------------------------------------------------------------------------


def test_the_client_query_string_reaches_only_an_upstream_of_its_own_format() -> None:
    done = json_reply(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-up",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        }
    )
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "stop_reason": "end_turn",
        "content": [{"type": "text", "text": "ok"}],
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    with (
        upstreams(done, json_reply(message)) as [(oa, oa_url), (an, an_url)],
        gateway(two_formats(oa_url, an_url)) as url,
    ):
        body = {"max_tokens": 5, "messages": MESSAGES}
        for model in ("gpt", "claude"):
            response = httpx.post(f"{url}/v1/messages?beta=true", headers=AUTH, json={**body, "model": model})
            assert response.status_code == 200, response.text
    assert oa.last.path == "/v1/chat/completions" and oa.last.query == ""  # translated: not its business
    assert an.last.path == "/v1/messages" and an.last.query == "beta=true"  # same format: relayed


# -- 6. a stream cut inside an event -------------------------------------------------------------


def test_a_same_format_stream_cut_inside_an_event_ends_with_an_error_the_sdk_sees() -> None:
    events = anthropic_events()
    partial = events[:2] + [b"event: content_block_de"]
    with RawServer(dying_stream(partial)).running() as broken_url:
        config = routing_config(
            [anthropic_provider("an", broken_url)], [{"name": "claude", "provider": "an", "model": "c"}]
        )
        with gateway(config) as url:
            with (
                anthropic.Anthropic(base_url=url, api_key=ROUTER_TOKEN, max_retries=0) as client,
                pytest.raises(anthropic.APIStatusError) as info,
                client.messages.stream(model="claude", max_tokens=9, messages=MESSAGES) as stream,
            ):
                list(stream.text_stream)
            with httpx.stream(
                "POST",
                f"{url}/v1/messages",
                headers=AUTH,
                json={"model": "claude", "max_tokens": 9, "messages": MESSAGES, "stream": True},
            ) as response:
                raw = response.read()
    assert "closed the connection" in str(info.value)
    # The partial frame is closed by a blank line before the error event.
    assert b"event: content_block_de\n\nevent: error\ndata: " in raw


def test_an_openai_stream_cut_inside_a_data_line_ends_with_an_error_event_on_its_own() -> None:
    events = openai_chunks(["Hello", " there"])
    partial = [events[0], events[1][:20]]
    with RawServer(dying_stream(partial)).running() as broken_url:
        config = routing_config([openai_provider("oa", broken_url)], [{"name": "gpt", "provider": "oa", "model": "g"}])
        with (
            gateway(config) as url,
            chat_stream(url, "gpt", MESSAGES) as response,
        ):
            raw = response.read()
    frames = raw.split(b"\n\n")
    assert frames[-1] == b"" and frames[-2].startswith(b'data: {"error":')
    assert json.loads(frames[-2][6:])["error"]["code"] == "upstream_unavailable"


# -- 10. the gateway's own errors, once, in the client's format -----------------------------------


def _closed_port() -> str:
    from tests.routing._support import closed_port_url

    return closed_port_url()


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/responses"])
def test_an_unreachable_provider_gives_the_same_error_whatever_its_format(path: str) -> None:
    down = _closed_port()
    config = routing_config(
        [openai_provider("gpt-provider", down), anthropic_provider("claude-provider", down)],
        [
            {"name": "gpt", "provider": "gpt-provider", "model": "g"},
            {"name": "claude", "provider": "claude-provider", "model": "c"},
        ],
        routing={"max_attempts": 1},
    )
    bodies = []
    with gateway(config) as url:
        for model in ("gpt", "claude"):
            body: dict[str, Any] = {"model": model, "max_tokens": 5}
            body.update({"input": "Hi"} if path == "/v1/responses" else {"messages": MESSAGES})
            response = httpx.post(f"{url}{path}", headers=AUTH, json=body)
            assert response.status_code == 502
            bodies.append(json.loads(response.text.replace(f"'{model}-provider'", "'P'")))
    oa_error, an_error = bodies
    assert oa_error == {**an_error}, (oa_error, an_error)
    if path == "/v1/messages":
        assert an_error["error"]["type"] == "api_error" and an_error["type"] == "error"
    else:
        assert an_error["error"]["code"] == "upstream_unavailable"
        assert an_error["error"]["type"] == "server_error"


def test_a_translated_stream_cut_half_way_ends_with_the_gateways_own_error_event() -> None:
    events = anthropic_events()[:3]
    with RawServer(dying_stream(events)).running() as broken_url:
        config = routing_config(
            [anthropic_provider("an", broken_url)], [{"name": "gpt", "provider": "an", "model": "c"}]
        )
        with (
            gateway(config) as url,
            chat_stream(url, "gpt", MESSAGES) as response,
        ):
            raw = response.read()
    error = json.loads(raw.rstrip(b"\n").rsplit(b"\n\n", 1)[-1].removeprefix(b"data: "))
    assert error["error"]["code"] == "upstream_unavailable" and error["error"]["type"] == "server_error"
    assert raw.count(b'"error"') == 1


# -- 5. a stream whose final event reached the client is complete ------------------------------


@pytest.mark.parametrize(
    ("client_path", "model", "final"),
    [
        ("/v1/messages", "claude", b"event: message_stop"),  # same format
        ("/v1/chat/completions", "claude", b"data: [DONE]"),  # translated
        ("/v1/responses", "claude", b"event: response.completed"),  # Responses over chat over messages
    ],
)
def test_a_client_that_leaves_after_the_final_event_is_a_complete_counted_request(
    client_path: str, model: str, final: bytes
) -> None:
    upstream = lingering_stream(anthropic_events())
    with (
        upstreams(upstream) as [(_, an_url)],
        gateway(two_formats(an_url, an_url, logging={"access": True})) as url,
        access_log() as log,
    ):
        body: dict[str, Any] = {"model": model, "max_tokens": 5, "stream": True}
        body.update({"input": "Hi"} if client_path == "/v1/responses" else {"messages": MESSAGES})
        with httpx.stream("POST", f"{url}{client_path}", headers=AUTH, json=body) as response:
            seen = b""
            for chunk in response.iter_raw():
                seen += chunk
                if final in seen:
                    break  # like the SDKs: the final event is in, the connection is closed
        (fields,) = log.wait()
    assert fields["status"] == 200, fields
    assert fields["input_tokens"] == 13 and fields["output_tokens"] == 9


# -- 2. the client-facing model name on every path ------------------------------------------------

UPSTREAM_ID = {"gpt": "gpt-up-2024-08-06", "claude": "claude-up-20250929"}


def dated_upstream() -> Any:
    """Answers every format, JSON or stream, naming a dated model id as the real APIs do."""

    async def reply(request: Recorded, send: Send) -> None:
        body = request.json()
        anthropic_api = request.path == "/v1/messages"
        model = UPSTREAM_ID["claude" if anthropic_api else "gpt"]
        if body.get("stream"):
            if anthropic_api:
                chunks = anthropic_events(model=model)
            else:
                chunks = [c.replace(b'"gpt-up"', json.dumps(model).encode()) for c in openai_chunks(["Hi", "!"])]
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
            )
            for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if anthropic_api:
            obj: dict[str, Any] = {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": model,
                "stop_reason": "end_turn",
                "content": [{"type": "text", "text": "Hi!"}],
                "usage": {"input_tokens": 3, "output_tokens": 2},
            }
        else:
            obj = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            }
        data = json.dumps(obj).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    return reply


def named_models(url: str, **extra: Any) -> GatewayConfig:
    return routing_config(
        [openai_provider("oa", url), anthropic_provider("an", url)],
        [
            {"name": "gpt", "provider": "oa", "model": "gpt-up"},
            {"name": "claude", "provider": "an", "model": "claude-up"},
            {"name": "gpt-as-claude", "provider": "oa", "model": "gpt-up"},
            {"name": "claude-as-gpt", "provider": "an", "model": "claude-up"},
        ],
        translation={"response_model": "client"},
        **extra,
    )


@pytest.fixture(scope="module")
def named() -> Iterator[str]:
    with upstreams(dated_upstream()) as [(_, url)], gateway(named_models(url)) as gw:
        yield gw


@pytest.mark.parametrize("model", ["claude", "gpt-as-claude"])
def test_anthropic_clients_get_the_name_they_asked_for(named: str, model: str) -> None:
    with anthropic.Anthropic(base_url=named, api_key=ROUTER_TOKEN, max_retries=0) as client:
        message = client.messages.create(model=model, max_tokens=5, messages=MESSAGES)
        with client.messages.stream(model=model, max_tokens=5, messages=MESSAGES) as stream:
            events = list(stream)
    assert message.model == model
    assert events[0].type == "message_start" and events[0].message.model == model
    assert stream.get_final_message().model == model


@pytest.mark.parametrize("model", ["gpt", "claude-as-gpt"])
def test_openai_clients_get_the_name_they_asked_for(named: str, model: str) -> None:
    import openai

    with openai.OpenAI(base_url=f"{named}/v1", api_key=ROUTER_TOKEN, max_retries=0) as client:
        completion = client.chat.completions.create(model=model, messages=MESSAGES)
        chunks = list(client.chat.completions.create(model=model, messages=MESSAGES, stream=True))
        response = client.responses.create(model=model, input="Hi")
        events = list(client.responses.create(model=model, input="Hi", stream=True))
    assert completion.model == model
    assert chunks and {c.model for c in chunks} == {model}
    assert response.model == model
    models = {e.response.model for e in events if hasattr(e, "response")}
    assert models == {model}


def test_a_json_answer_keeps_a_correct_content_length(named: str) -> None:
    response = httpx.post(
        f"{named}/v1/messages", headers=AUTH, json={"model": "claude", "max_tokens": 5, "messages": MESSAGES}
    )
    assert response.json()["model"] == "claude"
    assert int(response.headers["content-length"]) == len(response.content)


def test_the_upstream_id_is_relayed_where_configured() -> None:
    models = [
        {"name": "claude", "provider": "an", "model": "claude-up", "response_model": "upstream"},
        {"name": "gpt", "provider": "oa", "model": "gpt-up"},
    ]
    with upstreams(dated_upstream()) as [(_, url)]:
        config = routing_config([openai_provider("oa", url), anthropic_provider("an", url)], models, translation={})
        with gateway(config) as gw:
            body = {"max_tokens": 5, "messages": MESSAGES}
            assert (
                httpx.post(f"{gw}/v1/messages", headers=AUTH, json={**body, "model": "claude"}).json()["model"]
                == (UPSTREAM_ID["claude"])
            )
            assert (
                httpx.post(f"{gw}/v1/chat/completions", headers=AUTH, json={**body, "model": "gpt"}).json()["model"]
                == "gpt"
            )
        config = routing_config([openai_provider("oa", url)], [models[1]], translation={"response_model": "upstream"})
        with gateway(config) as gw:
            got = httpx.post(f"{gw}/v1/chat/completions", headers=AUTH, json={**body, "model": "gpt"}).json()
            assert got["model"] == UPSTREAM_ID["gpt"]


# -- 4. model capabilities -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capable() -> Iterator[tuple[Any, str]]:
    from tests.agents.fakes import FakeAPI
    from tests.support.gateway import ANTHROPIC_KEY, OPENAI_KEY

    fake = FakeAPI(anthropic_key=ANTHROPIC_KEY, openai_key=OPENAI_KEY, workdir="/tmp")
    with serve(fake) as url:
        config = routing_config(
            [openai_provider("oa", url)],
            [
                {"name": "claude-on-4o", "provider": "oa", "model": "gpt-4o"},
                {
                    "name": "claude-on-plain",
                    "provider": "oa",
                    "model": "gpt-5-local",
                    "capabilities": {"reasoning": False, "max_output_tokens": 2048, "images": False},
                },
            ],
        )
        with gateway(config) as gw:
            yield fake, gw


def test_claude_codes_thinking_and_output_cap_fit_a_non_reasoning_openai_model(capable: tuple[Any, str]) -> None:
    fake, url = capable
    body = {
        "model": "claude-on-4o",
        "max_tokens": 64000,
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "messages": MESSAGES,
    }
    response = httpx.post(f"{url}/v1/messages", headers=AUTH, json=body)
    assert response.status_code == 200, response.text
    sent = fake.requests[-1][1]
    assert "reasoning_effort" not in sent and sent["max_completion_tokens"] == 16_384


def test_configured_capabilities_are_respected(capable: tuple[Any, str]) -> None:
    fake, url = capable
    body = {"model": "claude-on-plain", "max_tokens": 9000, "thinking": {"type": "enabled", "budget_tokens": 4000}}
    response = httpx.post(f"{url}/v1/messages", headers=AUTH, json={**body, "messages": MESSAGES})
    assert response.status_code == 200, response.text
    sent = fake.requests[-1][1]
    assert "reasoning_effort" not in sent and sent["max_completion_tokens"] == 2048
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    content = [{"type": "text", "text": "what is it?"}, image]
    response = httpx.post(
        f"{url}/v1/messages", headers=AUTH, json={**body, "messages": [{"role": "user", "content": content}]}
    )
    assert response.status_code == 400
    assert "images" in response.json()["error"]["message"]


# -- issue 11 item 9: the usage the gateway asked for is invisible to the client --------------------


def test_the_usage_the_gateway_asked_for_is_removed_whatever_the_line_ends() -> None:
    async def cr_framed(request: Recorded, send: Send) -> None:
        asked = (request.json().get("stream_options") or {}).get("include_usage") is True
        chunks = [c.replace(b"}]}", b'}],"usage":null}') if asked else c for c in openai_chunks(["Hi", "!"])]
        if asked:
            usage = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
            final = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-up",
                "choices": [],
                "usage": usage,
            }
            chunks.insert(-1, sse(final))
        body = b"".join(chunks).replace(b"\n", b"\r")  # lone CR line ends: valid SSE
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": body})

    with (
        upstreams(cr_framed) as [(oa, oa_url)],
        gateway(two_formats(oa_url, oa_url, logging={"access": True})) as url,
        access_log() as log,
    ):
        body = {"model": "gpt", "messages": MESSAGES, "stream": True}
        with httpx.stream("POST", f"{url}/v1/chat/completions", headers=AUTH, json=body) as response:
            raw = response.read()
        (fields,) = log.wait()
    assert oa.last.json()["stream_options"] == {"include_usage": True}  # asked for the accounting
    assert b'"usage"' not in raw and b'"choices":[]' not in raw  # and none of it reaches the client
    assert raw.count(b"data: ") == len(openai_chunks(["Hi", "!"]))
    assert fields["input_tokens"] == 4 and fields["output_tokens"] == 2
