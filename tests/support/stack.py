"""The whole standard gateway in-process with the built-in demo provider (both wire formats) as its
upstreams and a SQLite provider store (so virtual keys are on): for tests on asyncio and on trio."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from asgi_llmroute import build_gateway, parse_config
from asgi_llmroute.demo import DEMO_BASE_URL

TOKEN = "sk-router-stack-0123456789abcdef"
ADMIN = "sk-admin-stack-0123456789abcdef"
REPLY = "Hello from the llmroute demo provider! You said: Hi there"
HI: Any = [{"role": "user", "content": "Hi there"}]
BEARER = {"authorization": f"Bearer {TOKEN}"}
ADMIN_AUTH = {"authorization": f"Bearer {ADMIN}"}


def stack_config(tmp: Path) -> Any:
    (tmp / "secret").write_text(base64.b64encode(os.urandom(32)).decode())
    return parse_config(
        {
            "tokens": [
                {"name": "alice", "key": TOKEN, "rpm": 1000, "tpm": 10_000_000, "max_in_flight": 8},
                {"name": "bob", "key": "sk-router-bob-0123456789abcdef", "models": ["gpt"]},
            ],
            "admin": {"tokens": [ADMIN]},
            "store": {"path": str(tmp / "store.db"), "secret": f"file:{tmp / 'secret'}"},
            "providers": [
                {"name": "demo-openai", "api": "openai", "base_url": f"{DEMO_BASE_URL}/v1", "max_in_flight": 8},
                {"name": "demo-anthropic", "api": "anthropic", "base_url": DEMO_BASE_URL},
            ],
            "models": [
                {"name": "gpt", "provider": "demo-openai", "model": "demo", "rpm": 1000},
                {"name": "claude", "provider": "demo-anthropic", "model": "demo-claude"},
            ],
            "prices": {"gpt": {"input": 1.0, "output": 2.0}},
            "keys": {"refresh": 0.01, "flush": 0.01},
            "logging": {"access": False},
        },
        source="test",
    )


@asynccontextmanager
async def stack(tmp: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with build_gateway(stack_config(tmp)) as gateway:
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=10) as client:
            yield client
