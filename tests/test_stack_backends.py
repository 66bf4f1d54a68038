"""The whole standard gateway in-process, on asyncio and on trio: every middleware of
build_gateway() (auth, virtual keys, rate and concurrency limits, resolution, model names, retries,
Responses, stripping, translation, usage, observation) and the forwarder's relay, against the
built-in demo provider in both wire formats (reached through httpx's ASGI transport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import ADMIN_AUTH, BEARER, HI, REPLY, TOKEN, stack

pytestmark = pytest.mark.anyio


def _sse_data(body: str) -> list[Any]:
    events = []
    for line in body.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(json.loads(line[6:]))
    return events


@pytest.mark.parametrize("model", ["gpt", "claude"])
async def test_openai_client_non_stream_and_stream(tmp_path: Path, model: str) -> None:
    async with stack(tmp_path) as gw:
        response = await gw.post("/v1/chat/completions", json={"model": model, "messages": HI}, headers=BEARER)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["model"] == model  # the name the client asked for
        assert answer["choices"][0]["message"]["content"] == REPLY
        assert answer["usage"]["completion_tokens"] > 0
        body = {"model": model, "messages": HI, "stream": True, "stream_options": {"include_usage": True}}
        response = await gw.post("/v1/chat/completions", json=body, headers=BEARER)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = _sse_data(response.text)
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == REPLY
        assert [c["usage"]["completion_tokens"] > 0 for c in chunks if c.get("usage")] == [True]
        assert response.text.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize("model", ["gpt", "claude"])
async def test_anthropic_client_non_stream_and_stream(tmp_path: Path, model: str) -> None:
    headers = {"x-api-key": TOKEN, "anthropic-version": "2023-06-01"}
    async with stack(tmp_path) as gw:
        body: dict[str, Any] = {"model": model, "max_tokens": 50, "messages": HI}
        response = await gw.post("/v1/messages", json=body, headers=headers)
        assert response.status_code == 200, response.text
        message = response.json()
        assert message["type"] == "message" and message["model"] == model
        assert message["content"] == [{"type": "text", "text": REPLY}]
        response = await gw.post("/v1/messages", json={**body, "stream": True}, headers=headers)
        assert response.status_code == 200
        events = _sse_data(response.text)
        assert [e["type"] for e in events][0] == "message_start" and events[-1]["type"] == "message_stop"
        text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
        assert text == REPLY
        assert events[0]["message"]["model"] == model


async def test_responses_client_non_stream_and_stream(tmp_path: Path) -> None:
    async with stack(tmp_path) as gw:
        response = await gw.post("/v1/responses", json={"model": "gpt", "input": "Hi there"}, headers=BEARER)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["object"] == "response" and answer["status"] == "completed"
        assert answer["output"][0]["content"][0]["text"] == REPLY
        response = await gw.post(
            "/v1/responses", json={"model": "claude", "input": "Hi there", "stream": True}, headers=BEARER
        )
        assert response.status_code == 200
        events = _sse_data(response.text)
        assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
        assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == REPLY


async def test_embeddings_models_health_and_metrics(tmp_path: Path) -> None:
    async with stack(tmp_path) as gw:
        response = await gw.post("/v1/embeddings", json={"model": "gpt", "input": ["a", "b"]}, headers=BEARER)
        assert response.status_code == 200, response.text
        assert [d["index"] for d in response.json()["data"]] == [0, 1]
        listed = await gw.get("/v1/models", headers=BEARER)
        assert [m["id"] for m in listed.json()["data"]] == ["gpt", "claude"]
        anthropic_listed = await gw.get(
            "/v1/models", headers={"x-api-key": "sk-router-bob-0123456789abcdef", "anthropic-version": "2023-06-01"}
        )
        assert anthropic_listed.json()["data"][0]["type"] == "model"
        assert [m["id"] for m in anthropic_listed.json()["data"]] == ["gpt"]  # bob may only use gpt
        assert (await gw.get("/health")).json() == {"status": "ok"}
        assert (await gw.get("/metrics")).status_code == 401
        metrics = await gw.get("/metrics", headers=ADMIN_AUTH)
        assert "llmroute_requests_total{" in metrics.text and 'model="gpt"' in metrics.text


async def test_refusals_come_in_the_callers_format(tmp_path: Path) -> None:
    async with stack(tmp_path) as gw:
        # no token: OpenAI's error shape on OpenAI paths, Anthropic's on /v1/messages
        response = await gw.post("/v1/chat/completions", json={"model": "gpt", "messages": HI})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "missing_api_key" and "type" not in response.json()
        response = await gw.post("/v1/messages", json={"model": "gpt", "max_tokens": 5, "messages": HI})
        assert response.status_code == 401
        assert response.json()["type"] == "error" and response.json()["error"]["type"] == "authentication_error"
        # a model the token may not use
        bob = {"authorization": "Bearer sk-router-bob-0123456789abcdef"}
        response = await gw.post("/v1/chat/completions", json={"model": "claude", "messages": HI}, headers=bob)
        assert response.status_code == 403 and response.json()["error"]["code"] == "model_not_allowed"
        # an unknown model (in each caller's format), broken JSON, a wrong method, an unknown path
        response = await gw.post("/v1/chat/completions", json={"model": "nope", "messages": HI}, headers=BEARER)
        assert response.status_code == 404 and response.json()["error"]["param"] == "model"
        response = await gw.post(
            "/v1/messages", json={"model": "nope", "max_tokens": 1, "messages": HI}, headers=BEARER
        )
        assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"
        response = await gw.post("/v1/chat/completions", content=b"{not json", headers=BEARER)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
        response = await gw.get("/v1/chat/completions", headers=BEARER)
        assert response.status_code == 405
        response = await gw.post("/v1/nothing-here", json={}, headers=BEARER)
        assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_url"
        # a request the translator cannot express for the upstream: 400 naming the field
        bad = {"model": "claude", "messages": HI, "n": 3}
        response = await gw.post("/v1/chat/completions", json=bad, headers=BEARER)
        assert response.status_code == 400 and response.json()["error"]["param"] == "n"
