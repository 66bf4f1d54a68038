"""A LiteLLM config naming azure/, groq/, ollama/ and openai/ deployments runs unchanged under
``llmroute serve``: each reaches a local upstream that checks its URL shape and credentials."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import anthropic
import openai
import pytest

from asgi_llmroute.importers.litellm_config import load_litellm_config
from tests.support.cli import LLMROUTE, llmroute_serve
from tests.support.provider_servers import KindUpstream
from tests.support.servers import serve

ROOT = Path(__file__).parents[2]
MASTER = "sk-litellm-master-0123456789abcdef"
GROQ_KEY = "gsk-litellm-SECRET-0123456789"
AZURE_KEY = "azure-litellm-SECRET-0123456789"
OPENAI_KEY = "sk-openai-litellm-SECRET-0123456789"

CONFIG = """
model_list:
  - model_name: fast
    litellm_params:
      model: groq/llama-3.3-70b-versatile
      api_base: {groq}/openai/v1
      api_key: os.environ/GROQ_API_KEY
  - model_name: local
    litellm_params:
      model: ollama/llama3.2
      api_base: {ollama}
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt4o-prod
      api_base: {azure}
      api_version: "2024-10-21"
      api_key: os.environ/AZURE_API_KEY
      rpm: 600
  - model_name: mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {openai}/v1
      api_key: os.environ/OPENAI_API_KEY
  - model_name: llama-sagemaker
    litellm_params:
      model: sagemaker/jumpstart-llama-endpoint
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
"""


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, tuple[KindUpstream, str]]]:
    servers = {
        "groq": KindUpstream("/openai/v1", ("authorization", f"Bearer {GROQ_KEY}")),
        "ollama": KindUpstream("/v1", None, forbidden=("authorization",)),
        "azure": KindUpstream(
            "/openai/deployments/gpt4o-prod", ("api-key", AZURE_KEY), query={"api-version": "2024-10-21"}
        ),
        "openai": KindUpstream("/v1", ("authorization", f"Bearer {OPENAI_KEY}")),
    }
    with ExitStack() as running:
        yield {name: (upstream, running.enter_context(serve(upstream))) for name, upstream in servers.items()}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, tuple[KindUpstream, str]]) -> Path:
    path = tmp_path_factory.mktemp("litellm") / "litellm_config.yaml"
    path.write_text(CONFIG.format(**{name: url for name, (_, url) in upstreams.items()}))
    return path


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "GROQ_API_KEY": GROQ_KEY,
        "AZURE_API_KEY": AZURE_KEY,
        "OPENAI_API_KEY": OPENAI_KEY,
        "LITELLM_MASTER_KEY": MASTER,
    }


def test_the_litellm_config_runs_unchanged(config_file: Path, upstreams: dict[str, tuple[KindUpstream, str]]) -> None:
    with llmroute_serve(["--config", str(config_file)], cwd=config_file.parent, env=env()) as served:
        assert "model_list[4] (llama-sagemaker): kind 'sagemaker' is not supported yet" in served.output
        client = openai.OpenAI(base_url=f"{served.url}/v1", api_key=MASTER, max_retries=0)
        with client:
            assert {m.id for m in client.models.list()} == {"fast", "local", "gpt-4o", "mini"}
            for model, name, path in [
                ("fast", "groq", "/openai/v1/chat/completions"),
                ("local", "ollama", "/v1/chat/completions"),
                ("gpt-4o", "azure", "/openai/deployments/gpt4o-prod/chat/completions"),
                ("mini", "openai", "/v1/chat/completions"),
            ]:
                answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
                assert answer.choices[0].message.content == "hello from the kind", model
                assert upstreams[name][0].last.path == path
            stream = client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).strip()
        with anthropic.Anthropic(base_url=served.url, api_key=MASTER, max_retries=0) as claude:
            message = claude.messages.create(model="fast", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        assert message.content[0].type == "text" and message.content[0].text == "hello from the kind"
        for secret in (GROQ_KEY, AZURE_KEY, OPENAI_KEY, MASTER):
            assert secret not in served.output


def test_strict_makes_an_unsupported_entry_fatal(config_file: Path) -> None:
    result = subprocess.run(
        [*LLMROUTE, "serve", "--config", str(config_file), "--strict", "--port", "0"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "model_list[4] (llama-sagemaker): kind 'sagemaker' is not supported yet" in result.stderr
    assert "(--strict)" in result.stderr


def test_azure_keys_map_to_the_azure_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTER", MASTER)
    monkeypatch.setenv("AZ_TENANT", "contoso.onmicrosoft.com")
    monkeypatch.setenv("AZ_SECRET", "client-secret-0123456789")
    path = tmp_path / "c.yaml"
    path.write_text(
        """
model_list:
  - model_name: a
    litellm_params:
      model: azure/dep-a
      api_base: https://r.openai.azure.com/
      api_version: v1
      azure_ad_token: os.environ/AZ_SECRET
  - model_name: b
    litellm_params:
      model: azure/dep-b
      api_base: https://r.openai.azure.com
      tenant_id: os.environ/AZ_TENANT
      client_id: 00000000-0000-0000-0000-0000000000c1
      client_secret: os.environ/AZ_SECRET
  - model_name: c
    litellm_params:
      model: hosted_vllm/Qwen/Qwen3-8B
      api_base: http://127.0.0.1:8000
general_settings:
  master_key: os.environ/MASTER
"""
    )
    config, ignored = load_litellm_config(path)
    by_name = {p.name: p for p in config.providers}
    a, b = (by_name[m.provider] for m in config.models[:2])
    assert a.kind == "azure" and a.options() == {"api_version": "v1", "auth": "bearer"}
    assert b.options() == {
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "00000000-0000-0000-0000-0000000000c1",
        "auth": "entra",
    }
    assert b.api_key == "env:AZ_SECRET"
    c = by_name[config.models[2].provider]
    assert c.kind == "vllm" and c.base_url == "http://127.0.0.1:8000/v1" and config.models[2].model == "Qwen/Qwen3-8B"
    assert ignored == []
