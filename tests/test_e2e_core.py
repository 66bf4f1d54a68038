"""End to end: real uvicorn servers (gateway and upstreams), driven by the official SDKs."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from starlette.types import Send

from asgi_llmroute import build_gateway
from asgi_llmroute.config import parse_config
from tests.support.gateway import ANTHROPIC_KEY, LIMITED_TOKEN, OPENAI_KEY, ROUTER_TOKEN, SECRETS, gateway_config
from tests.support.servers import Recorded, Upstream, json_reply, serve, sse_reply

FIXTURES = Path(__file__).parent / "fixtures" / "protocols"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture(scope="module")
def openai_upstream() -> Iterator[tuple[Upstream, str]]:
    upstream = Upstream()
    with serve(upstream) as url:
        yield upstream, url


@pytest.fixture(scope="module")
def anthropic_upstream() -> Iterator[tuple[Upstream, str]]:
    upstream = Upstream()
    with serve(upstream) as url:
        yield upstream, url


@pytest.fixture(scope="module")
def gateway_url(openai_upstream: tuple[Upstream, str], anthropic_upstream: tuple[Upstream, str]) -> Iterator[str]:
    # One attempt per request: these tests are about the core path (tests/routing covers retries).
    config = gateway_config(openai_upstream[1], anthropic_upstream[1], routing={"max_attempts": 1})
    with serve(build_gateway(config)) as url:
        yield url


@pytest.fixture
def oa(openai_upstream: tuple[Upstream, str]) -> Upstream:
    return openai_upstream[0].reset()


@pytest.fixture
def an(anthropic_upstream: tuple[Upstream, str]) -> Upstream:
    return anthropic_upstream[0].reset()


_clients: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True, scope="module")
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def openai_client(url: str, token: str = ROUTER_TOKEN) -> openai.OpenAI:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0)
    _clients.append(client)
    return client


def anthropic_client(url: str, token: str = ROUTER_TOKEN) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=url, api_key=token, max_retries=0)
    _clients.append(client)
    return client


def assert_no_client_credentials(request: Recorded) -> None:
    raw = json.dumps(request.headers)
    assert ROUTER_TOKEN not in raw and LIMITED_TOKEN not in raw
    assert "cookie" not in request.headers


# -- OpenAI clients -----------------------------------------------------------------------------


def test_openai_sdk_non_stream(gateway_url: str, oa: Upstream) -> None:
    oa.reply = json_reply(json.loads(fixture("openai/completion_text.json")))
    client = openai_client(gateway_url)
    completion = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "Hello"}],
        extra_headers={"Cookie": "session=abc", "x-custom": "kept"},
    )
    expected = json.loads(fixture("openai/completion_text.json"))
    assert completion.choices[0].message.content == expected["choices"][0]["message"]["content"]
    request = oa.last
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert request.headers["x-custom"] == "kept"
    assert request.json()["model"] == "gpt-4o-mini"  # the upstream model, not the alias
    assert_no_client_credentials(request)


def test_openai_sdk_stream_is_relayed_byte_for_byte(gateway_url: str, oa: Upstream) -> None:
    body = fixture("openai/stream_text.sse")
    oa.reply = sse_reply([body[i : i + 37] for i in range(0, len(body), 37)])
    client = openai_client(gateway_url)
    stream = client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "Hi"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("Hello")
    with httpx.stream(
        "POST",
        f"{gateway_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {ROUTER_TOKEN}"},
        json={"model": "gpt-test", "messages": [], "stream": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        # Byte for byte, but for the model name: the one the client asked for (docs/translation.md).
        assert response.read() == re.sub(rb'"model":\s*"[^"]*"', b'"model":"gpt-test"', body)


def test_openai_models_list(gateway_url: str) -> None:
    models = openai_client(gateway_url).models.list()
    assert [m.id for m in models.data] == ["gpt-test", "claude"]
    limited = openai_client(gateway_url, LIMITED_TOKEN).models.list()
    assert [m.id for m in limited.data] == ["gpt-test"]


def test_embeddings_pass_through(gateway_url: str, oa: Upstream) -> None:
    oa.reply = json_reply(
        {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}], "model": "m"}
    )
    result = openai_client(gateway_url).embeddings.create(model="gpt-test", input="hi", encoding_format="float")
    assert result.data[0].embedding == [0.5, 0.25]
    assert oa.last.path == "/v1/embeddings"
    assert oa.last.json()["model"] == "gpt-4o-mini"


def test_provider_prefix_routes_without_a_models_entry(gateway_url: str, oa: Upstream) -> None:
    oa.reply = json_reply(json.loads(fixture("openai/completion_text.json")))
    openai_client(gateway_url).chat.completions.create(
        model="openai/gpt-5", messages=[{"role": "user", "content": "x"}]
    )
    assert oa.last.json()["model"] == "gpt-5"


# Control characters are refused in model names (400), so these are the escapes a relayed name can carry.
ESCAPING_NAMES = ["back\\slash", 'quo"te', "lit\\u0041", "\\1\\g<0>", "tab\\t"]


@pytest.mark.parametrize("name", [f"openai/{n}" for n in ESCAPING_NAMES])
def test_model_names_with_json_escapes_come_back_intact(gateway_url: str, oa: Upstream, name: str) -> None:
    """The name the client asked for is spliced into the answer as JSON, whatever it escapes to."""
    headers = {"authorization": f"Bearer {ROUTER_TOKEN}"}
    oa.reply = json_reply(json.loads(fixture("openai/completion_text.json")))
    response = httpx.post(f"{gateway_url}/v1/chat/completions", headers=headers, json={"model": name, "messages": []})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == name
    body = fixture("openai/stream_text.sse")
    oa.reply = sse_reply([body[i : i + 37] for i in range(0, len(body), 37)])
    request = {"model": name, "messages": [], "stream": True}
    response = httpx.post(f"{gateway_url}/v1/chat/completions", headers=headers, json=request)
    assert response.status_code == 200, response.text
    events = [e for e in response.content.split(b"\n\n") if e.strip()]
    assert events[-1] == b"data: [DONE]"
    assert len(events) == body.count(b"\n\n")  # no newline slipped into an event
    assert {json.loads(e.removeprefix(b"data: "))["model"] for e in events[:-1]} == {name}


# -- Anthropic clients --------------------------------------------------------------------------


def test_anthropic_sdk_non_stream(gateway_url: str, an: Upstream) -> None:
    an.reply = json_reply(json.loads(fixture("anthropic/message_text.json")))
    message = anthropic_client(gateway_url).messages.create(
        model="claude", max_tokens=100, messages=[{"role": "user", "content": "Hello"}]
    )
    assert message.content[0].type == "text"
    request = an.last
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == ANTHROPIC_KEY
    assert "authorization" not in request.headers  # the SDK sent the router token as Bearer
    assert request.json()["model"] == "claude-sonnet-4-5"
    assert_no_client_credentials(request)


def test_anthropic_version_client_wins_else_provider(gateway_url: str, an: Upstream) -> None:
    an.reply = json_reply(json.loads(fixture("anthropic/message_text.json")))
    headers = {"authorization": f"Bearer {ROUTER_TOKEN}"}
    body = {"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    httpx.post(f"{gateway_url}/v1/messages", headers={**headers, "anthropic-version": "2026-10-21"}, json=body)
    assert an.last.headers["anthropic-version"] == "2026-10-21"
    httpx.post(f"{gateway_url}/v1/messages", headers=headers, json=body)
    assert an.last.headers["anthropic-version"] == "2023-06-01"


def test_anthropic_sdk_stream_helper(gateway_url: str, an: Upstream) -> None:
    body = fixture("anthropic/stream_text_tool_use.sse")
    an.reply = sse_reply([body[i : i + 50] for i in range(0, len(body), 50)])
    client = anthropic_client(gateway_url)
    with client.messages.stream(model="claude", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.stop_reason == "tool_use"


def test_x_api_key_and_bearer_either_may_hold_the_router_token(gateway_url: str, an: Upstream) -> None:
    an.reply = json_reply(json.loads(fixture("anthropic/message_text.json")))
    body = {"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    for headers in (
        {"x-api-key": ROUTER_TOKEN, "authorization": "Bearer sk-ant-oauth-other"},
        {"x-api-key": "sk-ant-other", "authorization": f"Bearer {ROUTER_TOKEN}"},
    ):
        response = httpx.post(f"{gateway_url}/v1/messages", headers=headers, json=body)
        assert response.status_code == 200, response.text
        assert "sk-ant-other" not in json.dumps(an.last.headers)
        assert "oauth" not in json.dumps(an.last.headers)


@pytest.mark.parametrize("name", [f"anthropic/{n}" for n in ESCAPING_NAMES])
def test_anthropic_model_names_with_json_escapes_come_back_intact(gateway_url: str, an: Upstream, name: str) -> None:
    headers = {"x-api-key": ROUTER_TOKEN}
    request = {"model": name, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    an.reply = json_reply(json.loads(fixture("anthropic/message_text.json")))
    response = httpx.post(f"{gateway_url}/v1/messages", headers=headers, json=request)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == name
    body = fixture("anthropic/stream_text_tool_use.sse")
    an.reply = sse_reply([body[i : i + 50] for i in range(0, len(body), 50)])
    response = httpx.post(f"{gateway_url}/v1/messages", headers=headers, json={**request, "stream": True})
    assert response.status_code == 200, response.text
    events = [e for e in response.content.split(b"\n\n") if e.strip()]
    assert len(events) == body.count(b"\n\n")
    data = [json.loads(e.split(b"\ndata: ", 1)[1]) for e in events]
    assert data[0]["message"]["model"] == name


# -- errors, in both formats --------------------------------------------------------------------


def openai_error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def anthropic_error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    return dict(body["error"])


@pytest.mark.parametrize(
    ("headers", "content", "status", "openai_code"),
    [
        ({}, b'{"model": "gpt-test", "messages": []}', 401, "missing_api_key"),
        ({"authorization": "Bearer nope"}, b'{"model": "gpt-test", "messages": []}', 401, "invalid_api_key"),
        ({"authorization": "Basic abc"}, b'{"model": "gpt-test"}', 401, "missing_api_key"),
        ({"authorization": f"Bearer {ROUTER_TOKEN}"}, b"{not json", 400, None),
        ({"authorization": f"Bearer {ROUTER_TOKEN}"}, b'["a list"]', 400, None),
        ({"authorization": f"Bearer {ROUTER_TOKEN}"}, b'{"messages": []}', 400, "missing_model"),
        ({"authorization": f"Bearer {ROUTER_TOKEN}"}, b'{"model": "nope", "messages": []}', 404, "model_not_found"),
        (
            {"authorization": f"Bearer {LIMITED_TOKEN}"},
            b'{"model": "claude", "messages": []}',
            403,
            "model_not_allowed",
        ),
        (
            {"authorization": f"Bearer {ROUTER_TOKEN}"},
            b'{"model": "gpt-test", "x": "' + b"a" * 70000 + b'"}',
            413,
            None,
        ),
    ],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_gateway_errors_in_the_callers_format(
    gateway_url: str, path: str, headers: dict[str, str], content: bytes, status: int, openai_code: str | None
) -> None:
    response = httpx.post(f"{gateway_url}{path}", headers=headers, content=content)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    if path == "/v1/messages":
        error = anthropic_error(response)
        expected = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error"}
        expected |= {404: "not_found_error", 413: "request_too_large"}
        assert error["type"] == expected[status]
    else:
        error = openai_error(response)
        if openai_code is not None:
            assert error["code"] == openai_code
    for secret in SECRETS:
        assert secret not in response.text


def test_sdk_exceptions_for_gateway_errors(gateway_url: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai_client(gateway_url, "sk-wrong").chat.completions.create(model="gpt-test", messages=[])
    with pytest.raises(openai.NotFoundError):
        openai_client(gateway_url).chat.completions.create(model="missing", messages=[])
    with pytest.raises(anthropic.PermissionDeniedError):
        anthropic_client(gateway_url, LIMITED_TOKEN).messages.create(model="claude", max_tokens=5, messages=[])
    with pytest.raises(anthropic.AuthenticationError):
        anthropic_client(gateway_url, "sk-wrong").messages.create(model="claude", max_tokens=5, messages=[])


def test_upstream_errors_pass_through(gateway_url: str, oa: Upstream, an: Upstream) -> None:
    rate_limit = json.loads(fixture("openai/error_429_rate_limit.json"))
    oa.reply = json_reply(rate_limit, status=429, headers={"retry-after": "7"})
    response = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {ROUTER_TOKEN}"},
        json={"model": "gpt-test", "messages": []},
    )
    assert response.status_code == 429
    assert response.json() == rate_limit
    assert response.headers["retry-after"] == "7"
    an.reply = json_reply(json.loads(fixture("anthropic/error_529_overloaded.json")), status=529)
    with pytest.raises(anthropic.APIStatusError) as info:
        anthropic_client(gateway_url).messages.create(model="claude", max_tokens=5, messages=[])
    assert info.value.status_code == 529


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_upstream_is_502_and_timeout_is_504() -> None:
    async def slow(request: Recorded, send: Send) -> None:
        await asyncio.sleep(5)

    dead = f"http://127.0.0.1:{_closed_port()}"
    with serve(Upstream(reply=slow)) as slow_url:
        config = parse_config(
            {
                "tokens": [{"name": "a", "key": ROUTER_TOKEN}],
                "providers": [
                    {"name": "dead", "api": "openai", "base_url": f"{dead}/v1", "api_key": OPENAI_KEY},
                    {
                        "name": "slow",
                        "api": "anthropic",
                        "base_url": slow_url,
                        "api_key": ANTHROPIC_KEY,
                        "timeout": 0.5,
                    },
                ],
                "models": [
                    {"name": "dead", "provider": "dead", "model": "m"},
                    {"name": "slow", "provider": "slow", "model": "m"},
                ],
            }
        )
        with serve(build_gateway(config)) as url:
            with pytest.raises(openai.APIStatusError) as info:
                openai_client(url).chat.completions.create(model="dead", messages=[])
            assert info.value.status_code == 502
            started = time.monotonic()
            with pytest.raises(anthropic.APIStatusError) as info2:
                anthropic_client(url).messages.create(model="slow", max_tokens=5, messages=[])
            assert info2.value.status_code == 504
            assert time.monotonic() - started < 4
            assert info2.value.body["error"]["type"] == "timeout_error"  # type: ignore[index]


def test_client_disconnect_cancels_the_upstream(gateway_url: str, oa: Upstream) -> None:
    chunks = [b'data: {"id":"x","object":"chat.completion.chunk","choices":[]}\n\n'] * 50
    oa.reply = sse_reply(chunks, delay=0.1)
    with httpx.stream(
        "POST",
        f"{gateway_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {ROUTER_TOKEN}"},
        json={"model": "gpt-test", "messages": [], "stream": True},
    ) as response:
        next(response.iter_raw())
    assert oa.cancelled.wait(3), "the upstream request was not cancelled"


@pytest.mark.parametrize("token", [ROUTER_TOKEN, LIMITED_TOKEN], ids=["resolver-reads-body", "auth-reads-body"])
def test_client_gone_before_its_body_arrived(
    gateway_url: str, token: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    port = int(gateway_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b'{"model": "gpt-test", "mess'
        )
        time.sleep(0.2)
    deadline = time.monotonic() + 3
    while "POST /v1/chat/completions 499" not in caplog.text:
        assert time.monotonic() < deadline, caplog.text
        time.sleep(0.02)
    _, err = capfd.readouterr()
    assert "Traceback" not in caplog.text + err
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_health_needs_no_token(gateway_url: str) -> None:
    response = httpx.get(f"{gateway_url}/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_unknown_route_and_method(gateway_url: str) -> None:
    headers = {"authorization": f"Bearer {ROUTER_TOKEN}"}
    assert httpx.get(f"{gateway_url}/nope", headers=headers).status_code == 404
    assert httpx.get(f"{gateway_url}/v1/chat/completions", headers=headers).status_code == 405


def test_no_secret_in_logs(
    gateway_url: str, oa: Upstream, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    oa.reply = json_reply(json.loads(fixture("openai/completion_text.json")))
    openai_client(gateway_url).chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        openai_client(gateway_url, "sk-wrong-token-value").chat.completions.create(model="gpt-test", messages=[])
    out, err = capfd.readouterr()
    for secret in (*SECRETS, "sk-wrong-token-value"):
        assert secret not in caplog.text and secret not in out and secret not in err
