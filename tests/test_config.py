from __future__ import annotations

from pathlib import Path

import pytest

from asgi_llmroute import assemble
from asgi_llmroute.config import ConfigError, load_config, parse_config

VALID = """
[server]
port = 4100

[[tokens]]
name = "alice"
key = "env:TEST_ALICE_TOKEN"
models = ["claude*"]

[[tokens]]
name = "bob"
key_sha256 = "{digest}"

[admin]
tokens = ["file:admin.txt"]

[[providers]]
name = "anthropic"
api = "anthropic"
base_url = "https://api.anthropic.com/"
api_key = "env:TEST_ANTHROPIC_KEY"
headers = {{ "anthropic-version" = "2023-06-01" }}
timeout = 30

[[models]]
name = "claude"
provider = "anthropic"
model = "claude-sonnet-4-5"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "llmroute.toml"
    path.write_text(text)
    return path


def test_valid_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_ALICE_TOKEN", "sk-alice")
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-ant-key")
    (tmp_path / "admin.txt").write_text("sk-admin\n")
    config = load_config(write(tmp_path, VALID.format(digest="ab" * 32)))
    assert config.server.port == 4100
    [provider] = assemble.provider_records(config)
    assert provider.base_url == "https://api.anthropic.com"
    assert provider.api_key is not None and provider.api_key.reveal() == "sk-ant-key"
    assert "sk-ant-key" not in repr(provider)
    assert [s.reveal() for s in assemble.admin_tokens(config)] == ["sk-admin"]
    [route] = assemble.routes(config, [provider])
    assert route.deployments[0].model == "claude-sonnet-4-5"
    assert [e.name for e in assemble.token_entries(config)] == ["alice", "bob"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server\nport = 1", "invalid TOML"),
        ("[server]\nport = 'x'", "server.port: Input should be a valid integer"),
        ("[server]\nport = 70000", "server.port"),
        ("[server]\nbogus = 1", "server.bogus: unknown key"),
        ("typo = 1", "typo: unknown key"),
        ("[[tokens]]\nname = 'a'", "tokens[0]: give exactly one of 'key' or 'key_sha256'"),
        ("[[tokens]]\nname = 'a'\nkey_sha256 = 'zz'", "tokens[0]: 'key_sha256' must be 64 hex digits"),
        (
            "[[tokens]]\nname = 'a'\nkey = 'env:TEST_UNSET_VARIABLE_X'",
            "tokens[0].key: environment variable TEST_UNSET_VARIABLE_X is not set",
        ),
        ("[[tokens]]\nname = 'a'\nkey = 'file:missing.txt'", "tokens[0].key: cannot read"),
        (
            "[[providers]]\nname = 'p'\napi = 'cohere'\nbase_url = 'http://x'",
            "providers[0].api: Input should be 'openai' or 'anthropic'",
        ),
        (
            "[[providers]]\nname = 'p'\napi = 'openai'\nbase_url = 'ftp://x'",
            "providers[0].base_url: must start with http",
        ),
        ("[[providers]]\nname = 'p'\napi = 'openai'", "providers[0]: base_url: required with api = ..."),
        (
            "[[providers]]\nname = 'p'\napi = 'openai'\nbase_url = 'http://x'\n"
            "[[providers]]\nname = 'p'\napi = 'openai'\nbase_url = 'http://y'",
            "providers: the name 'p' is used twice",
        ),
        ("[[models]]\nname = 'm'\nprovider = 'nope'\nmodel = 'x'", "models[0].provider: no provider named 'nope'"),
        ("[upstream]\nmax_connections_per_origin = 0", "upstream.max_connections_per_origin"),
        ("[upstream]\nkeepalive_timeout = 0", "upstream.keepalive_timeout"),
    ],
)
def test_invalid_config_names_file_key_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert expected in message, message


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config("/nonexistent/llmroute.toml")


def test_secret_values_never_appear_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SECRET_VALUE", "sk-very-secret")
    data = {"providers": [{"name": "p", "api": "openai", "base_url": "nope", "api_key": "sk-literal-secret"}]}
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="x")
    assert "sk-literal-secret" not in str(info.value)
