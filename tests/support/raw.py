"""Raw HTTP/1.1 servers whose every byte a test controls: threads on blocking sockets, so that the
same server serves tests on asyncio and on trio."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Conn", "RawServer", "keep_alive", "raw_server"]


class Conn:
    """One accepted connection, read and written by a handler running in its own thread."""

    def __init__(self, sock: socket.socket, server: RawServer) -> None:
        self.sock = sock
        self.server = server
        self.buffer = b""

    def read_request(self) -> tuple[bytes, bytes]:
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("client closed")
            self.buffer += data
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(self.buffer) < length:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("client closed")
            self.buffer += data
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        with self.server.lock:
            self.server.requests.append(head + b"\r\n\r\n" + body)
        return head, body

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)


Handler = Callable[[Conn], None]


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.lock = threading.Lock()
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stopping = False

    def serve(self) -> None:
        while not self.stopping:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            threading.Thread(target=self._run, args=(sock,), daemon=True).start()

    def _run(self, sock: socket.socket) -> None:
        try:
            self.handler(Conn(sock, self))
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= 1
            sock.close()


@contextmanager
def raw_server(handler: Handler) -> Iterator[RawServer]:
    server = RawServer(handler)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping = True
        server.listener.close()


def keep_alive(body: bytes, extra: bytes = b"", delay: float = 0.0) -> Handler:
    """Answer every request on the connection with ``body`` (after ``delay`` seconds)."""

    def handler(conn: Conn) -> None:
        while True:
            conn.read_request()
            if delay:
                time.sleep(delay)
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra)
            conn.send(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    return handler
