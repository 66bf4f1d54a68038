"""Bedrock end to end: the gateway in uvicorn in front of the local Bedrock (which recomputes every
SigV4 signature and streams real event-stream frames), driven by the official openai and anthropic
SDKs: text, streams, a tool round trip with reasoning continuation, faults."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from starlette.types import ASGIApp

from asgi_llmroute import Forwarder, ProviderResolverMiddleware, RouteTable, TranslationMiddleware
from asgi_llmroute.middleware.retry import Backoff, RetryMiddleware
from asgi_llmroute.providers import Deployment, Provider, Route, get_kind, make_provider
from asgi_llmroute.providers.balance import Balancer
from asgi_llmroute.secret import Secret
from tests.support.fake_bedrock import ACCESS_KEY, API_KEY, REGION, SECRET_KEY, FakeBedrock
from tests.support.servers import serve, with_forwarder_lifespan

pytest.importorskip("botocore")

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a place",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]


USER: Any = [{"role": "user", "content": "x"}]


def bedrock_provider(url: str, name: str = "aws", secret: str = SECRET_KEY, **options: str) -> Provider:
    opts = {"region": REGION, "aws_access_key_id": ACCESS_KEY, **options}
    return make_provider(name, get_kind("bedrock"), base_url=url, api_key=Secret(secret), options=tuple(opts.items()))


def stack(*providers: Provider, models: dict[str, tuple[str, str]]) -> ASGIApp:
    forwarder = Forwarder()
    by_name = {p.name: p for p in providers}
    routes = [Route(name, (Deployment(by_name[p], m),)) for name, (p, m) in models.items()]
    table = RouteTable(providers, routes)
    balancer = Balancer()
    retry = RetryMiddleware(
        TranslationMiddleware(forwarder), balancer=balancer, routes=table, backoff=Backoff(base=0.01, max=0.02)
    )
    app = ProviderResolverMiddleware(retry, routes=table, balancer=balancer)

    return with_forwarder_lifespan(app, forwarder)


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[FakeBedrock, str]]:
    fake = FakeBedrock()
    with serve(fake) as upstream:
        providers = (
            bedrock_provider(upstream),
            bedrock_provider(upstream, "aws-converse", anthropic_api="converse"),
            bedrock_provider(upstream, "aws-wrong", secret="not-the-secret"),
            make_provider(
                "aws-key",
                get_kind("bedrock"),
                base_url=upstream,
                api_key=Secret(API_KEY),
                options=(("region", REGION),),
            ),
        )
        models = {
            "claude": ("aws", CLAUDE),
            "claude-converse": ("aws-converse", CLAUDE),
            "nova": ("aws", NOVA),
            "nova-key": ("aws-key", NOVA),
            "wrong": ("aws-wrong", CLAUDE),
            "throttled": ("aws", "throttle-model"),
            "malformed": ("aws", "malformed-model"),
            "midstream": ("aws", "midstream-model"),
            "claude-midstream": ("aws", "us.anthropic.claude-midstream-v1:0"),
            "invalid": ("aws", "invalid-model"),
            "arn": ("aws", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"),
        }
        with serve(stack(*providers, models=models)) as gateway:
            yield fake, gateway
            for client in _CLIENTS.values():
                client.close()
            _CLIENTS.clear()


_CLIENTS: dict[str, Any] = {}


def oai(url: str) -> openai.OpenAI:
    key = "openai" + url
    if key not in _CLIENTS:
        _CLIENTS[key] = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    return _CLIENTS[key]  # type: ignore[no-any-return]


def ant(url: str) -> anthropic.Anthropic:
    key = "anthropic" + url
    if key not in _CLIENTS:
        _CLIENTS[key] = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)
    return _CLIENTS[key]  # type: ignore[no-any-return]


# -- OpenAI clients (Converse) -----------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude", "nova", "nova-key", "arn"])
def test_openai_text(env: tuple[FakeBedrock, str], model: str) -> None:
    fake, url = env
    answer = oai(url).chat.completions.create(model=model, messages=[{"role": "user", "content": "Capital?"}])
    assert answer.choices[0].message.content is not None and answer.choices[0].message.content.startswith("Paris")
    assert answer.usage is not None and answer.usage.prompt_tokens == 412 + 1830
    seen = fake.requests[-1]
    assert seen.operation == "converse"
    assert seen.auth == ("bearer" if model == "nova-key" else "sigv4")
    assert "model" not in seen.body


def test_openai_stream(env: tuple[FakeBedrock, str]) -> None:
    fake, url = env
    stream = oai(url).chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Capital?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris is the capital of France. Its café culture ☕ dates back to the 17th century."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 23
    assert fake.requests[-1].operation == "converse-stream"


def test_openai_tool_round_trip_with_reasoning(env: tuple[FakeBedrock, str]) -> None:
    fake, url = env
    client = oai(url)
    messages: list[Any] = [{"role": "user", "content": "Weather and time in Paris?"}]
    first = client.chat.completions.create(model="claude", messages=messages, tools=TOOLS, reasoning_effort="low")
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    calls = message.tool_calls or []
    assert [c.function.name for c in calls if c.type == "function"] == ["get_weather", "get_time"]
    echoed = message.model_dump(exclude_none=True)
    assert echoed["thinking_blocks"][0]["signature"]
    messages.append(echoed)  # the assistant turn with its signed thinking, as LiteLLM-style clients echo it
    messages += [{"role": "tool", "tool_call_id": c.id, "content": "sunny, 14:05"} for c in calls]
    second = client.chat.completions.create(model="claude", messages=messages, tools=TOOLS, reasoning_effort="low")
    assert second.choices[0].message.content is not None and "Paris" in second.choices[0].message.content
    body = fake.requests[-1].body  # the fake refuses a thinking tool-use turn without its signature
    assert body["additionalModelRequestFields"]["thinking"]["type"] == "enabled"
    assert body["messages"][1]["content"][0]["reasoningContent"]["reasoningText"]["signature"]
    assert [b["toolResult"]["toolUseId"] for b in body["messages"][2]["content"]] == [c.id for c in calls]


def test_openai_tool_stream(env: tuple[FakeBedrock, str]) -> None:
    _, url = env
    stream = oai(url).chat.completions.create(
        model="claude",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=TOOLS,
        stream=True,
    )
    arguments: dict[int, str] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or ():
            arguments[call.index] = arguments.get(call.index, "") + (
                call.function.arguments or "" if call.function else ""
            )
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [json.loads(v) for v in arguments.values()] == [{"location": "Paris, France"}, {"timezone": "Europe/Paris"}]


# -- Anthropic clients (InvokeModel for Claude, Converse otherwise) ----------------------------


def test_anthropic_invoke_model(env: tuple[FakeBedrock, str]) -> None:
    fake, url = env
    client = ant(url)
    message = client.messages.create(
        model="claude",
        max_tokens=100,
        messages=[{"role": "user", "content": "Capital?"}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    assert message.id == "msg_bdrk_fixture_text_01"  # relayed as Bedrock sent it
    seen = fake.requests[-1]
    assert seen.operation == "invoke"
    assert seen.body["anthropic_version"] == "bedrock-2023-05-31"
    assert seen.body["anthropic_beta"] == ["context-1m-2025-08-07"]
    with client.messages.stream(model="claude", max_tokens=100, messages=[{"role": "user", "content": "Q"}]) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text.startswith("Paris")
    assert final.usage.output_tokens == 23
    assert fake.requests[-1].operation == "invoke-with-response-stream"


@pytest.mark.parametrize("model", ["claude-converse", "nova"])
def test_anthropic_converse_tool_stream(env: tuple[FakeBedrock, str], model: str) -> None:
    fake, url = env
    tools: Any = [{"name": n, "input_schema": {"type": "object"}} for n in ("get_weather", "get_time")]
    with ant(url).messages.stream(
        model=model, max_tokens=2000, tools=tools, messages=[{"role": "user", "content": "Weather?"}]
    ) as stream:
        final = stream.get_final_message()
    assert fake.requests[-1].operation == "converse-stream"
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert final.stop_reason == "tool_use"
    inputs = [b.input for b in final.content if b.type == "tool_use"]
    assert inputs == [{"location": "Paris, France"}, {"timezone": "Europe/Paris"}]


# -- faults ------------------------------------------------------------------------------------


def test_wrong_credentials(env: tuple[FakeBedrock, str], caplog: pytest.LogCaptureFixture) -> None:
    _, url = env
    caplog.set_level(logging.INFO)
    with pytest.raises(openai.PermissionDeniedError) as info:
        oai(url).chat.completions.create(model="wrong", messages=[{"role": "user", "content": "x"}])
    assert "aws-wrong" in str(info.value) and "InvalidSignatureException" in str(info.value)
    with pytest.raises(anthropic.PermissionDeniedError) as ainfo:
        ant(url).messages.create(model="wrong", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "aws-wrong" in str(ainfo.value)
    for secret in ("not-the-secret", SECRET_KEY):
        assert secret not in str(info.value) and secret not in caplog.text
    assert "request id" in caplog.text


def test_throttling_is_retried_then_a_429_with_retry_after(env: tuple[FakeBedrock, str]) -> None:
    fake, url = env
    fake.throttle_times, fake._throttled = 1, 0
    answer = oai(url).chat.completions.create(model="throttled", messages=[{"role": "user", "content": "x"}])
    assert answer.choices[0].message.content
    fake.throttle_times, fake._throttled = 100, 0
    with pytest.raises(openai.RateLimitError) as info:
        oai(url).chat.completions.create(model="throttled", messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers["retry-after"] == "1"
    assert int(info.value.response.headers["x-llmroute-attempts"]) > 1
    with pytest.raises(anthropic.RateLimitError):
        ant(url).messages.create(model="throttled", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    fake.throttle_times = 0


def test_malformed_frame_and_exception_frames_are_error_events(env: tuple[FakeBedrock, str]) -> None:
    _, url = env
    with pytest.raises(openai.APIError, match="checksum"):
        list(
            oai(url).chat.completions.create(
                model="malformed", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    with pytest.raises(openai.APIError, match="error occurred while streaming"):
        list(
            oai(url).chat.completions.create(
                model="midstream", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        ant(url).messages.stream(
            model="claude-midstream", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        ) as s,
    ):
        s.get_final_message()
    assert "Too many requests" in str(info.value)  # Claude's InvokeModel stream throttled mid-way


def test_validation_errors_reach_the_client_in_its_format(env: tuple[FakeBedrock, str]) -> None:
    _, url = env
    with pytest.raises(openai.BadRequestError) as info:
        oai(url).chat.completions.create(model="invalid", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "ValidationException" and "model identifier is invalid" in str(info.value)
    with pytest.raises(anthropic.BadRequestError) as ainfo:
        ant(url).messages.create(model="invalid", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert ainfo.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(openai.BadRequestError, match="URLs are not supported"):  # refused by the gateway itself
        oai(url).chat.completions.create(model="nova", messages=[{"role": "user", "content": [image]}])  # type: ignore[misc,list-item]


def test_botocore_is_not_imported_without_a_bedrock_provider(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from asgi_llmroute import build_gateway, parse_config\n"
        "config = parse_config({'providers': [{'name': 'o', 'api': 'openai', 'base_url': 'http://127.0.0.1:9/v1'}],"
        " 'models': [{'name': 'm', 'provider': 'o', 'model': 'gpt'}], 'tokens': [{'name': 't', 'key': 'k' * 32}]})\n"
        "build_gateway(config)\n"
        "import asgi_llmroute.providers, asgi_llmroute.formats\n"
        "assert 'botocore' not in sys.modules, 'botocore imported'\n"
        "assert 'boto3' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
