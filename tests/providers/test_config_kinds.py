"""``[[providers]] kind = ...`` in the config: defaults from the kind, clear start-up errors, the whole
gateway (auth, resolution, retries, translation) in front of kind-checking upstreams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from asgi_llmroute import ConfigError, build_gateway, parse_config
from asgi_llmroute.assemble import provider_records
from tests.support.provider_servers import KindUpstream
from tests.support.servers import serve

TOKEN = "sk-router-kinds-0123456789abcdef"
GROQ_KEY = "gsk-config-SECRET-0123456789"
AZURE_KEY = "azure-config-SECRET-0123456789"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "providers" / "azure-openai"


def config(providers: list[dict[str, Any]], **extra: Any) -> Any:
    data: dict[str, Any] = {"tokens": [{"name": "t", "key": TOKEN}], "providers": providers, **extra}
    return parse_config(data, source="test.toml")


def test_kind_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", GROQ_KEY)
    cfg = config([{"name": "groq", "kind": "groq"}, {"name": "local", "kind": "ollama"}])
    groq, local = provider_records(cfg)
    assert groq.base_url == "https://api.groq.com/openai/v1" and groq.kind.name == "groq" and groq.api == "openai"
    assert groq.api_key is not None and groq.api_key.reveal() == GROQ_KEY
    assert local.base_url == "http://localhost:11434/v1" and local.api_key is None


def test_litellm_names_select_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config([{"name": "v", "kind": "hosted_vllm"}, {"name": "t", "kind": "together_ai", "api_key": "k"}])
    vllm, together = provider_records(cfg)
    assert vllm.kind.name == "vllm" and together.kind.name == "together"


def test_missing_key_variable_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        config([{"name": "fast", "kind": "groq"}])
    message = str(info.value)
    assert "\n" not in message and "GROQ_API_KEY" in message and "providers[0] (fast)" in message


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"providers\[0\]: kind: unknown provider kind 'grok' \(known: .*groq"):
        config([{"name": "x", "kind": "grok", "api_key": "k"}])


def test_kind_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown key.*api_version"):
        config([{"name": "x", "kind": "groq", "api_key": "k", "api_version": "1"}])
    with pytest.raises(ConfigError, match=r"unknown key\(s\): region"):
        config([{"name": "x", "api": "openai", "base_url": "http://h/v1", "region": "eu"}])
    with pytest.raises(ConfigError, match="needs a base_url.*AZURE_OPENAI_ENDPOINT"):
        config([{"name": "az", "kind": "azure", "api_key": "k"}])
    with pytest.raises(ConfigError, match="base_url: required"):
        config([{"name": "x", "api": "openai"}])
    with pytest.raises(ConfigError, match="speaks the 'openai' API"):
        config([{"name": "x", "kind": "groq", "api": "anthropic", "api_key": "k"}])


def test_api_providers_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-env-must-not-be-used")
    (p,) = provider_records(config([{"name": "o", "api": "openai", "base_url": "http://h/v1"}]))
    assert p.api_key is None and p.kind.name == "openai" and not p.responses_api


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, tuple[KindUpstream, str]]]:
    groq = KindUpstream("/openai/v1", ("authorization", f"Bearer {GROQ_KEY}"))
    azure = KindUpstream("/openai/deployments/chat-prod", ("api-key", AZURE_KEY), query={"api-version": "2024-10-21"})
    with serve(groq) as groq_url, serve(azure) as azure_url:
        yield {"groq": (groq, groq_url), "azure": (azure, azure_url)}


@pytest.fixture(scope="module")
def gateway(upstreams: dict[str, tuple[KindUpstream, str]]) -> Iterator[str]:
    providers: list[dict[str, Any]] = [
        {"name": "groq", "kind": "groq", "base_url": f"{upstreams['groq'][1]}/openai/v1", "api_key": GROQ_KEY},
        {"name": "az", "kind": "azure", "base_url": upstreams["azure"][1], "api_key": AZURE_KEY, "max_retries": 1},
    ]
    models = [{"name": "fast", "provider": "groq", "model": "llama-3.3-70b-versatile"}]
    cfg = config(providers, models=models, routing={"max_retry_after": 1})
    with serve(build_gateway(cfg)) as url:
        yield url


def test_models_list_and_prefix_routing(gateway: str, upstreams: dict[str, tuple[KindUpstream, str]]) -> None:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=TOKEN, max_retries=0)
    with client:
        assert [(m.id, m.owned_by) for m in client.models.list()] == [("fast", "groq")]
        answer = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "hello from the kind"
        assert upstreams["groq"][0].last.json()["model"] == "llama-3.3-70b-versatile"
        client.chat.completions.create(model="az/chat-prod", messages=[{"role": "user", "content": "hi"}])
        assert upstreams["azure"][0].last.path == "/openai/deployments/chat-prod/chat/completions"


def test_anthropic_client_to_azure_stream(gateway: str) -> None:
    client = anthropic.Anthropic(base_url=gateway, api_key=TOKEN, max_retries=0)
    with (
        client,
        client.messages.stream(
            model="az/chat-prod", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        text = "".join(stream.text_stream)
    assert text.strip() == "hello from the kind"


def test_azure_429_with_retry_after_ms_is_retried(gateway: str, upstreams: dict[str, tuple[KindUpstream, str]]) -> None:
    azure = upstreams["azure"][0]
    head = json.loads((FIXTURES / "error_429_rate_limit.headers.json").read_text())
    azure.reply_status, azure.reply_headers = 429, {k: v for k, v in head["headers"].items() if k != "Content-Type"}
    azure.reply_body = json.loads((FIXTURES / "error_429_rate_limit.json").read_text())
    azure.requests.clear()
    try:
        response = httpx.post(
            f"{gateway}/v1/chat/completions",
            headers={"authorization": f"Bearer {TOKEN}"},
            json={"model": "az/chat-prod", "messages": [{"role": "user", "content": "hi"}]},
        )
    finally:
        azure.reply_status = None
    # retry-after-ms (20 ms) is what the retry layer waits; then the one retry, then the 429 as it came.
    assert len(azure.requests) == 2 and response.status_code == 429
    assert response.headers["retry-after-ms"] == "20" and response.json()["error"]["code"] == "429"


def test_a_kind_name_routes_to_a_provider_of_that_kind() -> None:
    from asgi_llmroute.assemble import routes
    from asgi_llmroute.providers.routing import RouteTable

    cfg = config([{"name": "fast-llms", "kind": "groq", "api_key": "k"}, {"name": "local", "kind": "hosted_vllm"}])
    providers = provider_records(cfg)
    table = RouteTable(providers, routes(cfg, providers))
    for model, provider, upstream in [
        ("groq/llama-3.3-70b-versatile", "fast-llms", "llama-3.3-70b-versatile"),
        ("fast-llms/m", "fast-llms", "m"),
        ("hosted_vllm/Qwen/Qwen3-8B", "local", "Qwen/Qwen3-8B"),
        ("vllm/m", "local", "m"),
    ]:
        route = table.resolve(model)
        assert route is not None and route.deployments[0].provider.name == provider
        assert route.deployments[0].model == upstream
    assert table.resolve("mistral/x") is None
