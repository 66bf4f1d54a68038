"""A gateway configuration pointing at test upstreams, with well-known secrets to grep for."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgi_llmroute.config import GatewayConfig, parse_config
from tests.support.servers import serve

ROUTER_TOKEN = "sk-router-test-0123456789abcdef"
LIMITED_TOKEN = "sk-router-limited-0123456789abcdef"
OPENAI_KEY = "sk-provider-openai-SECRET-0123456789"
ANTHROPIC_KEY = "sk-ant-provider-SECRET-0123456789"
SECRETS = (ROUTER_TOKEN, LIMITED_TOKEN, OPENAI_KEY, ANTHROPIC_KEY)


def gateway_config(openai_url: str, anthropic_url: str, **overrides: Any) -> GatewayConfig:
    data: dict[str, Any] = {
        "server": {"max_body_bytes": 64 * 1024},
        "tokens": [
            {"name": "alice", "key": ROUTER_TOKEN},
            {"name": "limited", "key": LIMITED_TOKEN, "models": ["gpt-*"]},
        ],
        "providers": [
            {"name": "openai", "api": "openai", "base_url": f"{openai_url}/v1", "api_key": OPENAI_KEY},
            {
                "name": "anthropic",
                "api": "anthropic",
                "base_url": anthropic_url,
                "api_key": ANTHROPIC_KEY,
                "headers": {"anthropic-version": "2023-06-01"},
            },
        ],
        "models": [
            {"name": "gpt-test", "provider": "openai", "model": "gpt-4o-mini"},
            {"name": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5"},
        ],
    }
    data.update(overrides)
    return parse_config(data, source="test")


@contextmanager
def serve_gateway(config: GatewayConfig) -> Iterator[str]:
    """The gateway ``config`` describes, served on a random port: its URL."""
    from asgi_llmroute import build_gateway  # on use: importers of this module's constants load less

    with serve(build_gateway(config)) as url:
        yield url
