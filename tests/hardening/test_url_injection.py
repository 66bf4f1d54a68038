"""Model names a client controls (``provider/<model>``) that end up in upstream URL paths: an Azure
deployment, a Bedrock model id, a Gemini model. Each stays one path segment of the provider's own
endpoint, or is refused before anything is sent; the provider's key never goes anywhere else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from asgi_llmroute import build_gateway
from asgi_llmroute.config import parse_config
from tests.support.servers import read_body, serve

TOKEN = "sk-router-urls-0123456789abcdef"
KEYS = {"az": "azure-key-SECRET-0123", "br": "bedrock-key-SECRET-0123", "gm": "gemini-key-SECRET-0123"}
AUTH = {"authorization": f"Bearer {TOKEN}"}


class RawPaths:
    """An upstream that records the raw request path (as sent, percent-encoding included)."""

    def __init__(self) -> None:
        self.paths: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        self.paths.append(scope["raw_path"])
        await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps({"error": {"message": "recorded"}}).encode()})


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[RawPaths, str]]:
    upstream = RawPaths()
    with serve(upstream) as url:
        providers: list[dict[str, Any]] = [
            {"name": "az", "kind": "azure", "base_url": url, "api_key": KEYS["az"], "max_retries": 0},
            {"name": "gm", "kind": "gemini", "base_url": f"{url}/v1beta", "api_key": KEYS["gm"], "max_retries": 0},
            {
                "name": "br",
                "kind": "bedrock",
                "base_url": url,
                "region": "us-east-1",
                "auth": "api-key",
                "api_key": KEYS["br"],
                "max_retries": 0,
            },
        ]
        config = parse_config({"tokens": [{"name": "t", "key": TOKEN}], "providers": providers}, source="test")
        with serve(build_gateway(config)) as gateway:
            yield upstream, gateway


def _chat(gateway: str, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{gateway}/v1/chat/completions", headers=AUTH, json=body, timeout=30)


# Where each provider puts the model id: the encoded id must be exactly this segment.
WHERE = {
    "az": lambda m: f"/openai/deployments/{m}/chat/completions",
    "br": lambda m: f"/model/{m}/converse",
    "gm": lambda m: f"/v1beta/models/{m}:generateContent",
}


@pytest.mark.parametrize("provider", ["az", "br", "gm"])
@pytest.mark.parametrize("model", ["../../x", "a/../b", "x?y=1", "x#f", "a b", "%2e%2e", "..x", "x:y", "\u00e9"])
def test_a_model_id_stays_one_segment_of_the_providers_path(
    setup: tuple[RawPaths, str], provider: str, model: str
) -> None:
    upstream, gateway = setup
    upstream.paths.clear()
    response = _chat(gateway, f"{provider}/{model}")
    assert response.status_code == 500 and response.json()["error"]["message"] == "recorded"
    assert len(upstream.paths) == 1
    assert upstream.paths[0].decode("ascii") == WHERE[provider](quote(model, safe="-._~"))


@pytest.mark.parametrize("provider", ["az", "br", "gm"])
@pytest.mark.parametrize("model", [".", ".."])
def test_dot_segments_are_refused_before_anything_is_sent(
    setup: tuple[RawPaths, str], provider: str, model: str
) -> None:
    upstream, gateway = setup
    upstream.paths.clear()
    response = _chat(gateway, f"{provider}/{model}")
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "model_not_found"
    anthropic = httpx.post(
        f"{gateway}/v1/messages",
        headers={"x-api-key": TOKEN, "anthropic-version": "2023-06-01"},
        json={"model": f"{provider}/{model}", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert anthropic.status_code == 404 and anthropic.json()["type"] == "error"
    google = httpx.post(
        f"{gateway}/v1beta/models/{quote(f'{provider}/{model}', safe='')}:generateContent",
        headers={"x-goog-api-key": TOKEN},
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        timeout=30,
    )
    assert google.status_code == 404 and google.json()["error"]["status"] == "NOT_FOUND"
    assert upstream.paths == []
    for key in KEYS.values():
        assert key not in response.text + anthropic.text + google.text
