from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from asgi_llmroute import build_gateway
from tests.support.gateway import ROUTER_TOKEN, gateway_config
from tests.support.servers import Upstream, serve

from ._support import ALL_LINES, Capture, anthropic_api, capture_logs, openai_api


@pytest.fixture(scope="package", autouse=True)
def _all_logs() -> Iterator[None]:
    """Every log line of every logger during this package, DEBUG included, for the secret grep."""
    handler = Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        ALL_LINES.extend(handler.lines)
        ALL_LINES.extend(r.getMessage() for r in handler.records)


@pytest.fixture(scope="package")
def upstreams() -> Iterator[tuple[str, str]]:
    """An OpenAI-like and an Anthropic-like upstream, shared by the whole package."""
    with serve(Upstream(reply=openai_api)) as oa_url, serve(Upstream(reply=anthropic_api)) as an_url:
        yield oa_url, an_url


class Running:
    """A gateway under uvicorn, its log capture and SDK clients."""

    def __init__(self, url: str, logs: Capture, gateway: Any) -> None:
        self.url = url
        self.logs = logs
        self.gateway = gateway
        self._clients: list[openai.OpenAI | anthropic.Anthropic] = []

    def openai(self, token: str = ROUTER_TOKEN) -> openai.OpenAI:
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key=token, max_retries=0)
        self._clients.append(client)
        return client

    def anthropic(self, token: str = ROUTER_TOKEN) -> anthropic.Anthropic:
        client = anthropic.Anthropic(base_url=self.url, api_key=token, max_retries=0)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture(scope="module")
def start(upstreams: tuple[str, str]) -> Iterator[Any]:
    """``start(**config_overrides)`` -> a :class:`Running` gateway, stopped at the end of the module.

    Every gateway's capture sees every ``asgi_llmroute`` log line: tests clear it first.
    """
    stack: list[Any] = []

    def _start(**overrides: Any) -> Running:
        # No retries unless a test asks: counts stay independent of the retry policy.
        overrides.setdefault("routing", {"max_attempts": 1})
        config = gateway_config(upstreams[0], upstreams[1], **overrides)
        gateway = build_gateway(config)
        logs_cm = capture_logs()
        logs = logs_cm.__enter__()
        server_cm = serve(gateway)
        url = server_cm.__enter__()
        running = Running(url, logs, gateway)
        stack.append((running, server_cm, logs_cm))
        return running

    yield _start
    while stack:
        running, server_cm, logs_cm = stack.pop()
        running.close()
        server_cm.__exit__(None, None, None)
        logs_cm.__exit__(None, None, None)


@pytest.fixture(scope="module")
def gw(start: Any) -> Running:
    """One default gateway per test module."""
    return start()  # type: ignore[no-any-return]
