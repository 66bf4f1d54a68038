"""The routing keys of llmroute.toml: defaults, conversions and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from asgi_llmroute import UpstreamTimeouts, assemble, build_gateway
from asgi_llmroute.config import ConfigError, load_config, parse_config
from asgi_llmroute.retry_policy import DEFAULT_RETRY_ON, RetryPolicy

CONFIG = """
[routing]
strategy = "least_in_flight"
max_wait = 2.5
backoff_base = 0.1
backoff_max = 1
max_retry_after = 10
max_attempts = 4

[[tokens]]
name = "alice"
key = "sk-alice"
max_in_flight = 5

[[providers]]
name = "anthropic"
api = "anthropic"
base_url = "https://api.anthropic.com"
timeout = 120
connect_timeout = 3
first_byte_timeout = 20
idle_timeout = 30
max_retries = 1
retry_on = [429, 529]
max_in_flight = 50
cooldown = 0

[[providers]]
name = "openai"
api = "openai"
base_url = "https://api.openai.com/v1"

[[models]]
name = "claude"
provider = "anthropic"
model = "claude-sonnet-4-5"
weight = 2
fallbacks = ["gpt", "openai/gpt-4.1"]

[[models]]
name = "claude"
provider = "openai"
model = "claude-via-openai"

[[models]]
name = "gpt"
provider = "openai"
model = "gpt-4o"
fallbacks = ["claude"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "llmroute.toml"
    path.write_text(text)
    return path


def test_routing_keys(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG))
    assert config.routing.strategy == "least_in_flight"
    assert config.tokens[0].max_in_flight == 5
    routes = {r.name: r for r in assemble.routes(config, assemble.provider_records(config))}
    assert routes["claude"].fallbacks == ("gpt", "openai/gpt-4.1")
    assert [d.weight for d in routes["claude"].deployments] == [2.0, 1.0]
    assert routes["gpt"].fallbacks == ("claude",)  # a cycle: cut at run time
    assert assemble.upstream_timeouts(config) == {
        "anthropic": UpstreamTimeouts(connect=3, first_byte=20, idle=30, total=120),
        "openai": UpstreamTimeouts(connect=30, first_byte=None, idle=600, total=600),
    }
    assert assemble.retry_policies(config) == {
        "anthropic": RetryPolicy(max_retries=1, retry_on=frozenset({429, 529}), cooldown=0),
        "openai": RetryPolicy(max_retries=2, retry_on=DEFAULT_RETRY_ON, cooldown=5),
    }
    gateway = build_gateway(config)
    assert gateway.balancer.strategy == "least_in_flight"


def test_defaults() -> None:
    config = parse_config({}, source="x")
    assert (config.routing.strategy, config.routing.max_wait, config.routing.max_attempts) == ("weighted", 10.0, 10)
    assert (config.routing.backoff_base, config.routing.backoff_max, config.routing.max_retry_after) == (0.5, 8.0, 30.0)


_PROVIDER = "[[providers]]\nname = 'p'\napi = 'openai'\nbase_url = 'http://x'\n"
_MODEL = "[[models]]\nname = 'm'\nprovider = 'p'\nmodel = 'x'\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[routing]\nstrategy = 'random'",
            "routing.strategy: Input should be 'weighted', 'least_in_flight' or 'lowest_latency'",
        ),
        ("[routing]\nmax_wait = -1", "routing.max_wait: Input should be greater than or equal to 0"),
        ("[routing]\nmax_attempts = 0", "routing.max_attempts: Input should be greater than or equal to 1"),
        ("[routing]\nbogus = 1", "routing.bogus: unknown key"),
        (_PROVIDER + "max_retries = -1", "providers[0].max_retries: Input should be greater than or equal to 0"),
        (_PROVIDER + "retry_on = [200]", "providers[0].retry_on: statuses must be between 400 and 599"),
        (_PROVIDER + "first_byte_timeout = 0", "providers[0].first_byte_timeout: Input should be greater than 0"),
        (_PROVIDER + "max_in_flight = 0", "providers[0].max_in_flight: Input should be greater than 0"),
        (_PROVIDER + "cooldown = -1", "providers[0].cooldown: Input should be greater than or equal to 0"),
        (
            "[[tokens]]\nname = 'a'\nkey = 'k'\nmax_in_flight = 0",
            "tokens[0].max_in_flight: Input should be greater than 0",
        ),
        (
            _PROVIDER + _MODEL + "fallbacks = ['nope']",
            "models[0].fallbacks[0]: no model named 'nope' (nor a '<provider>/<model>' form)",
        ),
        (_PROVIDER + _MODEL + "fallbacks = ['q/x']", "models[0].fallbacks[0]: no model named 'q/x'"),
        (_PROVIDER + _MODEL + "fallbacks = ['m']", "models[0].fallbacks[0]: a model cannot be its own fallback"),
        (
            _PROVIDER + _MODEL + "fallbacks = ['p/y']\n" + _MODEL + "fallbacks = ['p/z']",
            "models[1].fallbacks: differs from another [[models]] entry named 'm'",
        ),
    ],
)
def test_invalid_routing_config(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
