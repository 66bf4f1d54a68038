"""`llmroute serve --config litellm_config.yaml`: LiteLLM's own config file, served directly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import openai
import pytest
import yaml

from asgi_llmroute import assemble
from asgi_llmroute.config import ConfigError
from asgi_llmroute.importers.litellm_config import load_litellm_config
from tests.support.cli import llmroute_serve
from tests.support.servers import Upstream, json_reply, serve

FIXTURES = Path(__file__).parent / "fixtures" / "protocols"
LITELLM_CONFIG = {
    "model_list": [
        {
            "model_name": "gpt-4o",
            "litellm_params": {"model": "openai/gpt-4o", "api_key": "os.environ/TEST_OPENAI_KEY", "rpm": 60},
        },
        {
            "model_name": "gpt-4o",
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1", "weight": 3},
        },
        {
            "model_name": "claude",
            "litellm_params": {"model": "anthropic/claude-sonnet-4-5", "api_key": "sk-ant-literal"},
        },
        {"model_name": "sm", "litellm_params": {"model": "sagemaker/my-endpoint"}},
    ],
    "router_settings": {"num_retries": 4, "routing_strategy": "least-busy", "fallbacks": [{"gpt-4o": ["claude"]}]},
    "litellm_settings": {"drop_params": True},
    "general_settings": {"master_key": "sk-master-1234", "database_url": "postgres://db"},
    "environment_variables": {"TEST_OPENAI_KEY": "sk-from-the-file"},
}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "litellm_config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_mapping(tmp_path: Path) -> None:
    config, ignored = load_litellm_config(write(tmp_path, LITELLM_CONFIG))
    providers = {p.name: p for p in assemble.provider_records(config)}
    assert set(providers) == {"openai", "openai-127-0-0-1-9", "anthropic"}
    assert providers["openai"].api_key is not None and providers["openai"].api_key.reveal() == "sk-from-the-file"
    assert providers["openai-127-0-0-1-9"].base_url == "http://127.0.0.1:9/v1"
    assert all(p.max_retries == 4 for p in config.providers)
    routes = {r.name: r for r in assemble.routes(config, providers.values())}
    assert [(d.provider.name, d.model, d.weight) for d in routes["gpt-4o"].deployments] == [
        ("openai", "gpt-4o", 1.0),
        ("openai-127-0-0-1-9", "gpt-4o-mini", 3.0),
    ]
    assert routes["gpt-4o"].fallbacks == ("claude",)
    assert [(m.rpm, m.tpm) for m in config.models if m.name == "gpt-4o"] == [(60, None), (None, None)]
    assert config.routing.strategy == "least_in_flight"
    assert [e.name for e in assemble.token_entries(config)] == ["master"]
    assert [s.reveal() for s in assemble.admin_tokens(config)] == ["sk-master-1234"]
    assert config.translation.drop_params is True  # litellm_settings.drop_params
    assert sorted(ignored) == [
        "general_settings.database_url",
        "model_list[3] (sm): kind 'sagemaker' is not supported yet: this entry is not served",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"model_list": "nope"}, "not a LiteLLM config"),
        ({"model_list": [{"model_name": "x"}]}, "model_list[0]: needs model_name and litellm_params"),
        ({"model_list": []}, "general_settings.master_key: llmroute needs a key"),
        (
            {
                "model_list": [{"model_name": "a", "litellm_params": {"model": "openai/x"}}],
                "general_settings": {"master_key": 5},
            },
            "general_settings.master_key: must be a string",
        ),
    ],
)
def test_invalid_files(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_litellm_config(write(tmp_path, data))


def test_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model_list: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_litellm_config(path)


def test_serve_a_litellm_config(tmp_path: Path) -> None:
    upstream = Upstream(reply=json_reply(json.loads((FIXTURES / "openai/completion_text.json").read_text())))
    with serve(upstream) as upstream_url:
        data = {
            "model_list": [
                {
                    "model_name": "fast",
                    "litellm_params": {
                        "model": "openai/gpt-4o-mini",
                        "api_base": f"{upstream_url}/v1",
                        "api_key": "os.environ/TEST_UP_KEY",
                    },
                },
            ],
            "general_settings": {"master_key": "os.environ/TEST_MASTER_KEY", "alerting": ["slack"]},
        }
        path = write(tmp_path, data)
        env = {**os.environ, "TEST_UP_KEY": "sk-upstream-key", "TEST_MASTER_KEY": "sk-master-key"}
        with llmroute_serve(["--config", str(path)], tmp_path, env=env) as served:
            with openai.OpenAI(base_url=f"{served.url}/v1", api_key="sk-master-key", max_retries=0) as client:
                reply = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content
            assert upstream.last.headers["authorization"] == "Bearer sk-upstream-key"
            assert upstream.last.json()["model"] == "gpt-4o-mini"
    output = served.output
    assert "general_settings.alerting" in output
    assert "sk-master-key" not in output and "sk-upstream-key" not in output
    assert "Traceback" not in output
