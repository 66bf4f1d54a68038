"""Fields catalog providers refuse or ignore, by kind and by model (DeepSeek's reasoner, xAI's reasoning
models, Mistral's closed schema, Ollama's ignored fields), through a gateway to upstreams that check them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from asgi_llmroute.providers import get_kind, make_provider
from asgi_llmroute.secret import Secret
from tests.providers.test_kinds import stack
from tests.support.provider_servers import KindUpstream
from tests.support.servers import serve

KEY = "sk-catalog-SECRET-0123456789"
HI: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[KindUpstream, str]]:
    server = KindUpstream("/v1", ("authorization", f"Bearer {KEY}"))
    with serve(server) as url:
        yield server, url


@pytest.fixture(scope="module")
def gateway(upstream: tuple[KindUpstream, str]) -> Iterator[str]:
    base = f"{upstream[1]}/v1"
    providers = [
        make_provider(name, get_kind(name), base_url=base, api_key=Secret(KEY))
        for name in ("deepseek", "xai", "mistral", "ollama")
    ]
    lenient = make_provider(
        "mistral-lenient", get_kind("mistral"), base_url=base, api_key=Secret(KEY), drop_params=True
    )
    with serve(stack(*providers, lenient)) as url:
        yield url


@pytest.fixture
def seen(upstream: tuple[KindUpstream, str]) -> KindUpstream:
    upstream[0].requests.clear()
    return upstream[0]


def chat(gateway: str, model: str, **fields: Any) -> httpx.Response:
    body = {"model": model, "messages": HI, **fields}
    return httpx.post(f"{gateway}/v1/chat/completions", json=body, headers={"authorization": "Bearer x"}, timeout=10)


def test_deepseek_reasoner_refuses_logprobs_and_ignores_sampling(gateway: str, seen: KindUpstream) -> None:
    refused = chat(gateway, "deepseek/deepseek-reasoner", logprobs=True)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "logprobs"
    assert "kind 'deepseek'" in refused.json()["error"]["message"] and not seen.requests

    ignored = chat(gateway, "deepseek/deepseek-reasoner", temperature=0.2, top_p=0.5, max_tokens=9)
    assert ignored.status_code == 200
    assert ignored.headers["x-llmroute-warning"] == "dropped temperature, top_p: not accepted by kind 'deepseek'"
    assert seen.last.json() == {"model": "deepseek-reasoner", "messages": HI, "max_tokens": 9}

    # The chat model takes them all.
    assert chat(gateway, "deepseek/deepseek-chat", logprobs=True, temperature=0.2).status_code == 200
    assert seen.last.json()["temperature"] == 0.2 and seen.last.json()["logprobs"] is True


def test_xai_reasoning_models_refuse_penalties_and_stop(gateway: str, seen: KindUpstream) -> None:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="x", max_retries=0)
    with client, pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="xai/grok-4", messages=HI, stop=["END"])
    assert info.value.param == "stop" and not seen.requests
    assert chat(gateway, "xai/grok-4", reasoning_effort="high").json()["error"]["param"] == "reasoning_effort"
    assert chat(gateway, "xai/grok-3-mini", presence_penalty=1).json()["error"]["param"] == "presence_penalty"
    assert chat(gateway, "xai/grok-3-mini", reasoning_effort="low").status_code == 200  # grok-3-mini takes it
    assert chat(gateway, "xai/grok-4-fast-non-reasoning", stop=["END"], presence_penalty=1).status_code == 200
    assert seen.last.json()["stop"] == ["END"]


def test_mistral_refuses_fields_outside_its_schema(gateway: str, seen: KindUpstream) -> None:
    refused = chat(gateway, "mistral/mistral-large-latest", seed=7)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "seed"
    dropped = chat(gateway, "mistral-lenient/mistral-large-latest", seed=7, user="u1", random_seed=7)
    assert dropped.status_code == 200 and dropped.headers["x-llmroute-warning"].startswith("dropped seed, user:")
    assert seen.last.json()["random_seed"] == 7 and "seed" not in seen.last.json()


def test_anthropic_clients_of_mistral_lose_only_what_it_would_refuse(gateway: str, seen: KindUpstream) -> None:
    with anthropic.Anthropic(base_url=gateway, api_key="x", max_retries=0) as client:
        raw = client.messages.with_raw_response.create(
            model="mistral/mistral-large-latest", max_tokens=20, messages=HI, metadata={"user_id": "u-42"}
        )
    assert raw.parse().content[0].type == "text"
    assert raw.headers["x-llmroute-warning"] == "dropped user: not accepted by kind 'mistral'"
    assert "user" not in seen.last.json() and seen.last.json()["max_tokens"] == 20


def test_ollama_ignored_fields_are_dropped_with_a_warning_never_refused(gateway: str, seen: KindUpstream) -> None:
    tools: Any = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    reply = chat(gateway, "ollama/llama3.2", tools=tools, tool_choice="required", n=2, temperature=0.1)
    assert reply.status_code == 200
    assert reply.headers["x-llmroute-warning"] == "dropped n, tool_choice: not accepted by kind 'ollama'"
    body = seen.last.json()
    assert "tool_choice" not in body and "n" not in body and body["temperature"] == 0.1 and body["tools"] == tools


def test_the_output_limit_is_sent_in_the_field_the_kind_reads(gateway: str, seen: KindUpstream) -> None:
    assert chat(gateway, "mistral/mistral-large-latest", max_completion_tokens=33).status_code == 200
    assert seen.last.json()["max_tokens"] == 33 and "max_completion_tokens" not in seen.last.json()
    assert chat(gateway, "xai/grok-3", max_completion_tokens=33).status_code == 200  # xAI reads it as it is
    assert seen.last.json()["max_completion_tokens"] == 33
    with anthropic.Anthropic(base_url=gateway, api_key="x", max_retries=0) as client:
        client.messages.create(model="ollama/llama3.2", max_tokens=44, messages=HI)
    assert seen.last.json()["max_tokens"] == 44 and "max_completion_tokens" not in seen.last.json()
