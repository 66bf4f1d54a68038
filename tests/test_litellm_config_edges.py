"""LiteLLM config.yaml files at the edges: every mistake is a ConfigError in the yaml's own terms,
and the settings LiteLLM users rely on (defaults from the environment, per-entry limits, global
timeouts and fallbacks) carry over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from asgi_llmroute.config import ConfigError
from asgi_llmroute.importers.litellm_config import load_litellm_config

MASTER = {"general_settings": {"master_key": "sk-master-1234"}}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def entry(name: str, model: str, **params: Any) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": model, **params}}


def load(tmp_path: Path, *entries: Any, **sections: Any) -> tuple[Any, list[str]]:
    return load_litellm_config(write(tmp_path, {"model_list": list(entries), **MASTER, **sections}))


@pytest.mark.parametrize(
    ("entries", "sections", "message"),
    [
        ([entry("a", "openai/x")], {"environment_variables": ["A=1"]}, "environment_variables: must be a mapping"),
        (
            [{"model_name": 3, "litellm_params": {"model": "openai/x"}}],
            {},
            "needs a model_name and a litellm_params.model",
        ),
        ([entry("a", "openai/x", api_key=12)], {}, "model_list[0].litellm_params.api_key: must be a string"),
        (
            [
                entry(
                    "a", "azure/dep", api_base="https://r.openai.azure.com", api_version="os.environ/LLMROUTE_UNSET_VAR"
                )
            ],
            {},
            "the environment variable LLMROUTE_UNSET_VAR is not set",
        ),
        ([entry("a", "openai/x", timeout=-1)], {}, "model_list[0].litellm_params.timeout"),
        ([entry("a", "openai/x", rpm=-5)], {}, "model_list[0].litellm_params.rpm"),
        ([entry("a", "openai/x", base_url="ftp://nowhere")], {}, "model_list[0].litellm_params.base_url"),
        ([entry("a", "openai/x", weight=0)], {}, "model_list[0].litellm_params.weight: Input should be greater"),
        ([entry("a", "openai/x")], {"router_settings": {"num_retries": 50}}, "router_settings.num_retries: Input"),
        ([entry("a", "openai/x")], {"general_settings": {"master_key": ""}}, "general_settings.master_key: the key"),
        ([entry("a", "openai/x", extra_headers={"x": None})], {}, "model_list[0].litellm_params.extra_headers.x: "),
        (
            [entry("a", "azure/dep", api_base="https://r.openai.azure.com", api_version="")],
            {},
            "model_list[0]: api_version: must be a non-empty string",
        ),
    ],
)
def test_mistakes_are_named_in_yaml_terms(
    tmp_path: Path, entries: list[Any], sections: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMROUTE_UNSET_VAR", raising=False)
    with pytest.raises(ConfigError) as info:
        load(tmp_path, *entries, **sections)
    assert message in str(info.value)
    assert "providers[" not in str(info.value) and "models[" not in str(info.value)


def test_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_litellm_config(tmp_path / "missing.yaml")


def test_settings_that_carry_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    config, ignored = load(
        tmp_path,
        entry(
            "a",
            "openai/gpt-x",
            drop_params=True,
            max_parallel_requests=3,
            extra_headers={"x-team": "t"},
            timeout=12,
            tpm=1000,
        ),
        entry("b", "openai/gpt-y", api_base="http://127.0.0.1:9/v1"),
        entry("c", "openai/gpt-z", base_url="http://127.0.0.1:10/v1"),
        entry("all", "openai/*"),
        router_settings={"timeout": 30, "fallbacks": [{"a": ["b", "nope"]}, {"c": "a"}, "junk"], "cooldown_time": 5},
        litellm_settings={"num_retries": 1},
        general_settings={"master_key": "sk-master-1234", "alerting": ["slack"]},
        unknown_section={"x": 1},
    )
    first, second, third = config.providers
    assert first.api_key == "env:OPENAI_API_KEY"  # LiteLLM's default variable for the type
    assert first.drop_params is True and first.max_in_flight == 3 and first.headers == {"x-team": "t"}
    assert first.timeout == 12  # the entry's own wins over the global timeout
    assert second.timeout == 30 and second.max_retries == 1
    assert len({first.name, second.name, third.name}) == 3  # one provider per distinct settings
    models = {m.name: m for m in config.models}
    assert models["a"].tpm == 1000 and models["a"].fallbacks == ["b"]
    assert models["c"].fallbacks == ["a"]
    assert "fallbacks: a -> nope (no such model)" in ignored
    assert any("wildcard" in line for line in ignored)
    assert {"router_settings.cooldown_time", "general_settings.alerting", "unknown_section"} <= set(ignored)
