"""`llmroute serve` with another upstream client, to compare clients side by side (`run.py --variant`).

    python -m bench.serve_variant CLIENT serve --config ... --workers 1

CLIENT is one of:

- ``default``: the gateway as it ships (whatever source tree is first on PYTHONPATH);
- ``httpx-aiohttp``: httpx's client over the ``httpx-aiohttp`` package's ``AiohttpTransport``;
- ``aiohttp-direct``: no httpx at all on the upstream hop: a minimal client object that gives the
  forwarder what it uses of httpx (``build_request``, ``send(stream=True)``, the response's status,
  raw headers and ``aiter_raw``) straight from an ``aiohttp.ClientSession``. It is the floor for an
  aiohttp-based hop, not a complete client (no proxies, no mounts for the demo provider).

Only ``--workers 1`` (the process that runs the gateway is this one).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx


def _httpx_aiohttp_client(upstream: object = None) -> httpx.AsyncClient:
    from httpx_aiohttp import AiohttpTransport

    from asgi_llmroute.forward import pooled_client

    return pooled_client(transport=AiohttpTransport())


class _DirectRequest:
    __slots__ = ("content", "headers", "method", "timeout", "url")

    def __init__(self, method: str, url: str, headers: list[tuple[bytes, bytes]], content: bytes, timeout: Any):
        self.method = method
        self.url = url
        self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        self.content = content
        self.timeout = timeout


class _DirectHeaders:
    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def get(self, name: str, default: str = "") -> str:
        wanted = name.encode().lower()
        for k, v in self.raw:
            if k.lower() == wanted:
                return str(v.decode("latin-1"))
        return default


class _DirectResponse:
    def __init__(self, response: Any) -> None:
        self._response = response
        self.status_code = response.status
        self.headers = _DirectHeaders(response.raw_headers)
        self._done = False

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while chunk := await content.readany():
                yield chunk
        except Exception as exc:
            raise httpx.ReadError(str(exc)) from exc
        self._done = True

    async def aclose(self) -> None:
        if self._done:
            self._response.release()
        else:
            self._response.close()


class DirectClient:
    """Just enough of ``httpx.AsyncClient`` for the forwarder, on aiohttp (see the module docstring)."""

    def __init__(self, upstream: object = None) -> None:  # called as default_http_client(config.upstream)
        self._session: Any = None

    def build_request(self, method: str, url: str, *, headers: Any, content: bytes, timeout: Any) -> _DirectRequest:
        return _DirectRequest(method, url, headers, content, timeout)

    async def send(self, request: _DirectRequest, *, stream: bool = True) -> _DirectResponse:
        import aiohttp
        import yarl

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=256, keepalive_timeout=30),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
            self._session._retry_connection = False
            self._timeout = aiohttp.ClientTimeout(total=None, sock_read=request.timeout.read)
        try:
            response = await self._session._request(
                request.method,
                yarl.URL(request.url, encoded=True),
                headers=request.headers,
                data=request.content or None,
                allow_redirects=False,
                timeout=self._timeout,
            )
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        except Exception as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc
        return _DirectResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def main() -> int:
    client, argv = sys.argv[1], sys.argv[2:]
    from asgi_llmroute import cli, gateway

    if client == "httpx-aiohttp":
        gateway.default_http_client = _httpx_aiohttp_client
    elif client == "aiohttp-direct":
        gateway.default_http_client = DirectClient  # type: ignore[assignment]
    elif client != "default":
        raise SystemExit(f"unknown client {client!r}")
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
