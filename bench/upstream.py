"""The fake LLM upstream: canned OpenAI / Anthropic bodies and SSE streams, fast enough never to be the
bottleneck.

Two implementations serve the same URL paths (see `bodies.canned_responses`):

- nginx (default): one worker process serving the canned files. A stream is sent as one body, so it reaches
  the gateway in one or a few socket reads: this measures the relay's fixed cost per response.
- `python bench/upstream.py --port P --interval-ms N` (used with `run.py --stream-interval-ms N`): a raw
  asyncio (uvloop if installed) server that writes a stream one event per HTTP chunk, N ms apart, as a real
  model does. Each event then reaches the gateway in its own read: this measures the cost per relayed chunk.
  The long streams under `/paced/` (`bodies.PACED_EVENTS` events) are always paced, `--paced-interval-ms`
  apart (default 1 ms); run.py starts this server beside nginx for its `paced-*` scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/upstream.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bodies
from bench.procs import Server, pinned

_NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush off;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 10000000;
    client_body_buffer_size 64k;
    etag off;
    types {{ }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {docroot};
{locations}
    }}
}}
"""

# nginx's static handler answers POST with 405; `error_page 405 =200 $uri` turns that into a GET of the same
# file, which is the cheapest way to make nginx answer a POST with a canned body.
_LOCATION = """\
        location = {path} {{
            default_type "{content_type}";
            error_page 405 =200 $uri;
        }}"""


def nginx_available() -> bool:
    return shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists()


def nginx_server(prefix: Path, port: int, *, cpu: int | str | None) -> Server:
    """An nginx serving the canned bodies on 127.0.0.1:`port`, its files and logs under `prefix`."""
    prefix.chmod(0o755)  # the worker process may run as an unprivileged user
    docroot = prefix / "docroot"
    bodies.write_all(docroot)
    locations = "\n".join(_LOCATION.format(path=c.path, content_type=c.content_type) for c in bodies.canned_responses())
    conf = prefix / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(prefix=prefix, port=port, docroot=docroot, locations=locations))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    return Server("nginx", pinned([binary, "-p", str(prefix), "-c", str(conf)], cpu), log=prefix / "nginx.out")


def python_server(
    prefix: Path,
    port: int,
    *,
    interval_ms: float,
    cpu: int | str | None,
    paced_interval_ms: float = 1.0,
    name: str = "upstream",
) -> Server:
    """The pacing asyncio upstream (this file run as a script) on 127.0.0.1:`port`."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--port",
        str(port),
        "--interval-ms",
        str(interval_ms),
        "--paced-interval-ms",
        str(paced_interval_ms),
    ]
    return Server(name, pinned(cmd, cpu), log=prefix / f"{name}.out")


# --- the pacing upstream --------------------------------------------------------------------------------


class _Upstream(asyncio.Protocol):
    """HTTP/1.1 keep-alive server for the canned bodies; streams are sent chunked, one event per chunk."""

    def __init__(self, routes: dict[str, bodies.Canned], interval: float, paced_interval: float) -> None:
        self._routes = routes
        self._interval = interval
        self._paced_interval = paced_interval
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._busy: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        if self._busy is not None:
            self._busy.cancel()
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._serve()

    def _serve(self) -> None:
        # One request at a time per connection (clients do not pipeline POSTs).
        while self._busy is None and self._transport is not None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            parts = head[0].split(" ")
            canned = self._routes.get(parts[1].split("?")[0]) if len(parts) == 3 else None
            if canned is None:
                self._transport.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            elif len(canned.parts) == 1:
                body = canned.body
                self._transport.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s"
                    % (canned.content_type.encode(), len(body), body)
                )
            else:
                self._busy = asyncio.ensure_future(self._stream(canned))

    async def _stream(self, canned: bodies.Canned) -> None:
        try:
            transport = self._transport
            assert transport is not None
            transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
                % canned.content_type.encode()
            )
            interval = self._paced_interval if canned.paced else self._interval
            # Event i is due at start + (i + 1) * interval: a late timer does not delay the events after it,
            # so a stream lasts len(parts) * interval however the sleeps jitter.
            start = asyncio.get_running_loop().time()
            for i, part in enumerate(canned.parts):
                if interval > 0:
                    await asyncio.sleep(max(0.0, start + (i + 1) * interval - asyncio.get_running_loop().time()))
                if transport.is_closing():
                    return
                transport.write(b"%x\r\n%s\r\n" % (len(part), part))
            transport.write(b"0\r\n\r\n")
        finally:
            self._busy = None
        self._serve()


async def _serve_forever(port: int, interval: float, paced_interval: float) -> None:
    routes = {c.path: c for c in bodies.canned_responses()}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Upstream(routes, interval, paced_interval), "127.0.0.1", port, backlog=4096
    )
    print(
        f"upstream on http://127.0.0.1:{port} (stream interval {interval * 1000:g} ms, "
        f"/paced/ {paced_interval * 1000:g} ms)",
        flush=True,
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval-ms", type=float, default=0.0, help="pause before each stream event")
    parser.add_argument(
        "--paced-interval-ms", type=float, default=1.0, help="pause before each event of the /paced/ streams"
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args.port, args.interval_ms / 1000, args.paced_interval_ms / 1000))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
