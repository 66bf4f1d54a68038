"""Provider kinds in the encrypted store: the admin API and the CLI accept kinds, options and the
per-provider settings, and the gateway serves them against kind-checking upstreams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from asgi_llmroute import build_gateway
from asgi_llmroute.config import GatewayConfig
from asgi_llmroute.providers.records import ProviderSpec
from asgi_llmroute.providers.store import ProviderStore
from tests.providers.support import ADMIN_TOKEN, ROUTER_TOKEN, SECRET, store_config, write_config
from tests.providers.test_cli import llmroute
from tests.support.provider_servers import KindUpstream
from tests.support.servers import serve

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AZURE_KEY = "azure-stored-SECRET-0123456789"
GROQ_KEY = "gsk-stored-SECRET-0123456789"


@pytest.fixture(scope="module")
def azure() -> Iterator[tuple[KindUpstream, str]]:
    upstream = KindUpstream("/openai/v1", ("api-key", AZURE_KEY), forbidden=("authorization",))
    with serve(upstream) as url:
        yield upstream, url


@pytest.fixture
def config(tmp_path: Path) -> GatewayConfig:
    return store_config(tmp_path)


def test_a_kind_record_round_trips_through_the_store(config: GatewayConfig, tmp_path: Path) -> None:
    spec = ProviderSpec.model_validate(
        {
            "name": "groq",
            "kind": "groq",
            "api_key": GROQ_KEY,
            "max_retries": 0,
            "retry_on": [429],
            "idle_timeout": 7,
            "drop_params": True,
            "models": ["llama-3.3-70b-versatile"],
        }
    )
    store = ProviderStore(tmp_path / "s.db", SECRET)
    try:
        stored = store.add(spec.record())
        (again,) = store.load().records
    finally:
        store.close()
    assert again == stored and again.kind == "groq" and again.base_url == "https://api.groq.com/openai/v1"
    provider = again.provider()
    assert provider.kind.name == "groq" and provider.drop_params and provider.responses_api
    assert provider.timeouts is not None and provider.timeouts.idle == 7
    assert provider.retry is not None and provider.retry.max_retries == 0 and provider.retry.retry_on == {429}
    assert "api_key" not in again.view() or again.view()["api_key"] != GROQ_KEY
    assert again.view()["kind"] == "groq" and "api" not in again.view()


def test_the_admin_api_accepts_kinds(config: GatewayConfig, azure: tuple[KindUpstream, str]) -> None:
    body = {
        "name": "az",
        "kind": "azure",
        "base_url": azure[1],
        "api_key": AZURE_KEY,
        "options": {"api_version": "v1"},
        "models": {"gpt-4o": "gpt4o-prod"},
    }
    with serve(build_gateway(config)) as url:
        bad = httpx.post(f"{url}/api/providers", headers=ADMIN, json={**body, "kind": "grok"})
        assert bad.status_code == 422 and "unknown provider kind 'grok'" in bad.text
        bad = httpx.post(f"{url}/api/providers", headers=ADMIN, json={**body, "options": {"region": "x"}})
        assert bad.status_code == 422 and "region" in bad.text
        created = httpx.post(f"{url}/api/providers", headers=ADMIN, json=body)
        assert created.status_code in (200, 201), created.text
        assert AZURE_KEY not in created.text and created.json()["kind"] == "azure"
        with openai.OpenAI(base_url=f"{url}/v1", api_key=ROUTER_TOKEN, max_retries=0) as client:
            answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            assert answer.choices[0].message.content == "hello from the kind"
            assert "gpt-4o" in {m.id for m in client.models.list()}
        seen = azure[0].last
        assert seen.path == "/openai/v1/chat/completions" and seen.json()["model"] == "gpt4o-prod"


def test_cli_add_with_a_kind_reads_the_kinds_variable(tmp_path: Path) -> None:
    write_config(tmp_path)
    out = llmroute(
        tmp_path, "providers", "add", "fast", "--kind", "groq", "--max-retries", "1", env={"GROQ_API_KEY": GROQ_KEY}
    ).stdout
    assert "added fast (kind groq, https://api.groq.com/openai/v1, key gsk...6789" in out
    shown = json.loads(llmroute(tmp_path, "providers", "show", "fast", "--json").stdout)
    assert shown["kind"] == "groq" and shown["max_retries"] == 1 and shown["api_key"] != GROQ_KEY
    local = llmroute(tmp_path, "providers", "add", "local", "--kind", "ollama").stdout
    assert "added local (kind ollama, http://localhost:11434/v1, no key" in local
    err = llmroute(tmp_path, "providers", "add", "x", "--kind", "grok", "--no-api-key", status=1).stderr
    assert "unknown provider kind 'grok'" in err
    err = llmroute(
        tmp_path, "providers", "add", "az", "--kind", "azure", "--no-api-key", "--option", "region=x", status=1
    ).stderr
    assert "unknown key(s) for kind 'azure': region" in err
    err = llmroute(tmp_path, "providers", "add", "az", "--kind", "azure", "--no-api-key", status=1).stderr
    assert "base_url: kind 'azure' has no default base URL" in err


def test_providers_import_reads_litellm_kinds(tmp_path: Path) -> None:
    write_config(tmp_path)
    (tmp_path / "litellm.yaml").write_text(
        """
model_list:
  - model_name: fast
    litellm_params: {model: groq/llama-3.3-70b-versatile, api_key: os.environ/MY_GROQ}
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt4o-prod
      api_base: https://r.openai.azure.com
      api_version: "2024-10-21"
      api_key: os.environ/MY_AZURE
  - model_name: local
    litellm_params: {model: ollama_chat/llama3.2, api_base: "http://127.0.0.1:11434"}
  - model_name: llama
    litellm_params: {model: sagemaker/jumpstart-llama-endpoint}
"""
    )
    env = {"MY_GROQ": GROQ_KEY, "MY_AZURE": AZURE_KEY}
    err = llmroute(tmp_path, "providers", "import", "litellm.yaml", "--strict", env=env, status=1).stderr
    assert "kind 'sagemaker' is not supported yet" in err and "(--strict): nothing imported" in err
    out = llmroute(tmp_path, "providers", "import", "litellm.yaml", env=env).stdout
    assert "kind 'sagemaker' is not supported yet" in out
    listing = json.loads(llmroute(tmp_path, "providers", "list", "--json").stdout)
    shown = {r["name"]: r for r in listing["providers"]}
    assert {r["kind"] for r in shown.values()} == {"groq", "azure", "ollama"}
    azure = next(r for r in shown.values() if r["kind"] == "azure")
    assert azure["options"] == {"api_version": "2024-10-21"} and azure["models"] == {"gpt-4o": "gpt4o-prod"}
    ollama = next(r for r in shown.values() if r["kind"] == "ollama")
    assert ollama["base_url"] == "http://127.0.0.1:11434/v1" and ollama["models"] == {"local": "llama3.2"}
    assert all(GROQ_KEY not in json.dumps(r) and AZURE_KEY not in json.dumps(r) for r in shown.values())
