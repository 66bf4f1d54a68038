"""The response rewriter turns a translated error's retry delay (Google's RetryInfo) into Retry-After."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from asgi_llmroute.context import ClientAPI, RequestContext
from asgi_llmroute.formats import new_translator
from asgi_llmroute.middleware._rewrite import ResponseRewriter

BODY = (
    Path(__file__).resolve().parent.parent / "fixtures/providers/gemini/error_429_resource_exhausted.json"
).read_bytes()


def rewrite(headers: list[tuple[bytes, bytes]]) -> tuple[dict[bytes, bytes], Any]:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def run() -> None:
        tr = new_translator("openai", "gemini")
        tr.request({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]})
        rewriter = ResponseRewriter(send, tr, RequestContext(client_api=ClientAPI.OPENAI_CHAT), "openai")
        await rewriter.send({"type": "http.response.start", "status": 429, "headers": headers})
        await rewriter.send({"type": "http.response.body", "body": BODY, "more_body": False})

    anyio.run(run)
    return dict(sent[0]["headers"]), json.loads(sent[1]["body"])


def test_retry_delay_becomes_retry_after() -> None:
    headers, body = rewrite([(b"content-type", b"application/json")])
    assert headers[b"retry-after"] == b"37"
    assert body["error"]["code"] == "RESOURCE_EXHAUSTED"


def test_an_upstream_retry_after_wins() -> None:
    headers, _ = rewrite([(b"content-type", b"application/json"), (b"retry-after", b"5")])
    assert headers[b"retry-after"] == b"5"
