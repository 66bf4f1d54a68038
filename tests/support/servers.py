"""Real servers for tests: uvicorn on 127.0.0.1 with a random port, in a background thread."""

from __future__ import annotations

import asyncio
import json
import socket
import socketserver
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send


@contextmanager
def serve(app: ASGIApp, **options: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a random 127.0.0.1 port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="auto", access_log=False, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when it arrived (its head and body were read)

    def json(self) -> Any:
        return json.loads(self.body)


Reply = Callable[[Recorded, Send], Awaitable[None]]


async def read_body(receive: Receive) -> bytes:
    """The whole request body of an ASGI request, however many messages it came in."""
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)


@dataclass
class Upstream:
    """A scriptable upstream: records every request, answers with ``reply`` (JSON 200 by default)."""

    reply: Reply | None = None
    requests: list[Recorded] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            name = k.decode("latin-1")
            headers[name] = f"{headers[name]}, {v.decode('latin-1')}" if name in headers else v.decode("latin-1")
        recorded = Recorded(scope["method"], scope["path"], scope["query_string"].decode(), headers, body)
        self.requests.append(recorded)
        watcher = asyncio.ensure_future(self._watch_disconnect(receive))
        try:
            await (self.reply or json_reply({"ok": True}))(recorded, send)
        except OSError:
            self.cancelled.set()
        finally:
            watcher.cancel()

    async def _watch_disconnect(self, receive: Receive) -> None:
        message = await receive()
        if message["type"] == "http.disconnect":
            self.cancelled.set()

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    def reset(self) -> Upstream:
        """Forget the requests, the reply and any cancellation (a module-scoped upstream, per test); returns it."""
        self.reply = None
        self.requests.clear()
        self.cancelled.clear()
        return self


def json_reply(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    async def reply(request: Recorded, send: Send) -> None:
        body = json.dumps(obj).encode()
        hdrs = [(b"content-type", b"application/json")]
        hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": body})

    return reply


def sse_reply(chunks: list[bytes], delay: float = 0.0, status: int = 200) -> Reply:
    async def reply(request: Recorded, send: Send) -> None:
        hdrs = [(b"content-type", b"text/event-stream; charset=utf-8")]
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        for chunk in chunks:
            if delay:
                await asyncio.sleep(delay)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return reply


@contextmanager
def canned_http_server(response: bytes) -> Iterator[str]:
    """A raw HTTP/1.1 server answering every request with ``response``, byte for byte."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while True:
                length = 0
                line = self.rfile.readline()
                if not line:
                    return
                while line not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                    line = self.rfile.readline()
                self.rfile.read(length)
                self.wfile.write(response)
                self.wfile.flush()

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


def with_forwarder_lifespan(app: ASGIApp, forwarder: Any) -> ASGIApp:
    """``app`` answering lifespan events itself, closing ``forwarder`` at shutdown (stacks built by hand)."""

    async def with_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await forwarder.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    return with_lifespan


@contextmanager
def serve_upstreams(*replies: Any) -> Iterator[list[tuple[Upstream, str]]]:
    """One scriptable :class:`Upstream` per reply, each served: ``[(upstream, url), ...]``."""
    with ExitStack() as stack:
        out = []
        for reply in replies:
            upstream = Upstream(reply=reply)
            out.append((upstream, stack.enter_context(serve(upstream))))
        yield out
