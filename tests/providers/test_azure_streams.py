"""Azure OpenAI streams as Azure sends them: content-filter annotation frames (empty ``choices``, choices
without ``delta``), ``prompt_filter_results``, ``content_filter`` endings. Clients of every format get
valid streams through the whole gateway, driven by the official openai and anthropic SDKs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import openai
import pytest
from starlette.types import Receive, Scope, Send

from asgi_llmroute import build_gateway
from asgi_llmroute.config import parse_config
from tests.support.servers import Recorded, read_body, serve

AZURE_KEY = "azure-stream-SECRET-0123456789"
TOKEN = "sk-router-azure-streams-0123456789"
DEPLOYMENT = "gpt4o-prod"
SAFE = {k: {"filtered": False, "severity": "safe"} for k in ("hate", "self_harm", "sexual", "violence")}


def frame(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def azure_stream(
    words: list[str], *, tool: str | None = None, ending: str = "stop", usage: bool = False
) -> list[bytes]:
    """The frames of one Azure chat stream (default content filtering, plus asynchronous-filter annotations)."""
    base = {
        "id": "chatcmpl-az1",
        "object": "chat.completion.chunk",
        "created": 1733000000,
        "model": "gpt-4o-2024-11-20",
    }
    blank = {"id": "", "object": "", "created": 0, "model": ""}  # annotation frames carry no id or model

    def choice(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None, **extra}
        if delta is not None:
            out["delta"] = delta
        return out

    frames = [
        frame({**blank, "choices": [], "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": SAFE}]})
    ]
    frames.append(frame({**base, "choices": [choice({"role": "assistant", "content": ""}, content_filter_results={})]}))
    if tool:
        call = {"index": 0, "id": "call_az_1", "type": "function", "function": {"name": tool, "arguments": ""}}
        frames.append(frame({**base, "choices": [choice({"tool_calls": [call]}, content_filter_results={})]}))
        rest = {"index": 0, "function": {"arguments": '{"city": "Paris"}'}}
        frames.append(frame({**base, "choices": [choice({"tool_calls": [rest]}, content_filter_results={})]}))
    for i, word in enumerate(words):
        frames.append(frame({**base, "choices": [choice({"content": word}, content_filter_results=SAFE)]}))
        if i == 0:  # an asynchronous-filter annotation: a choice with offsets and results, no delta
            offsets = {"check_offset": 0, "start_offset": 0, "end_offset": len(word)}
            annotation = choice(None, content_filter_offsets=offsets, content_filter_results=SAFE)
            frames.append(frame({**blank, "choices": [annotation]}))
    filtered = {**SAFE, "violence": {"filtered": True, "severity": "medium"}} if ending == "content_filter" else SAFE
    frames.append(
        frame({**base, "choices": [choice({}, "tool_calls" if tool else ending, content_filter_results=filtered)]})
    )
    if usage:
        frames.append(
            frame({**base, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})
        )
    frames.append(b"data: [DONE]\n\n")
    return frames


@dataclass
class AzureStreams:
    """An Azure deployment endpoint that answers every stream with Azure's frames."""

    ending: str = "stop"
    requests: list[Recorded] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Recorded(scope["method"], scope["path"], scope["query_string"].decode(), headers, body))
        path_ok = scope["path"] == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
        if headers.get("api-key") != AZURE_KEY or not path_ok or b"api-version=" not in scope["query_string"]:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send(
                {"type": "http.response.body", "body": b'{"error":{"code":"404","message":"Resource not found"}}'}
            )
            return
        request = json.loads(body)
        assert request["stream"] is True
        tool = request["tools"][0]["function"]["name"] if request.get("tools") else None
        usage = bool((request.get("stream_options") or {}).get("include_usage"))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for chunk in azure_stream(["Hello", " from", " Azure"], tool=tool, ending=self.ending, usage=usage):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def azure() -> Iterator[tuple[AzureStreams, str]]:
    upstream = AzureStreams()
    with serve(upstream) as url:
        yield upstream, url


@pytest.fixture(scope="module")
def gateway(azure: tuple[AzureStreams, str]) -> Iterator[str]:
    config = parse_config(
        {
            "tokens": [{"name": "t", "key": TOKEN}],
            "providers": [{"name": "az", "kind": "azure", "base_url": azure[1], "api_key": AZURE_KEY}],
            "models": [{"name": "gpt-4o", "provider": "az", "model": DEPLOYMENT}],
        }
    )
    with serve(build_gateway(config)) as url:
        yield url


@pytest.fixture
def reset(azure: tuple[AzureStreams, str]) -> Iterator[AzureStreams]:
    azure[0].ending = "stop"
    yield azure[0]
    azure[0].ending = "stop"


TOOLS_OA: Any = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
TOOLS_AN: Any = [{"name": "weather", "input_schema": {"type": "object"}}]


def test_openai_clients_get_azures_frames_relayed(gateway: str, reset: AzureStreams) -> None:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=TOKEN, max_retries=0) as client:
        chunks = list(
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].delta) == (
            "Hello from Azure"
        )
        assert not chunks[0].choices  # the prompt-filter frame reaches the client as Azure sent it
        assert chunks[0].model_extra and chunks[0].model_extra["prompt_filter_results"][0]["prompt_index"] == 0
        assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
        assert all(c.usage is None for c in chunks)  # the usage frame the gateway asked for is not passed on

        chunks = list(
            client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
                tools=TOOLS_OA,
            )
        )
        calls = [tc for c in chunks if c.choices and c.choices[0].delta for tc in c.choices[0].delta.tool_calls or []]
        assert calls[0].function and calls[0].function.name == "weather"
        assert "".join(tc.function.arguments or "" for tc in calls if tc.function) == '{"city": "Paris"}'
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 12
    assert reset.requests[-1].json()["stream_options"] == {"include_usage": True}


def test_anthropic_clients_get_a_valid_message_stream(gateway: str, reset: AzureStreams) -> None:
    with anthropic.Anthropic(base_url=gateway, api_key=TOKEN, max_retries=0) as client:
        with client.messages.stream(
            model="gpt-4o", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            events = list(stream)
            message = stream.get_final_message()
        assert [e.type for e in events][:1] == ["message_start"]
        start = events[0]
        assert start.type == "message_start" and start.message.id == "chatcmpl-az1"  # not the annotation's ""
        assert message.content[0].type == "text" and message.content[0].text == "Hello from Azure"
        assert message.stop_reason == "end_turn" and message.model == "gpt-4o"
        assert message.usage.output_tokens == 3 and message.usage.input_tokens == 9

        with client.messages.stream(
            model="gpt-4o", max_tokens=50, messages=[{"role": "user", "content": "weather?"}], tools=TOOLS_AN
        ) as stream:
            message = stream.get_final_message()
        tool_use = [b for b in message.content if b.type == "tool_use"]
        assert tool_use and tool_use[0].name == "weather" and tool_use[0].input == {"city": "Paris"}
        assert message.stop_reason == "tool_use"


def test_a_content_filter_ending_reaches_every_client_format(gateway: str, reset: AzureStreams) -> None:
    reset.ending = "content_filter"
    with anthropic.Anthropic(base_url=gateway, api_key=TOKEN, max_retries=0) as client:
        with client.messages.stream(
            model="gpt-4o", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = stream.get_final_message()
        assert message.stop_reason == "refusal"
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=TOKEN, max_retries=0) as oa:
        with oa.responses.stream(model="gpt-4o", input="hi") as events:
            seen = list(events)
        assert seen[0].type == "response.created" and seen[-1].type == "response.incomplete"
        final = seen[-1].response
        assert final.status == "incomplete" and final.output_text == "Hello from Azure"
        assert final.incomplete_details is not None and final.incomplete_details.reason == "content_filter"
        assert final.created_at > 0  # from the first real frame, not the annotation's created 0


def test_the_raw_anthropic_stream_is_well_formed(gateway: str, reset: AzureStreams) -> None:
    body = {"model": "gpt-4o", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": TOKEN, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", f"{gateway}/v1/messages", json=body, headers=headers, timeout=10) as response:
        text = "".join(response.iter_text())
    events = [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert "prompt_filter_results" not in text and "content_filter_offsets" not in text
    assert events.count("content_block_start") == events.count("content_block_stop") == 1
