"""Sending small complete responses from ASGI code (JSON bodies the gateway answers itself)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.types import Send

__all__ = ["send_body", "send_json"]


async def send_body(
    send: Send, status: int, body: bytes, content_type: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send a whole response: start (with ``content-length``) and one body message."""
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(send: Send, status: int, obj: Any, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Send ``obj`` as a compact JSON response."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    await send_body(send, status, body, b"application/json", headers)
