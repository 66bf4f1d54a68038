"""LiteLLM in front of the gateway and behind it, against the real LiteLLM proxy and SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from asgi_llmroute import build_gateway
from asgi_llmroute.config import parse_config
from tests.support.gateway import OPENAI_KEY, ROUTER_TOKEN, gateway_config
from tests.support.servers import Upstream, json_reply, serve, sse_reply

from .proxy import LITELLM_MASTER_KEY, litellm_proxy, run_litellm_sdk

FIXTURES = Path(__file__).parent.parent / "fixtures" / "protocols"
COMPLETION = json.loads((FIXTURES / "openai/completion_text.json").read_text())
MESSAGE = json.loads((FIXTURES / "anthropic/message_text.json").read_text())
EMBEDDING = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.25, 0.5]}], "model": "m"}


# -- LiteLLM in front: its proxy and SDK call us as an OpenAI-compatible endpoint -----------------


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Upstream, Upstream, str, str]]:
    oa, an = Upstream(), Upstream()
    with serve(oa) as oa_url, serve(an) as an_url, serve(build_gateway(gateway_config(oa_url, an_url))) as gw:
        config = {
            "model_list": [
                {
                    "model_name": "gw-gpt",
                    "litellm_params": {"model": "openai/gpt-test", "api_base": f"{gw}/v1", "api_key": ROUTER_TOKEN},
                },
                {
                    "model_name": "gw-claude",
                    "litellm_params": {"model": "openai/claude", "api_base": f"{gw}/v1", "api_key": ROUTER_TOKEN},
                },
            ],
            "general_settings": {"master_key": LITELLM_MASTER_KEY},
        }
        with litellm_proxy(config, tmp_path_factory.mktemp("litellm-front")) as proxy:
            yield oa, an, gw, proxy


def test_litellm_proxy_in_front_chat(front: tuple[Upstream, Upstream, str, str]) -> None:
    oa, _, _, proxy = front
    oa.reply = json_reply(COMPLETION)
    with openai.OpenAI(base_url=f"{proxy}/v1", api_key=LITELLM_MASTER_KEY, max_retries=0) as client:
        reply = client.chat.completions.create(model="gw-gpt", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == COMPLETION["choices"][0]["message"]["content"]
    assert oa.last.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert ROUTER_TOKEN not in json.dumps(oa.last.headers)


def test_litellm_proxy_in_front_stream_translated_to_anthropic(front: tuple[Upstream, Upstream, str, str]) -> None:
    _, an, _, proxy = front
    an.reply = sse_reply([(FIXTURES / "anthropic/stream_text.sse").read_bytes()])
    with openai.OpenAI(base_url=f"{proxy}/v1", api_key=LITELLM_MASTER_KEY, max_retries=0) as client:
        stream = client.chat.completions.create(
            model="gw-claude", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello! How can I help you today?"
    assert an.last.path == "/v1/messages"


def test_litellm_proxy_in_front_embeddings(front: tuple[Upstream, Upstream, str, str]) -> None:
    oa, _, _, proxy = front
    oa.reply = json_reply(EMBEDDING)
    with openai.OpenAI(base_url=f"{proxy}/v1", api_key=LITELLM_MASTER_KEY, max_retries=0) as client:
        result = client.embeddings.create(model="gw-gpt", input="hi")
    assert result.data[0].embedding == [0.25, 0.5]
    assert oa.last.path == "/v1/embeddings"


def test_litellm_proxy_health_check_reaches_us(front: tuple[Upstream, Upstream, str, str]) -> None:
    oa, an, _, proxy = front
    oa.reply = json_reply(COMPLETION)
    an.reply = json_reply(MESSAGE)
    response = httpx.get(f"{proxy}/health", headers={"authorization": f"Bearer {LITELLM_MASTER_KEY}"}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["healthy_count"] == 2, body
    assert body["unhealthy_count"] == 0, body


def test_litellm_sdk_in_front(front: tuple[Upstream, Upstream, str, str]) -> None:
    oa, _, gw, _ = front
    oa.reply = json_reply(COMPLETION)
    result = run_litellm_sdk(
        f"""
import json, litellm
r = litellm.completion(model="openai/gpt-test", api_base="{gw}/v1", api_key="{ROUTER_TOKEN}",
                       messages=[{{"role": "user", "content": "hi"}}])
chunks = litellm.completion(model="openai/gpt-test", api_base="{gw}/v1", api_key="{ROUTER_TOKEN}",
                            messages=[{{"role": "user", "content": "hi"}}], stream=True)
print(json.dumps({{"content": r.choices[0].message.content, "streamed": sum(1 for _ in chunks) > 0}}))
"""
    )
    assert result["content"] == COMPLETION["choices"][0]["message"]["content"]


# -- LiteLLM behind: a provider with api = "openai" pointing at a LiteLLM proxy -------------------


@pytest.fixture(scope="module")
def behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = {
        "model_list": [
            {
                "model_name": "mock-gpt",
                "litellm_params": {"model": "openai/gpt-4o", "mock_response": "Hello from LiteLLM"},
            },
        ],
        "general_settings": {"master_key": LITELLM_MASTER_KEY},
    }
    with litellm_proxy(config, tmp_path_factory.mktemp("litellm-behind")) as proxy:
        gateway = build_gateway(
            parse_config(
                {
                    "tokens": [{"name": "t", "key": ROUTER_TOKEN}],
                    "providers": [
                        {"name": "litellm", "api": "openai", "base_url": f"{proxy}/v1", "api_key": LITELLM_MASTER_KEY}
                    ],
                    "models": [{"name": "via-litellm", "provider": "litellm", "model": "mock-gpt"}],
                }
            )
        )
        with serve(gateway) as url:
            yield url


def test_litellm_behind_chat_and_headers(behind: str) -> None:
    with openai.OpenAI(base_url=f"{behind}/v1", api_key=ROUTER_TOKEN, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="via-litellm", messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.parse().choices[0].message.content == "Hello from LiteLLM"
        assert any(h.lower().startswith("x-litellm-") for h in raw.headers), dict(raw.headers)
        stream = client.chat.completions.create(
            model="via-litellm", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello from LiteLLM"


def test_litellm_behind_anthropic_client(behind: str) -> None:
    with anthropic.Anthropic(base_url=behind, api_key=ROUTER_TOKEN, max_retries=0) as client:
        message = client.messages.create(
            model="via-litellm", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].text == "Hello from LiteLLM"  # type: ignore[union-attr]
        with client.messages.stream(
            model="via-litellm", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            assert s.get_final_text() == "Hello from LiteLLM"


def test_litellm_behind_error_bodies_are_relayed(behind: str) -> None:
    response = httpx.post(
        f"{behind}/v1/chat/completions",
        headers={"authorization": f"Bearer {ROUTER_TOKEN}"},
        json={"model": "litellm/no-such-model", "messages": [{"role": "user", "content": "hi"}]},
        timeout=60,
    )
    assert response.status_code >= 400
    body = response.json()
    assert "error" in body and body["error"]["message"]
    assert LITELLM_MASTER_KEY not in response.text


def test_litellm_behind_models_passthrough(behind: str) -> None:
    with openai.OpenAI(base_url=f"{behind}/v1", api_key=ROUTER_TOKEN, max_retries=0) as client:
        assert [m.id for m in client.models.list().data] == ["via-litellm"]


def test_litellm_proxy_in_front_responses_api(front: tuple[Upstream, Upstream, str, str]) -> None:
    oa, _, _, proxy = front
    oa.reply = json_reply(COMPLETION)
    with openai.OpenAI(base_url=f"{proxy}/v1", api_key=LITELLM_MASTER_KEY, max_retries=0) as client:
        response = client.responses.create(model="gw-gpt", input="hi")
    assert response.output_text == COMPLETION["choices"][0]["message"]["content"]
    assert oa.last.path == "/v1/chat/completions"  # the gateway translated Responses for a chat provider


def test_litellm_sdk_models_and_responses(front: tuple[Upstream, Upstream, str, str]) -> None:
    oa, _, gw, _ = front
    oa.reply = json_reply(COMPLETION)
    result = run_litellm_sdk(
        f"""
import json, litellm
models = litellm.get_valid_models(check_provider_endpoint=True, custom_llm_provider="openai",
                                  api_base="{gw}/v1", api_key="{ROUTER_TOKEN}")
r = litellm.responses(model="openai/gpt-test", input="hi", api_base="{gw}/v1", api_key="{ROUTER_TOKEN}")
print(json.dumps({{"models": models, "text": r.output[0].content[0].text}}))
"""
    )
    assert sorted(m.removeprefix("openai/") for m in result["models"]) == ["claude", "gpt-test"]
    assert result["text"] == COMPLETION["choices"][0]["message"]["content"]
