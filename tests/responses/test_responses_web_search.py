"""Hosted web search end to end, with the official openai SDK through the gateway: Responses clients and Chat
clients on an Anthropic provider get Anthropic's server-side search (``web_search_call`` items, ``url_citation``
annotations, the search events), and a provider without one gets the tool dropped with x-llmroute-warning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.responses import ResponseCompletedEvent, ResponseFunctionWebSearch, ResponseOutputMessage

from asgi_llmroute import build_gateway
from asgi_llmroute.config import parse_config
from tests.formats.test_web_search import MESSAGE, anthropic_stream
from tests.support.gateway import ANTHROPIC_KEY, OPENAI_KEY, ROUTER_TOKEN
from tests.support.servers import Recorded, Upstream, json_reply, serve, sse_reply

from ._helpers import split

URL = "https://weather.example/paris"
FUNCTION: Any = {"type": "function", "name": "exec_command", "parameters": {"type": "object", "properties": {}}}
CHAT_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def _anthropic(request: Recorded) -> None:
    """What Anthropic checks of a web search tool (a 400 otherwise)."""
    for tool in request.json().get("tools", []):
        if tool.get("type") == "web_search_20250305":
            assert tool["name"] == "web_search"
            assert set(tool) <= {"type", "name", "max_uses", "allowed_domains", "blocked_domains", "user_location"}
            assert set(tool.get("user_location", {"type": "approximate"})) <= {
                "type",
                "city",
                "region",
                "country",
                "timezone",
            }


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Upstream, Upstream, str]]:
    an, oa = Upstream(), Upstream()
    with serve(an) as an_url, serve(oa) as oa_url:
        config = parse_config(
            {
                "tokens": [{"name": "alice", "key": ROUTER_TOKEN}],
                "providers": [
                    {"name": "anthropic", "api": "anthropic", "base_url": an_url, "api_key": ANTHROPIC_KEY},
                    {"name": "openai", "api": "openai", "base_url": f"{oa_url}/v1", "api_key": OPENAI_KEY},
                ],
                "models": [
                    {"name": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5"},
                    {"name": "gpt-test", "provider": "openai", "model": "gpt-4o-mini"},
                ],
            },
            source="test",
        )
        with serve(build_gateway(config)) as url:
            yield an, oa, url


@pytest.fixture
def an(servers: tuple[Upstream, Upstream, str]) -> Upstream:
    servers[0].requests.clear()
    return servers[0]


@pytest.fixture
def oa(servers: tuple[Upstream, Upstream, str]) -> Upstream:
    servers[1].requests.clear()
    return servers[1]


@pytest.fixture
def sdk(servers: tuple[Upstream, Upstream, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{servers[2]}/v1", api_key=ROUTER_TOKEN, max_retries=0, timeout=10) as client:
        yield client


def test_responses_web_search_on_anthropic(sdk: openai.OpenAI, an: Upstream) -> None:
    an.reply = json_reply(MESSAGE)
    tool: Any = {
        "type": "web_search",
        "filters": {"allowed_domains": ["weather.example"]},
        "user_location": {"type": "approximate", "city": "Paris", "country": "FR"},
        "search_context_size": "medium",
    }
    raw = sdk.responses.with_raw_response.create(model="claude", input="Weather in Paris?", tools=[tool, FUNCTION])
    response = raw.parse()
    sent = an.last.json()
    _anthropic(an.last)
    assert sent["tools"][-1] == {
        "type": "web_search_20250305",
        "name": "web_search",
        "allowed_domains": ["weather.example"],
        "user_location": {"type": "approximate", "city": "Paris", "country": "FR"},
    }
    assert "search_context_size dropped" in raw.headers["x-llmroute-warning"]
    search, message = response.output
    assert isinstance(search, ResponseFunctionWebSearch) and search.status == "completed"
    assert search.action.type == "search" and search.action.query == "paris weather"
    assert isinstance(message, ResponseOutputMessage)
    text = message.content[0]
    assert text.type == "output_text"
    (annotation,) = text.annotations
    assert annotation.type == "url_citation" and annotation.url == URL and annotation.title == "Paris weather"
    assert text.text[annotation.start_index : annotation.end_index] == "18C and sunny"


def test_responses_web_search_stream_on_anthropic(sdk: openai.OpenAI, an: Upstream) -> None:
    an.reply = sse_reply(split(anthropic_stream(), seed=3))
    events = list(sdk.responses.create(model="claude", input="Weather?", tools=[{"type": "web_search"}], stream=True))
    types = [e.type for e in events]
    search = [t for t in types if t.startswith("response.web_search_call.")]
    assert search == [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
    ]
    assert types.count("response.output_text.annotation.added") == 1 and types[-1] == "response.completed"
    last = events[-1]
    assert isinstance(last, ResponseCompletedEvent)
    first, call, answer = last.response.output
    assert isinstance(first, ResponseOutputMessage) and isinstance(answer, ResponseOutputMessage)
    assert isinstance(call, ResponseFunctionWebSearch) and call.action.type == "search"
    assert call.action.query == "paris weather"
    text = answer.content[0]
    assert text.type == "output_text" and text.text == "It is 18C and sunny in Paris."
    (annotation,) = text.annotations
    assert annotation.type == "url_citation"
    assert text.text[annotation.start_index : annotation.end_index] == "18C and sunny"
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert added[0].model_dump()["annotation"] == annotation.model_dump()


def test_chat_web_search_options_on_anthropic(sdk: openai.OpenAI, an: Upstream) -> None:
    an.reply = json_reply(MESSAGE)
    completion = sdk.chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        web_search_options={"user_location": {"type": "approximate", "approximate": {"city": "Paris"}}},
    )
    _anthropic(an.last)
    assert an.last.json()["tools"] == [
        {"type": "web_search_20250305", "name": "web_search", "user_location": {"type": "approximate", "city": "Paris"}}
    ]
    message = completion.choices[0].message
    assert message.annotations is not None
    (annotation,) = message.annotations
    cited = annotation.url_citation
    assert cited.url == URL and message.content is not None
    assert message.content[cited.start_index : cited.end_index] == "18C and sunny"


def test_web_search_dropped_with_a_warning_without_an_equivalent(sdk: openai.OpenAI, oa: Upstream) -> None:
    oa.reply = json_reply(CHAT_ANSWER)
    raw = sdk.responses.with_raw_response.create(model="gpt-test", input="news?", tools=[{"type": "web_search"}])
    assert raw.parse().output_text == "pong"
    assert "tools" not in oa.last.json() and "web_search_options" not in oa.last.json()
    assert raw.headers["x-llmroute-warning"] == (
        "tools[0]: hosted tool 'web_search' dropped: this model's provider cannot run it"
    )


def test_warning_header_is_printable_ascii(sdk: openai.OpenAI, oa: Upstream) -> None:
    oa.reply = json_reply(CHAT_ANSWER)
    raw = sdk.responses.with_raw_response.create(
        model="gpt-test", input=[{"role": "user", "content": "hi"}, {"type": "item_reference", "id": "rs_é\n"}]
    )
    warning = raw.headers["x-llmroute-warning"]
    assert "rs_\\xe9\\n" in warning and warning.isascii()
    assert json.loads(raw.text)["output"][0]["content"][0]["text"] == "pong"
