"""Tiny ASGI apps and helpers for driving one middleware at a time."""

from __future__ import annotations

import json
from typing import Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_llmroute.context import get_context


class Spy:
    """Innermost app: records the scope and body it got, answers 200 with a JSON summary."""

    def __init__(self) -> None:
        self.scope: Scope | None = None
        self.body: bytes = b""
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        self.scope = scope
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.body = body
        ctx = get_context(scope)
        summary: dict[str, Any] = {"principal": ctx.principal.name if ctx and ctx.principal else None}
        payload = json.dumps(summary).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})

    @property
    def headers(self) -> dict[str, str]:
        assert self.scope is not None
        return {k.decode(): v.decode() for k, v in self.scope["headers"]}


def client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def not_called_receive() -> Message:
    raise NotImplementedError


async def not_called_send(message: Message) -> None:
    raise NotImplementedError
