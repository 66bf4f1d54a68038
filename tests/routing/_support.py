"""Fault-injecting upstreams and gateway configurations for the routing tests."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from starlette.types import Send

from asgi_llmroute.config import GatewayConfig, parse_config
from tests.support.gateway import ANTHROPIC_KEY, OPENAI_KEY, ROUTER_TOKEN
from tests.support.servers import Recorded, Reply, json_reply

_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST

AUTH = {"authorization": f"Bearer {ROUTER_TOKEN}"}


def chat_stream(url: str, model: str, messages: Any) -> Any:
    """A streamed chat completion request to the gateway at ``url`` with the router token (``httpx.stream``)."""
    return httpx.stream(
        "POST", f"{url}/v1/chat/completions", headers=AUTH, json={"model": model, "messages": messages, "stream": True}
    )


#: Short backoffs so that retries cost milliseconds in tests.
FAST_ROUTING = {"backoff_base": 0.01, "backoff_max": 0.02, "max_wait": 5.0, "deployment_header": True}


def openai_provider(name: str, url: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "api": "openai", "base_url": f"{url}/v1", "api_key": OPENAI_KEY, **options}


def anthropic_provider(name: str, url: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "api": "anthropic", "base_url": url, "api_key": ANTHROPIC_KEY, **options}


def routing_config(
    providers: list[dict[str, Any]],
    models: list[dict[str, Any]],
    *,
    routing: dict[str, Any] | None = None,
    **extra: Any,
) -> GatewayConfig:
    tokens = extra.pop("tokens", [{"name": "alice", "key": ROUTER_TOKEN}])
    data: dict[str, Any] = {
        "tokens": tokens,
        "providers": providers,
        "models": models,
        "routing": {**FAST_ROUTING, **(routing or {})},
        "logging": {"access": False},
        # Routing tests compare relayed bytes with the upstream's: keep its model id in them.
        "translation": {"response_model": "upstream"},
        **extra,
    }
    return parse_config(data, source="test")


def closed_port_url() -> str:
    """A 127.0.0.1 URL nothing listens on: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def script(*replies: Reply) -> Reply:
    """Answer the n-th request with ``replies[n]`` (the last one from then on)."""
    queue = list(replies)

    async def reply(request: Recorded, send: Send) -> None:
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        await current(request, send)

    return reply


async def _pause(seconds: float, stop: threading.Event | None) -> None:
    # Sleep, but stop early once the gateway has hung up (keeps server shutdown quick).
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (stop is not None and stop.is_set()):
        await asyncio.sleep(min(0.02, seconds))


def stalled_reply(
    delay: float, body: bytes, content_type: bytes = b"application/json", stop: threading.Event | None = None
) -> Reply:
    """Send the response headers at once and the body after ``delay`` seconds."""

    async def reply(request: Recorded, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
        await _pause(delay, stop)
        await send({"type": "http.response.body", "body": body})

    return reply


def slow_stream(chunks: list[bytes], delay: float, stop: threading.Event | None = None) -> Reply:
    """An SSE stream, one chunk every ``delay`` seconds, ending early once ``stop`` is set."""

    async def reply(request: Recorded, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for chunk in chunks:
            await _pause(delay, stop)
            if stop is not None and stop.is_set():
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return reply


def chat_completion(text: str, model: str = "gpt-up") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def chat_reply(text: str) -> Reply:
    return json_reply(chat_completion(text))


def openai_chunks(words: list[str]) -> list[bytes]:
    """An OpenAI chat stream, one event per word, then [DONE]."""

    def event(delta: dict[str, str], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-up", "choices": [choice]}
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

    out = [event({"role": "assistant", "content": w} if i == 0 else {"content": w}) for i, w in enumerate(words)]
    return [*out, event({}, "stop"), b"data: [DONE]\n\n"]


class RawServer:
    """A bare TCP server on 127.0.0.1: ``handler(conn)`` owns each connection (for broken HTTP)."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self._handler = handler
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            _read_request(conn)
            self._handler(conn)

    @contextmanager
    def running(self) -> Iterator[str]:
        self._thread.start()
        try:
            yield self.url
        finally:
            self._sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def dying_stream(events: list[bytes]) -> Callable[[socket.socket], None]:
    """Answer with an SSE stream (chunked) of ``events``, then drop the connection mid-body."""

    def handler(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for event in events:
            conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))
        # No terminating chunk: an abrupt close (RST) half-way through the stream.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)

    return handler


def reset_at_once(conn: socket.socket) -> None:
    """Accept the request, then reset the connection without a byte of answer."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
