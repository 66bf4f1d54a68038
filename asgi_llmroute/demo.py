"""A built-in, deterministic demo provider speaking both wire formats, for the embedded default.

It runs in-process (the forwarder reaches it at ``builtin://demo`` through httpx's ASGI transport),
so a newcomer's first request goes through the whole pipeline with no network and no keys.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from starlette.types import Receive, Scope, Send

from .formats.sse import encode_sse

__all__ = ["DEMO_BASE_URL", "DemoProvider"]

DEMO_BASE_URL = "builtin://demo"
_CREATED = 1700000000


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _last_user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(part.get("text", ""))
                    for part in content
                    if isinstance(part, dict) and part.get("type") == "text"
                )
    return ""


def demo_reply(body: dict[str, Any]) -> str:
    said = " ".join(_last_user_text(body.get("messages")).split())
    if len(said) > 200:
        said = said[:200] + "..."
    return (
        f"Hello from the llmroute demo provider! You said: {said}" if said else "Hello from the llmroute demo provider!"
    )


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


class DemoProvider:
    """ASGI app answering ``/v1/chat/completions``, ``/v1/messages``, ``/v1/embeddings`` and ``/v1/models``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"]
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            request = None
        if scope["method"] == "GET" and path == "/v1/models":
            await _json(
                send,
                200,
                {
                    "object": "list",
                    "data": [{"id": "demo", "object": "model", "created": _CREATED, "owned_by": "llmroute"}],
                },
            )
        elif not isinstance(request, dict):
            await _json(
                send,
                400,
                {"error": {"message": "Invalid JSON.", "type": "invalid_request_error", "param": None, "code": None}},
            )
        elif path == "/v1/chat/completions":
            await self._chat(send, request)
        elif path == "/v1/messages":
            await self._messages(send, request)
        elif path == "/v1/embeddings":
            await self._embeddings(send, request)
        else:
            await _json(
                send,
                404,
                {
                    "error": {
                        "message": f"The demo provider has no {path}.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
            )

    async def _chat(self, send: Send, request: dict[str, Any]) -> None:
        model = str(request.get("model", "demo"))
        text = demo_reply(request)
        usage = {"prompt_tokens": _tokens(json.dumps(request.get("messages"))), "completion_tokens": _tokens(text)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": "chatcmpl-demo", "created": _CREATED, "model": model}
        if not request.get("stream"):
            message = {"role": "assistant", "content": text, "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
            await _json(send, 200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
            return
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if include_usage else {}
        chunk = {**base, "object": "chat.completion.chunk"}
        deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""}, None)]
        deltas += [({"content": piece}, None) for piece in _pieces(text)]
        deltas.append(({}, "stop"))
        events = [
            _sse({**chunk, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": f}], **extra})
            for d, f in deltas
        ]
        if include_usage:
            events.append(_sse({**chunk, "choices": [], "usage": usage}))
        events.append(encode_sse("[DONE]"))
        await _stream(send, events)

    async def _messages(self, send: Send, request: dict[str, Any]) -> None:
        model = str(request.get("model", "demo"))
        text = demo_reply(request)
        in_tokens = _tokens(json.dumps(request.get("messages")))
        usage = {
            "input_tokens": in_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": _tokens(text),
        }
        message = {"id": "msg_demo", "type": "message", "role": "assistant", "model": model}
        if not request.get("stream"):
            content = [{"type": "text", "text": text}]
            await _json(
                send,
                200,
                {**message, "content": content, "stop_reason": "end_turn", "stop_sequence": None, "usage": usage},
            )
            return
        start: dict[str, Any] = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        events = [
            _sse({"type": "message_start", "message": start}, "message_start"),
            _sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            ),
        ]
        for piece in _pieces(text):
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
            events.append(_sse(delta, "content_block_delta"))
        events += [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": usage},
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
        await _stream(send, events)

    async def _embeddings(self, send: Send, request: dict[str, Any]) -> None:
        inputs = request.get("input", "")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = []
        for i, item in enumerate(items):
            digest = hashlib.sha256(str(item).encode()).digest()
            vector = [round(b / 255 * 2 - 1, 6) for b in digest[:8]]
            data.append({"object": "embedding", "index": i, "embedding": vector})
        tokens = sum(_tokens(str(item)) for item in items)
        body = {
            "object": "list",
            "data": data,
            "model": str(request.get("model", "demo")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        await _json(send, 200, body)


def _sse(data: dict[str, Any], event: str | None = None) -> bytes:
    return encode_sse(_dumps(data).decode(), event)


async def _json(send: Send, status: int, obj: dict[str, Any]) -> None:
    body = _dumps(obj)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _stream(send: Send, events: list[bytes]) -> None:
    headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for event in events:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
