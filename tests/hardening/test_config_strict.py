"""Configuration at first contact: strict types and ranges, every error line prefixed, LiteLLM keys named."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from asgi_llmroute.config import ConfigError, parse_config
from asgi_llmroute.importers.litellm_config import load_litellm_config
from tests.support.cli import LLMROUTE

PROVIDER = {"name": "p", "api": "openai", "base_url": "https://api.example.com/v1"}


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LLMROUTE, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"server": {"port": "4000"}}, "server.port"),
        ({"server": {"port": 4000.0}}, "server.port"),
        ({"server": {"workers": "2"}}, "server.workers"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"logging": {"access": "yes"}}, "logging.access"),
        ({"providers": [{**PROVIDER, "timeout": "30"}]}, "providers[0].timeout"),
        ({"providers": [{**PROVIDER, "max_retries": True}]}, "providers[0].max_retries"),
        ({"routing": {"max_attempts": 0}}, "routing.max_attempts"),
    ],
)
def test_types_and_ranges_are_strict(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse_config(data, source="test")


def test_numbers_that_are_numbers_still_load() -> None:
    config = parse_config({"server": {"port": 4001}, "providers": [{**PROVIDER, "timeout": 30}]}, source="test")
    assert config.server.port == 4001 and config.providers[0].timeout == 30.0


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_port_option_is_range_checked(tmp_path: Path, port: str) -> None:
    result = run(["serve", "--port", port], tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("llmroute: error: --port")


def test_every_error_line_has_the_prefix(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[server]\nport = 'x'\nworkers = 0\nnope = 1\n")
    result = run(["serve", "--config", "bad.toml"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    assert all(line.startswith("llmroute: error: bad.toml: server.") for line in lines), lines


def test_a_config_without_tokens_warns_at_start(tmp_path: Path) -> None:
    from tests.support.cli import llmroute_serve

    (tmp_path / "llmroute.toml").write_text(
        "[[providers]]\nname = 'demo'\napi = 'openai'\nbase_url = 'builtin://demo/v1'\n"
    )
    with llmroute_serve([], tmp_path) as served:
        served.wait_for("no [[tokens]]")
    assert "llmroute: warning:" in served.output and "401" in served.output


LITELLM: dict[str, Any] = {
    "model_list": [
        {"model_name": "a", "litellm_params": {"model": "openai/a", "api_key": "sk-aaaaaaaaaaaa"}},
        {"model_name": "b", "litellm_params": {"model": "openai/b", "api_base": "http://10.0.0.1:8000/v1"}},
        {
            "model_name": "c",
            "litellm_params": {"model": "openai/c", "api_base": "ftp://nope", "api_key": "os.environ/SURELY_UNSET_9"},
        },
    ],
    "general_settings": {"master_key": "sk-master-0123456789"},
}


def test_litellm_errors_name_the_yamls_own_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(LITELLM))
    with pytest.raises(ConfigError) as info:
        load_litellm_config(path)
    message = str(info.value)
    assert "model_list[2].litellm_params.api_base" in message
    assert "providers[" not in message and "models[" not in message


def test_litellm_unset_key_variable_names_the_yaml_key(tmp_path: Path) -> None:
    entries: list[Any] = [*LITELLM["model_list"]]
    entries[2] = {
        "model_name": "c",
        "litellm_params": {"model": "openai/c", "api_key": "os.environ/SURELY_UNSET_9", "api_base": "http://x/v1"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**LITELLM, "model_list": entries}))
    with pytest.raises(ConfigError) as info:
        load_litellm_config(path)
    message = str(info.value)
    assert "model_list[2].litellm_params.api_key" in message and "SURELY_UNSET_9" in message
    assert "providers[" not in message
