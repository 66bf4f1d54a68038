"""A reasoning + tool round over ``/v1/responses`` with the openai SDK, through real servers, to upstreams
that refuse what the real APIs refuse: an Anthropic upstream that requires the signed thinking block it
minted at the start of the tool-use turn (or thinking off), and a Gemini upstream that requires the
function call's ``thoughtSignature`` back. The second request must keep thinking on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.responses import ResponseCompletedEvent

from asgi_llmroute import build_gateway
from asgi_llmroute.config import parse_config
from tests.agents.fakes import SECRET, FakeAPI
from tests.support.gateway import ANTHROPIC_KEY, OPENAI_KEY, ROUTER_TOKEN
from tests.support.google_servers import SIGNATURE, GoogleUpstream
from tests.support.servers import serve

GEMINI_KEY = "AIza-thinking-e2e-0123456789"
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_secret",
        "description": "Returns the secret.",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    }
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, GoogleUpstream, str]]:
    fake = FakeAPI(anthropic_key=ANTHROPIC_KEY, openai_key=OPENAI_KEY, workdir=str(tmp_path_factory.mktemp("w")))
    google = GoogleUpstream(api_key=GEMINI_KEY)
    with serve(fake) as fake_url, serve(google) as google_url:
        config = parse_config(
            {
                "tokens": [{"name": "alice", "key": ROUTER_TOKEN}],
                "providers": [
                    {"name": "anthropic", "api": "anthropic", "base_url": fake_url, "api_key": ANTHROPIC_KEY},
                    {"name": "gem", "kind": "gemini", "base_url": f"{google_url}/v1beta", "api_key": GEMINI_KEY},
                ],
                "models": [
                    {"name": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5"},
                    {"name": "gemini", "provider": "gem", "model": "gemini-3-pro-preview"},
                ],
            },
            source="test",
        )
        with serve(build_gateway(config)) as url:
            yield fake, google, url


@pytest.fixture
def fake(servers: tuple[FakeAPI, GoogleUpstream, str]) -> FakeAPI:
    servers[0].requests.clear()
    servers[0].violations.clear()
    return servers[0]


@pytest.fixture
def sdk(servers: tuple[FakeAPI, GoogleUpstream, str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{servers[2]}/v1", api_key=ROUTER_TOKEN, max_retries=0, timeout=20) as client:
        yield client


def _create(sdk: openai.OpenAI, stream: bool, **request: Any) -> list[dict[str, Any]]:
    """The output items of one response, as the client gives them back (``model_dump``)."""
    if not stream:
        return [item.model_dump(exclude_none=True) for item in sdk.responses.create(**request).output]
    events = list(sdk.responses.create(stream=True, **request))
    last = events[-1]
    assert isinstance(last, ResponseCompletedEvent), last
    return [item.model_dump(exclude_none=True) for item in last.response.output]


def _tool_round(sdk: openai.OpenAI, model: str, stream: bool, **extra: Any) -> tuple[list[dict[str, Any]], str]:
    user = {"role": "user", "content": "What is the secret? Use the tool."}
    request = {"model": model, "tools": TOOLS, "reasoning": {"effort": "low"}, **extra}
    output = _create(sdk, stream, input=[user], **request)
    call = next(item for item in output if item["type"] == "function_call")
    result = {"type": "function_call_output", "call_id": call["call_id"], "output": SECRET}
    final = _create(sdk, stream, input=[user, *output, result], **request)
    texts = [part["text"] for item in final if item["type"] == "message" for part in item["content"]]
    return output, "".join(texts)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_thinking_stays_on_across_the_tool_round(sdk: openai.OpenAI, fake: FakeAPI, stream: bool) -> None:
    output, text = _tool_round(sdk, "claude", stream, include=["reasoning.encrypted_content"])
    assert not fake.violations, fake.violations
    assert text == f"RESULT: {SECRET}"
    reasoning = output[0]
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"].startswith("llmr1:")
    first, second = (body for path, body in fake.requests if path == "/v1/messages")
    assert first["thinking"]["type"] == "enabled"
    assert second["thinking"] == first["thinking"]  # kept on, not turned off for the tool result turn
    assert second["messages"][1]["content"][0]["type"] == "thinking"  # checked against its signature upstream


def test_encrypted_content_is_there_without_include(sdk: openai.OpenAI, fake: FakeAPI) -> None:
    """Nothing is stored, so the item itself carries it: a client giving the output back keeps thinking."""
    output, text = _tool_round(sdk, "claude", stream=True)
    assert not fake.violations and text == f"RESULT: {SECRET}"
    assert output[0]["encrypted_content"].startswith("llmr1:")
    assert "thinking" in fake.requests[-1][1]


def test_a_reference_to_a_minted_reasoning_item_does_not_fail(sdk: openai.OpenAI, fake: FakeAPI) -> None:
    user = {"role": "user", "content": "What is the secret? Use the tool."}
    request: dict[str, Any] = {"model": "claude", "tools": TOOLS, "reasoning": {"effort": "low"}}
    output = _create(sdk, False, input=[user], **request)
    call = next(item for item in output if item["type"] == "function_call")
    result = {"type": "function_call_output", "call_id": call["call_id"], "output": SECRET}
    reference = {"type": "item_reference", "id": output[0]["id"]}
    final = _create(sdk, False, input=[user, reference, call, result], **request)
    assert not fake.violations, fake.violations
    assert final[-1]["content"][0]["text"] == f"RESULT: {SECRET}"
    assert "thinking" not in fake.requests[-1][1]  # nothing to continue with: thinking off, as documented


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_gemini_thought_signature_survives_the_tool_round(
    sdk: openai.OpenAI, servers: tuple[FakeAPI, GoogleUpstream, str], stream: bool
) -> None:
    google = servers[1]
    google.requests.clear()
    output, text = _tool_round(sdk, "gemini", stream)
    assert text == f"The weather: {SECRET}."  # the upstream refuses a call without its signature
    sent = json.loads(google.requests[-1].body)
    calls = [p for c in sent["contents"] for p in c["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] == SIGNATURE
