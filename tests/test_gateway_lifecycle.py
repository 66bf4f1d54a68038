"""The gateway's own lifecycle in-process: ASGI lifespan startup and shutdown, a shared state that
cannot be reached at startup (refused) or when mounted without a lifespan (logged, retried later)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import Message

from asgi_llmroute import build_gateway, parse_config
from tests.support.cli import free_port
from tests.support.stack import stack_config

pytestmark = pytest.mark.anyio


async def lifespan(app: Any, *messages: str) -> list[Message]:
    inbox = [{"type": m} for m in messages]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(10):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return sent


async def test_lifespan_starts_and_closes_the_gateway(tmp_path: Path) -> None:
    gateway = build_gateway(stack_config(tmp_path))
    sent = await lifespan(gateway, "lifespan.startup", "lifespan.shutdown")
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    await gateway.aclose()  # again: nothing left to close


def _unreachable_state(**extra: Any) -> Any:
    return parse_config(
        {
            "tokens": [{"name": "t", "key": "sk-router-lifecycle-0123456789"}],
            "state": {"backend": "redis", "url": f"redis://127.0.0.1:{free_port()}/0", "timeout_ms": 200, **extra},
            "logging": {"access": False},
        },
        source="test",
    )


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis-py runs on asyncio
async def test_an_unreachable_shared_state_fails_startup(anyio_backend: str) -> None:
    pytest.importorskip("redis")
    gateway = build_gateway(_unreachable_state())
    sent = await lifespan(gateway, "lifespan.startup")
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert sent[0]["message"].startswith("[state]: ") and "127.0.0.1" in sent[0]["message"]
    await gateway.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_mounted_without_lifespan_a_down_state_is_logged_and_retried_later(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("redis")
    gateway = build_gateway(_unreachable_state(when_down="open"))
    transport = httpx.ASGITransport(app=gateway)
    with caplog.at_level(logging.ERROR, logger="asgi_llmroute"):
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            first = await client.get("/health")
            second = await client.get("/health")  # within a second: no second attempt
    assert first.status_code == second.status_code == 200
    errors = [r for r in caplog.records if r.getMessage().startswith("[state]: ")]
    assert len(errors) == 1
    await gateway.aclose()
