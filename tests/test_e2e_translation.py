"""End to end across formats: each official SDK against a provider of the other API, through real servers."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from asgi_llmroute import build_gateway
from asgi_llmroute.config import parse_config
from tests.support.gateway import ANTHROPIC_KEY, OPENAI_KEY, ROUTER_TOKEN, gateway_config
from tests.support.servers import Upstream, canned_http_server, json_reply, serve, sse_reply

FIXTURES = Path(__file__).parent / "fixtures" / "protocols"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def split_randomly(body: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, 25)))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=False)]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Upstream, Upstream, str]]:
    oa, an = Upstream(), Upstream()
    with (
        serve(oa) as oa_url,
        serve(an) as an_url,
        serve(
            # The golden transcripts carry the upstream's model id: relay it (the client-facing name is
            # tested in tests/agents/test_behaviours.py).
            build_gateway(gateway_config(oa_url, an_url, translation={"response_model": "upstream"}))
        ) as url,
    ):
        yield oa, an, url


@pytest.fixture
def oa(servers: tuple[Upstream, Upstream, str]) -> Upstream:
    servers[0].requests.clear()
    return servers[0]


@pytest.fixture
def an(servers: tuple[Upstream, Upstream, str]) -> Upstream:
    servers[1].requests.clear()
    return servers[1]


@pytest.fixture
def openai_sdk(servers: tuple[Upstream, Upstream, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{servers[2]}/v1", api_key=ROUTER_TOKEN, max_retries=0) as client:
        yield client


@pytest.fixture
def anthropic_sdk(servers: tuple[Upstream, Upstream, str]) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=servers[2], api_key=ROUTER_TOKEN, max_retries=0) as client:
        yield client


# -- OpenAI client -> Anthropic provider ---------------------------------------------------------

TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
]


def test_openai_client_non_stream_tool_call(openai_sdk: openai.OpenAI, an: Upstream) -> None:
    an.reply = json_reply(json.loads(fixture("anthropic/message_tool_use.json")))
    completion = openai_sdk.chat.completions.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
    )
    expected = json.loads(fixture("anthropic/message_tool_use.expected.openai.json"))
    got = completion.model_dump(exclude_none=True)
    assert got["choices"][0]["finish_reason"] == "tool_calls"
    assert got["choices"][0]["message"]["tool_calls"] == expected["choices"][0]["message"]["tool_calls"]
    sent = an.last
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY and sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.json()["system"] == "Be brief." and sent.json()["model"] == "claude-sonnet-4-5"
    assert sent.json()["max_tokens"] == 4096
    assert sent.json()["tools"][0]["input_schema"] == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("name", "include_usage"),
    [
        ("stream_text", False),
        ("stream_text_tool_use", True),
        ("stream_parallel_tool_use", True),
        ("stream_tool_use_no_args", False),
        ("stream_thinking_text", True),
        ("stream_ping_crlf", False),
    ],
)
def test_openai_client_streams(openai_sdk: openai.OpenAI, an: Upstream, name: str, include_usage: bool) -> None:
    an.reply = sse_reply(split_randomly(fixture(f"anthropic/{name}.sse"), seed=len(name)))
    stream = openai_sdk.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    chunks = list(stream)
    expected = [
        json.loads(line[6:])
        for line in fixture(f"anthropic/{name}.expected.openai.sse").decode().splitlines()
        if line.startswith("data: {")
    ]
    got = [c.model_dump(exclude_unset=True) for c in chunks]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=False):
        e.pop("created")
        g.pop("created")
        assert g == e


def test_openai_client_mid_stream_error_raises(openai_sdk: openai.OpenAI, an: Upstream) -> None:
    an.reply = sse_reply([fixture("anthropic/stream_error_overloaded.sse")])
    stream = openai_sdk.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError, match="Overloaded"):
        list(stream)


def test_openai_client_gets_translated_http_errors(openai_sdk: openai.OpenAI, an: Upstream) -> None:
    an.reply = json_reply(json.loads(fixture("anthropic/error_529_overloaded.json")), status=529)
    with pytest.raises(openai.InternalServerError) as info:
        openai_sdk.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 529
    assert info.value.body == json.loads(fixture("anthropic/error_529_overloaded.expected.openai.json"))["error"]


def test_untranslatable_request_is_a_400_in_openai_format(openai_sdk: openai.OpenAI, an: Upstream) -> None:
    with pytest.raises(openai.BadRequestError):
        openai_sdk.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}], n=2)
    assert an.requests == []


# -- Anthropic client -> OpenAI provider ---------------------------------------------------------


def test_anthropic_client_non_stream(anthropic_sdk: anthropic.Anthropic, oa: Upstream) -> None:
    oa.reply = json_reply(json.loads(fixture("openai/completion_tool_calls.json")))
    message = anthropic_sdk.messages.create(
        model="gpt-test",
        max_tokens=256,
        system="Be brief.",
        messages=[{"role": "user", "content": "Weather and time in Paris?"}],
        tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
    )
    expected = json.loads(fixture("openai/completion_tool_calls.expected.anthropic.json"))
    assert message.model_dump(exclude_none=True)["content"] == expected["content"]
    assert message.stop_reason == "tool_use"
    sent = oa.last
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert not any(h.startswith("anthropic-") for h in sent.headers)
    body = sent.json()
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["max_completion_tokens"] == 256 and body["model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    "name",
    ["stream_text", "stream_parallel_tool_calls", "stream_text_usage", "stream_text_then_tool_call"],
)
def test_anthropic_client_streams(anthropic_sdk: anthropic.Anthropic, oa: Upstream, name: str) -> None:
    oa.reply = sse_reply(split_randomly(fixture(f"openai/{name}.sse"), seed=len(name)))
    with anthropic_sdk.messages.stream(
        model="gpt-test", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        events = [e.model_dump(exclude_none=True) for e in stream if e.type not in ("text", "input_json")]
        final = stream.get_final_message()
    expected = [
        json.loads(line[6:])
        for line in fixture(f"openai/{name}.expected.anthropic.sse").decode().splitlines()
        if line.startswith("data: ")
    ]
    assert [e["type"] for e in events] == [e["type"] for e in expected]
    assert final.stop_reason == expected[-2]["delta"]["stop_reason"]
    assert oa.last.json()["stream_options"] == {"include_usage": True}


def test_anthropic_client_mid_stream_error_raises(anthropic_sdk: anthropic.Anthropic, oa: Upstream) -> None:
    oa.reply = sse_reply([fixture("openai/stream_error_midstream.sse")])
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        anthropic_sdk.messages.stream(
            model="gpt-test", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        ) as s,
    ):
        s.get_final_message()
    assert info.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_anthropic_client_gets_anthropic_context_length_error(anthropic_sdk: anthropic.Anthropic, oa: Upstream) -> None:
    oa.reply = json_reply(json.loads(fixture("openai/error_400_context_length_completion.json")), status=400)
    with pytest.raises(anthropic.BadRequestError) as info:
        anthropic_sdk.messages.create(model="gpt-test", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    expected = json.loads(fixture("openai/error_400_context_length_completion.expected.anthropic.json"))
    assert info.value.body == expected


def test_count_tokens_on_an_openai_provider_is_estimated(servers: tuple[Upstream, Upstream, str], oa: Upstream) -> None:
    response = httpx.post(
        f"{servers[2]}/v1/messages/count_tokens",
        headers={"x-api-key": ROUTER_TOKEN},
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "hello there"}]},
    )
    assert response.status_code == 200 and response.json()["input_tokens"] > 0
    assert oa.requests == []


def test_embeddings_on_an_anthropic_provider_is_a_clear_400(servers: tuple[Upstream, Upstream, str]) -> None:
    response = httpx.post(
        f"{servers[2]}/v1/embeddings", headers={"x-api-key": ROUTER_TOKEN}, json={"model": "claude", "input": "x"}
    )
    message = response.json()["error"]["message"]
    assert response.status_code == 400 and "does not offer the embeddings operation" in message
    assert "kind 'anthropic'" in message


# -- malformed upstreams never crash the gateway or hang the client ------------------------------

GARBAGE = [
    b"data: {not json}\n\n",
    b"\x00\xff\xfe garbage \r\n\r\n",
    b"event: message_start\ndata: []\n\n",
    b'data: {"choices": "nope"}\n\n',
    b"data: " + b"x" * 100_000,  # never terminated
    b"",
]


@pytest.mark.parametrize("body", GARBAGE)
def test_garbage_stream_from_anthropic_upstream(openai_sdk: openai.OpenAI, an: Upstream, body: bytes) -> None:
    an.reply = sse_reply([body])
    stream = openai_sdk.chat.completions.create(
        model="claude", messages=[{"role": "user", "content": "hi"}], stream=True, timeout=10
    )
    with pytest.raises(openai.APIError):
        list(stream)


@pytest.mark.parametrize("body", GARBAGE)
def test_garbage_stream_from_openai_upstream(anthropic_sdk: anthropic.Anthropic, oa: Upstream, body: bytes) -> None:
    oa.reply = sse_reply([body])
    with (
        pytest.raises(anthropic.APIError),
        anthropic_sdk.messages.stream(
            model="gpt-test", max_tokens=10, messages=[{"role": "user", "content": "x"}], timeout=10
        ) as s,
    ):
        s.get_final_message()


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"content": 5}', b""])
def test_garbage_json_from_upstream_is_a_502(openai_sdk: openai.OpenAI, an: Upstream, body: bytes) -> None:
    async def reply(request, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    an.reply = reply
    with pytest.raises(openai.APIStatusError) as info:
        openai_sdk.chat.completions.create(model="claude", messages=[{"role": "user", "content": "hi"}], timeout=10)
    assert info.value.status_code == 502


def test_capitalised_upstream_header_names(servers: tuple[Upstream, Upstream, str]) -> None:
    # nginx and others send "Content-Type"; the stream must still be recognised as a stream.
    body = fixture("anthropic/stream_text.sse")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Upstream-Thing: 1\r\n"
    response = head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    with canned_http_server(response) as upstream_url:
        config = parse_config(
            {
                "tokens": [{"name": "t", "key": ROUTER_TOKEN}],
                "providers": [{"name": "an", "api": "anthropic", "base_url": upstream_url}],
                "models": [{"name": "claude", "provider": "an", "model": "claude-x"}],
            }
        )
        with serve(build_gateway(config)) as url, openai.OpenAI(base_url=f"{url}/v1", api_key=ROUTER_TOKEN) as client:
            raw = client.chat.completions.with_raw_response.create(
                model="claude", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            assert raw.headers["x-upstream-thing"] == "1"
            text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "Hello! How can I help you today?"
