"""The forwarder's upstream hop: aiohttp's HTTP/1.1 client under the httpx transport API.

The forwarder speaks httpx (requests, responses, timeouts, exceptions, ``mounts`` for in-process
providers); below it, :class:`UpstreamTransport` sends each request with aiohttp's client, a mature
HTTP/1.1 implementation with a C parser, keep-alive pooling without per-request socket polling, and
flow control on response bodies (docs/performance.md has the measurements behind this choice).

What the gateway needs from the hop, and how this module makes sure of it:

- **No replay.** aiohttp re-sends an idempotent request (GET, PUT, DELETE, ...) once when a reused
  connection breaks, even after the request was written. The transport turns that off: a request
  that may have reached the server is never sent again here; whether to try again is the retry
  layer's decision, counted there.
- **Header validation.** Names must be HTTP tokens and values must not hold CR, LF or NUL, so no
  header (a provider's configured ``headers`` above all) can inject another header or a request.
- **Proxies** from ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` (and their lower-case forms), read
  once when the transport is made; an unsupported proxy scheme (``socks5://``) is refused at once.
- **A bound on connections per origin** (``max_connections_per_origin``); requests beyond it wait
  for a free connection, within the request's pool timeout.
- ``HEAD`` responses and ``1xx`` interim responses are framed by aiohttp's parser.

Under an event loop other than asyncio (trio), aiohttp cannot run: the transport then sends through
httpx's own transport (httpcore), which offers the same guarantees (it never re-sends a request,
validates headers and honours the same proxy variables).
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import unquote, urlsplit

import aiohttp
import httpx
import yarl

__all__ = ["UpstreamTransport", "validate_header"]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\r\n\x00]")
_PROXY_SCHEMES = ("http", "https")


def validate_header(name: bytes, value: bytes) -> None:
    """Raise ``ValueError`` unless ``name: value`` is one well-formed HTTP header line."""
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid HTTP header name {name!r}")
    if _BAD_VALUE.search(value) is not None:
        raise ValueError(f"the value of HTTP header {name.decode('latin-1')!r} contains CR, LF or NUL")


def environment_proxies() -> dict[str, str]:
    """``{"http": url, "https": url, "no": hosts}`` from the proxy variables; unsupported proxies refused."""
    proxies = urllib.request.getproxies_environment()
    for scheme in ("http", "https"):
        url = proxies.get(scheme)
        if url and urlsplit(url).scheme not in _PROXY_SCHEMES:
            raise ValueError(
                f"{scheme.upper()}_PROXY={_redact(url)!r}: only http:// and https:// proxies are supported "
                "for the upstream connections"
            )
    return {k: v for k, v in proxies.items() if k in ("http", "https", "no")}


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.username}:***@{parts.hostname}:{parts.port or ''}".rstrip(":")).geturl()


class UpstreamTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport on aiohttp: HTTP/1.1 keep-alive connections pooled per origin.

    ``max_connections_per_origin`` bounds the open connections to one scheme/host/port;
    ``keepalive_expiry`` closes connections idle for longer; ``ssl_context`` verifies TLS
    (default: httpx's, certifi's roots). The proxy variables are read when the transport is made.
    """

    def __init__(
        self,
        *,
        max_connections_per_origin: int = 256,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections_per_origin < 1:
            raise ValueError("max_connections_per_origin must be at least 1")
        self._per_origin = max_connections_per_origin
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._proxies = environment_proxies()
        self._proxy_cache: dict[tuple[str, str, int | None], tuple[str | None, str | None]] = {}
        self._timeouts: dict[tuple[float | None, float | None, float | None], aiohttp.ClientTimeout] = {}
        self._session: aiohttp.ClientSession | None = None
        self._fallback: httpx.AsyncClient | None = None
        self._closed = False

    @property
    def proxies(self) -> dict[str, str]:
        """The proxies in use, read from the environment when the transport was made."""
        return dict(self._proxies)

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,  # no global bound: the bound is per origin
            limit_per_host=self._per_origin,
            keepalive_timeout=self._keepalive_expiry,
            ssl=self._ssl(),
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),  # httpx has set its own
            trust_env=False,  # the proxy environment is read once, here (`_proxy_for`)
            raise_for_status=False,
        )
        # aiohttp re-sends idempotent requests once when a reused connection breaks, even after the
        # request was written: never here (see the module docstring).
        session._retry_connection = False
        return session

    def _fallback_client(self) -> httpx.AsyncClient:
        if self._fallback is None:
            # httpx reads the same proxy variables (trust_env) and mounts a proxy transport per scheme.
            self._fallback = httpx.AsyncClient(
                verify=self._ssl(),
                limits=self._limits(),
                trust_env=True,
                follow_redirects=False,
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            )
        return self._fallback

    def _limits(self) -> httpx.Limits:
        return httpx.Limits(max_connections=self._per_origin, keepalive_expiry=self._keepalive_expiry)

    def _proxy_for(self, url: httpx.URL) -> tuple[str | None, str | None]:
        """The proxy for ``url`` (None: direct) and its ``Proxy-Authorization`` value, once per origin."""
        key = (url.scheme, url.host, url.port)
        found = self._proxy_cache.get(key)
        if found is None:
            proxy = self._proxies.get(url.scheme)
            no_proxy = self._proxies.get("no")
            netloc = f"{url.host}:{url.port}" if url.port else url.host
            if proxy and no_proxy and urllib.request.proxy_bypass_environment(netloc, {"no": no_proxy}):  # type: ignore[attr-defined]
                proxy = None
            authorization = None
            if proxy:
                parts = urlsplit(proxy)
                if parts.username is not None:
                    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
                    authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
                    proxy = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
            found = self._proxy_cache[key] = (proxy or None, authorization)
        return found

    def _timeout(self, timeouts: Mapping[str, float | None]) -> aiohttp.ClientTimeout:
        key = (timeouts.get("connect"), timeouts.get("read"), timeouts.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            connect, read, pool = key
            # aiohttp's `connect` covers waiting for a pooled connection and opening one; `sock_connect`
            # opening one; `sock_read` each read (httpx's read timeout).
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, connect=pool, sock_connect=connect, sock_read=read
            )
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"Unsupported URL scheme {url.scheme!r}", request=request)
        headers: list[tuple[str, str]] = []
        try:
            for name, value in request.headers.raw:
                validate_header(name, value)
                if name.lower() != b"transfer-encoding":  # the body goes with a length
                    headers.append((name.decode("latin-1"), value.decode("latin-1")))
        except ValueError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from None
        if self._closed:
            raise RuntimeError("the upstream transport is closed")
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): httpx's own transport works everywhere
            return await self._fallback_client().send(request, stream=True)
        session = self._session
        if session is None:
            session = self._session = self._open_session()
        body = request.content if isinstance(request.stream, httpx.ByteStream) else await request.aread()
        proxy, authorization = self._proxy_for(url)
        proxy_headers = None
        if authorization is not None:  # aiohttp sends it on CONNECT (https), or we do on the request (http)
            if url.scheme == "https":
                proxy_headers = {"Proxy-Authorization": authorization}
            else:
                headers.append(("Proxy-Authorization", authorization))
        try:
            response = await session._request(
                request.method,
                yarl.URL(str(url), encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
                proxy=proxy,
                proxy_headers=proxy_headers,
            )
        except Exception as exc:
            raise _translate(exc, request, before_response=True) from exc
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("latin-1")},
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
        if self._fallback is not None:
            await self._fallback.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    """The response body as it arrives (what is buffered, in one piece); closing early drops the connection."""

    __slots__ = ("_done", "_request", "_response")

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                yield chunk
        except BaseException as exc:
            self._response.close()
            if isinstance(exc, Exception):
                raise _translate(exc, self._request, before_response=False) from exc
            raise
        self._done = True

    async def aclose(self) -> None:
        # No awaiting here: this also runs inside a cancelled scope (the client went away).
        if self._done:
            self._response.release()  # back to the pool
        else:
            self._response.close()  # unread body: the connection cannot be reused


def _translate(exc: Exception, request: httpx.Request, *, before_response: bool) -> Exception:
    """The httpx exception for an aiohttp failure, with aiohttp's message (it holds no secret)."""
    message = str(exc) or type(exc).__name__
    error: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        error = httpx.ConnectTimeout
    elif isinstance(exc, asyncio.TimeoutError):  # aiohttp.SocketTimeoutError and friends
        error = httpx.ReadTimeout
        message = message if message != "TimeoutError" else "Timed out reading from the upstream"
    elif isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        error = httpx.ProxyError
    elif isinstance(exc, aiohttp.ClientConnectorError):
        error = httpx.ConnectError
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        error = httpx.RemoteProtocolError
        message = (
            "Server disconnected without sending a response."
            if before_response
            else "Peer closed connection without sending complete message body"
        )
    elif isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        error = httpx.RemoteProtocolError
    elif isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        error = httpx.UnsupportedProtocol
    elif isinstance(exc, (aiohttp.ClientError, OSError)):
        error = httpx.ReadError if not before_response else httpx.NetworkError
    elif isinstance(exc, ValueError):  # aiohttp's own header checks
        error = httpx.LocalProtocolError
    else:
        return exc
    return error(message, request=request)
