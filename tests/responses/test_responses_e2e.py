"""End to end with the official openai SDK's Responses API, through real servers, to three providers:
an OpenAI-style provider without /v1/responses (translated to chat), an Anthropic provider (translated
twice: Responses -> chat -> Anthropic) and a provider flagged ``responses_api`` (relayed as-is)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import ResponseCompletedEvent, ResponseFailedEvent, ResponseFunctionToolCall

from asgi_llmroute import build_gateway
from asgi_llmroute.config import parse_config
from tests.support.gateway import ANTHROPIC_KEY, OPENAI_KEY, ROUTER_TOKEN
from tests.support.servers import Upstream, json_reply, serve, sse_reply

from ._helpers import read, run, split, translator

TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        "strict": False,
    }
]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Upstream, Upstream, Upstream, str]]:
    oa, an, native = Upstream(), Upstream(), Upstream()
    with serve(oa) as oa_url, serve(an) as an_url, serve(native) as native_url:
        config = parse_config(
            {
                "tokens": [{"name": "alice", "key": ROUTER_TOKEN}],
                "providers": [
                    {"name": "openai", "api": "openai", "base_url": f"{oa_url}/v1", "api_key": OPENAI_KEY},
                    {"name": "anthropic", "api": "anthropic", "base_url": an_url, "api_key": ANTHROPIC_KEY},
                    {
                        "name": "native",
                        "api": "openai",
                        "base_url": f"{native_url}/v1",
                        "api_key": OPENAI_KEY,
                        "responses_api": True,
                    },
                ],
                "models": [
                    {"name": "gpt-test", "provider": "openai", "model": "gpt-4o-mini"},
                    {"name": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5"},
                    {"name": "gpt-native", "provider": "native", "model": "gpt-5"},
                ],
            },
            source="test",
        )
        with serve(build_gateway(config)) as url:
            yield oa, an, native, url


@pytest.fixture
def oa(servers: tuple[Upstream, Upstream, Upstream, str]) -> Upstream:
    servers[0].requests.clear()
    return servers[0]


@pytest.fixture
def an(servers: tuple[Upstream, Upstream, Upstream, str]) -> Upstream:
    servers[1].requests.clear()
    return servers[1]


@pytest.fixture
def native(servers: tuple[Upstream, Upstream, Upstream, str]) -> Upstream:
    servers[2].requests.clear()
    return servers[2]


@pytest.fixture
def sdk(servers: tuple[Upstream, Upstream, Upstream, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{servers[3]}/v1", api_key=ROUTER_TOKEN, max_retries=0, timeout=10) as client:
        yield client


# -- OpenAI-style provider without the Responses API ---------------------------------------------


def test_non_stream_text_on_chat_provider(sdk: openai.OpenAI, oa: Upstream) -> None:
    completion = json.loads(read("openai/completion_text.json"))
    oa.reply = json_reply(completion)
    response = sdk.responses.create(model="gpt-test", instructions="Be brief.", input="Hello", max_output_tokens=50)
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == completion["choices"][0]["message"]["content"]
    assert response.usage is not None and response.usage.input_tokens == completion["usage"]["prompt_tokens"]
    sent = oa.last
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent.json() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        "max_completion_tokens": 50,
    }


def test_stream_text_then_tool_call_on_chat_provider(sdk: openai.OpenAI, oa: Upstream) -> None:
    oa.reply = sse_reply(split(read("openai/stream_text_then_tool_call.sse"), seed=4))
    events = list(sdk.responses.create(model="gpt-test", input="Weather in Paris?", tools=TOOLS, stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert "response.output_text.delta" in types and "response.function_call_arguments.delta" in types
    last = events[-1]
    assert isinstance(last, ResponseCompletedEvent)
    final = last.response
    assert final.output_text == "Let me check that."
    call = final.output[1]
    assert isinstance(call, ResponseFunctionToolCall) and call.name == "get_weather"
    assert json.loads(call.arguments) == {"location": "Paris"}
    sent = oa.last.json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["tools"][0]["function"]["name"] == "get_weather"


def test_stream_helper_on_chat_provider(sdk: openai.OpenAI, oa: Upstream) -> None:
    oa.reply = sse_reply(split(read("openai/stream_text_usage.sse"), seed=9))
    with sdk.responses.stream(model="gpt-test", input="Capital of France?") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Paris is the capital of France."
    assert final.usage is not None and final.usage.input_tokens_details.cached_tokens == 1152


def test_mid_stream_error_reports_failed(sdk: openai.OpenAI, oa: Upstream) -> None:
    oa.reply = sse_reply([read("openai/stream_error_midstream.sse")])
    events = list(sdk.responses.create(model="gpt-test", input="hi", stream=True))
    last = events[-1]
    assert isinstance(last, ResponseFailedEvent) and last.response.error is not None
    assert "error while processing" in last.response.error.message
    oa.reply = sse_reply([read("openai/stream_error_midstream.sse")])
    with sdk.responses.stream(model="gpt-test", input="hi") as stream, pytest.raises(RuntimeError, match="completed"):
        stream.get_final_response()


def test_upstream_http_error_keeps_status_and_message(sdk: openai.OpenAI, oa: Upstream) -> None:
    oa.reply = json_reply(json.loads(read("openai/error_429_rate_limit.json")), status=429)
    with pytest.raises(openai.RateLimitError) as info:
        sdk.responses.create(model="gpt-test", input="hi", stream=True)
    assert info.value.status_code == 429


def test_previous_response_id_is_a_clear_400(sdk: openai.OpenAI, oa: Upstream, an: Upstream) -> None:
    for model in ("gpt-test", "claude"):
        with pytest.raises(openai.BadRequestError, match="previous_response_id") as info:
            sdk.responses.create(model=model, input="and then?", previous_response_id="resp_123")
        assert info.value.param == "previous_response_id"
    assert not oa.requests and not an.requests


def test_hosted_tool_is_dropped_for_a_chat_upstream(sdk: openai.OpenAI, oa: Upstream) -> None:
    oa.reply = json_reply(json.loads(read("openai/completion_text.json")))
    response = sdk.responses.create(model="gpt-test", input="news?", tools=[{"type": "web_search"}])
    assert response.output_text
    assert "tools" not in oa.last.json()


def test_garbage_json_is_a_502(sdk: openai.OpenAI, oa: Upstream) -> None:
    oa.reply = json_reply(["not", "a", "completion"])
    with pytest.raises(openai.InternalServerError) as info:
        sdk.responses.create(model="gpt-test", input="hi")
    assert info.value.status_code == 502


# -- Anthropic provider: Responses -> chat -> Anthropic -------------------------------------------


def test_non_stream_tool_call_on_anthropic(sdk: openai.OpenAI, an: Upstream) -> None:
    an.reply = json_reply(json.loads(read("anthropic/message_tool_use.json")))
    response = sdk.responses.create(model="claude", instructions="Be brief.", input="Weather in Paris?", tools=TOOLS)
    calls = [item for item in response.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and calls[0].call_id
    sent = an.last
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == ANTHROPIC_KEY
    body = sent.json()
    assert body["system"] == "Be brief." and body["model"] == "claude-sonnet-4-5"
    assert body["tools"][0]["name"] == "get_weather" and body["tools"][0]["input_schema"]["type"] == "object"


def test_function_call_round_trip_on_anthropic(sdk: openai.OpenAI, an: Upstream) -> None:
    an.reply = json_reply(json.loads(read("anthropic/message_text.json")))
    sdk.responses.create(
        model="claude",
        tools=TOOLS,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": "toolu_1", "name": "get_weather", "arguments": '{"location":"Paris"}'},
            {"type": "function_call_output", "call_id": "toolu_1", "output": "18C and sunny"},
        ],
    )
    messages = an.last.json()["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}],
    }
    assert messages[2]["content"][0] == {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C and sunny"}


@pytest.mark.parametrize("name", ["stream_text", "stream_text_tool_use", "stream_thinking_text", "stream_ping_crlf"])
def test_streams_on_anthropic(sdk: openai.OpenAI, an: Upstream, name: str) -> None:
    an.reply = sse_reply(split(read(f"anthropic/{name}.sse"), seed=len(name)))
    with sdk.responses.stream(model="claude", input="hi", tools=TOOLS) as stream:
        final = stream.get_final_response()
    assert final.status == "completed" and final.usage is not None and final.usage.output_tokens > 0
    kinds = [item.type for item in final.output]
    assert "message" in kinds or "function_call" in kinds
    if name == "stream_thinking_text":
        assert kinds[0] == "reasoning"
    assert an.last.json()["stream"] is True


def test_mid_stream_error_on_anthropic_reports_failed(sdk: openai.OpenAI, an: Upstream) -> None:
    an.reply = sse_reply([read("anthropic/stream_error_overloaded.sse")])
    events = list(sdk.responses.create(model="claude", input="hi", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.failed"
    last = events[-1]
    assert isinstance(last, ResponseFailedEvent) and last.response.error is not None
    assert "Overloaded" in last.response.error.message


def test_http_error_on_anthropic_is_openai_shaped(sdk: openai.OpenAI, an: Upstream) -> None:
    an.reply = json_reply(json.loads(read("anthropic/error_529_overloaded.json")), status=529)
    with pytest.raises(openai.APIStatusError) as info:
        sdk.responses.create(model="claude", input="hi")
    assert info.value.status_code == 529 and "Overloaded" in info.value.message


# -- Native provider: relayed as-is ----------------------------------------------------------------


def test_native_provider_is_relayed_byte_for_byte(sdk: openai.OpenAI, native: Upstream) -> None:
    body = run([read("openai/stream_text_then_tool_call.sse")], translator())  # a genuine Responses stream
    native.reply = sse_reply(split(body, seed=2))
    with sdk.responses.stream(model="gpt-native", input="hi", previous_response_id="resp_prev") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Let me check that."
    sent = native.last
    assert sent.path == "/v1/responses" and sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent.json()["previous_response_id"] == "resp_prev" and sent.json()["model"] == "gpt-5"
    assert "stream_options" not in sent.json()


def test_native_provider_raw_bytes(servers: tuple[Upstream, Upstream, Upstream, str], native: Upstream) -> None:
    body = b'event: response.created\ndata: {"type":"response.created","x":1}\n\n: comment\n\n'
    native.reply = sse_reply([body])
    response = httpx.post(
        f"{servers[3]}/v1/responses",
        json={"model": "gpt-native", "input": "hi", "stream": True},
        headers={"authorization": f"Bearer {ROUTER_TOKEN}"},
    )
    assert response.status_code == 200 and response.content == body
