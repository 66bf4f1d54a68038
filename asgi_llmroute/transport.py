"""The forwarder's upstream hop: aiohttp's HTTP/1.1 client under the httpx transport API.

One cohesive thing over 400 lines: the upstream hop, its two backends (aiohttp, httpcore under trio) and
their response bodies, which must keep the same guarantees and are read side by side.

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
import functools
import os
import re
import ssl
import urllib.request
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpx

if TYPE_CHECKING:
    import aiohttp
    import multidict
    import yarl

# aiohttp (and yarl, which comes with it) is imported by `UpstreamTransport.prepare` (the functions that
# use it import it too: a dictionary lookup once it is loaded), so a gateway whose providers are all
# in-process (the embedded default's demo) never loads it.

__all__ = ["UpstreamResponse", "UpstreamTransport", "validate_header"]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Names joined with ":" (not a token character): all of a request's names checked in one match.
_TOKENS = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?::[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*")
_BAD_VALUE = re.compile(rb"[\r\n\x00]")
# Upstream URLs seen (a handful per provider), each worked out once: more are forgotten together.
_MAX_TARGETS = 4096
_PROXY_SCHEMES = ("http", "https")


def validate_header(name: bytes, value: bytes) -> None:
    """Raise ``ValueError`` unless ``name: value`` is one well-formed HTTP header line."""
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(f"invalid HTTP header name {name!r}")
    if _BAD_VALUE.search(value) is not None:
        raise ValueError(f"the value of HTTP header {name.decode('latin-1')!r} contains CR, LF or NUL")


def _checked_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """``headers`` as aiohttp takes them, without ``transfer-encoding`` (the body goes with a length);
    ``ValueError`` for a malformed one. One regular expression pass over all names and one over all
    values; the header at fault is looked for only when one failed."""
    names = b":".join([name for name, _ in headers])
    if (headers and _TOKENS.fullmatch(names) is None) or _BAD_VALUE.search(b"".join([v for _, v in headers])):
        for name, value in headers:
            validate_header(name, value)
    return [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in headers
        if name.lower() != b"transfer-encoding"
    ]


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


@functools.lru_cache(maxsize=4)
def _verifying_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    # httpx's context (certifi's roots, or SSL_CERT_FILE / SSL_CERT_DIR), which reads those variables itself.
    return httpx.create_ssl_context()


def default_ssl_context() -> ssl.SSLContext:
    """The TLS context of transports made without one: one per process (per ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR``), since loading the CA roots takes tens of milliseconds, too long for a request."""
    return _verifying_context(os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=f"{parts.username}:***@{parts.hostname}:{parts.port or ''}".rstrip(":")).geturl()


class UpstreamTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport on aiohttp: HTTP/1.1 keep-alive connections pooled per origin.

    ``max_connections_per_origin`` bounds the open connections to one scheme/host/port;
    ``keepalive_expiry`` closes connections idle for longer; ``ssl_context`` verifies TLS
    (default: httpx's, certifi's roots, made once per process: :func:`default_ssl_context`). The proxy
    variables are read when the transport is made; aiohttp is imported and the TLS context made there
    too (:meth:`prepare`), not in a request, so that no request's deadlines pay for them. With
    ``prepare=False`` (a gateway with no network provider yet) they wait for :meth:`prepare` or,
    failing that, the first request.
    """

    def __init__(
        self,
        *,
        max_connections_per_origin: int = 256,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        prepare: bool = True,
    ) -> None:
        if max_connections_per_origin < 1:
            raise ValueError("max_connections_per_origin must be at least 1")
        self._per_origin = max_connections_per_origin
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._proxies = environment_proxies()
        self._proxy_cache: dict[tuple[str, str, int | None], tuple[str | None, str | None]] = {}
        self._timeouts: dict[tuple[float | None, float | None, float | None], aiohttp.ClientTimeout] = {}
        self._targets: dict[str, tuple[yarl.URL, str | None, str | None, httpx.URL]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._no_headers: multidict.CIMultiDictProxy[str] | None = None  # what responses keep of the request's
        self._fallback: httpx.AsyncClient | None = None
        self._closed = False
        if prepare:
            self.prepare()

    def prepare(self, *, tls: bool = True) -> None:
        """Import aiohttp and (``tls``, or an ``https://`` proxy in use) make the TLS context: blocking
        work (about a quarter of the gateway's start-up, mostly loading CA bundles) done once, before
        requests need it. Without ``tls`` the context waits for the first ``https://`` request or a later
        ``prepare()``: a gateway whose upstreams are all ``http://`` never loads the CA roots. Thread-safe."""
        import aiohttp  # noqa: F401  (aiohttp's own import makes two TLS contexts)
        import yarl  # noqa: F401

        tls = tls or any(self._proxies.get(s, "").startswith("https:") for s in _PROXY_SCHEMES)
        if tls and self._ssl_context is None:
            self._ssl_context = default_ssl_context()

    @property
    def proxies(self) -> dict[str, str]:
        """The proxies in use, read from the environment when the transport was made."""
        return dict(self._proxies)

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self.prepare()
        assert self._ssl_context is not None
        return self._ssl_context

    def _open_session(self) -> aiohttp.ClientSession:
        self.prepare(tls=False)
        import aiohttp

        # An https:// request passes the context itself (`_send`), made at its first use if no upstream
        # was https:// when the transport was prepared.
        connector = aiohttp.TCPConnector(
            limit=0,  # no global bound: the bound is per origin
            limit_per_host=self._per_origin,
            keepalive_timeout=self._keepalive_expiry,
            ssl=self._ssl_context or True,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),  # httpx has set its own
            trust_env=False,  # the proxy environment is read once, here (`_proxy_for`)
            raise_for_status=False,
        )
        import multidict  # aiohttp's dependency, imported by it

        self._no_headers = multidict.CIMultiDictProxy(multidict.CIMultiDict[str]())
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

    def _timeout(self, key: tuple[float | None, float | None, float | None]) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(key)
        if timeout is None:
            import aiohttp

            connect, read, pool = key
            # aiohttp's `connect` covers waiting for a pooled connection and opening one; `sock_connect`
            # opening one; `sock_read` each read (httpx's read timeout).
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, connect=pool, sock_connect=connect, sock_read=read
            )
        return timeout

    def _target(self, url: str) -> tuple[yarl.URL, str | None, str | None, httpx.URL]:
        """``url`` parsed and encoded as httpx does, its proxy and ``Proxy-Authorization`` (once per URL)."""
        found = self._targets.get(url)
        if found is None:
            parsed = httpx.URL(url)
            if parsed.scheme not in ("http", "https"):
                raise httpx.UnsupportedProtocol(f"Unsupported URL scheme {parsed.scheme!r}")
            proxy, authorization = self._proxy_for(parsed)
            if len(self._targets) >= _MAX_TARGETS:
                self._targets.clear()
            import yarl

            found = self._targets[url] = (yarl.URL(str(parsed), encoded=True), proxy, authorization, parsed)
        return found

    async def open(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeouts: tuple[float | None, float | None, float | None],
    ) -> UpstreamResponse:
        """Send one request; the response once its head is in (the body is read with ``read()``).

        The forwarder's direct path (no ``httpx.Request`` or ``httpx.Response`` built): ``url`` as a
        string (encoded as httpx encodes it), ``headers`` as raw pairs, ``timeouts`` as
        ``(connect, read, pool)`` seconds. Failures raise the same ``httpx`` exceptions as
        :meth:`handle_async_request`, which sends through here too.
        """
        target = self._target(url)
        try:
            checked = _checked_headers(headers)
        except ValueError as exc:
            raise httpx.LocalProtocolError(str(exc)) from None
        if self._closed:
            raise RuntimeError("the upstream transport is closed")
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): httpx's own transport works everywhere
            request = httpx.Request(method, target[3], headers=headers, content=body)
            connect, read, pool = timeouts
            request.extensions["timeout"] = {"connect": connect, "read": read, "pool": pool}
            return _HttpxBody(await self._fallback_client().send(request, stream=True))
        return await self._send(method, target, checked, body, timeouts)

    async def _send(
        self,
        method: str,
        target: tuple[yarl.URL, str | None, str | None, httpx.URL],
        checked: list[tuple[str, str]],
        body: bytes,
        timeouts: tuple[float | None, float | None, float | None],
    ) -> _AiohttpBody:
        url, proxy, authorization, _ = target
        session = self._session
        if session is None:
            session = self._session = self._open_session()
        proxy_headers = None
        if authorization is not None:  # aiohttp sends it on CONNECT (https), or we do on the request (http)
            if url.scheme == "https":
                proxy_headers = {"Proxy-Authorization": authorization}
            else:
                checked.append(("Proxy-Authorization", authorization))
        try:
            response = await session._request(
                method,
                url,
                headers=checked,
                data=body or None,
                allow_redirects=False,
                ssl=self._ssl() if url.scheme == "https" else True,
                timeout=self._timeout(timeouts),
                proxy=proxy,
                proxy_headers=proxy_headers,
            )
        except Exception as exc:
            raise _translate(exc, before_response=True) from exc
        # aiohttp keeps the request's headers (for raise_for_status, which is not used) for the whole
        # response: ~1.3 KiB per open stream. Its other fields stay.
        info = response._request_info
        assert self._no_headers is not None  # made with the session
        response._request_info = info._replace(headers=self._no_headers)
        return _AiohttpBody(response)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"Unsupported URL scheme {url.scheme!r}", request=request)
        try:
            checked = _checked_headers(request.headers.raw)
        except ValueError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from None
        if self._closed:
            raise RuntimeError("the upstream transport is closed")
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): httpx's own transport works everywhere
            return await self._fallback_client().send(request, stream=True)
        body = request.content if isinstance(request.stream, httpx.ByteStream) else await request.aread()
        timeout = request.extensions.get("timeout", {})
        try:
            response = await self._send(
                request.method,
                self._target(str(url)),
                checked,
                body,
                (timeout.get("connect"), timeout.get("read"), timeout.get("pool")),
            )
        except httpx.RequestError as exc:
            exc.request = request
            raise
        raw = response.response
        return httpx.Response(
            raw.status,
            headers=raw.raw_headers,
            stream=_ResponseStream(response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (raw.reason or "").encode("latin-1")},
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
        if self._fallback is not None:
            await self._fallback.aclose()


class UpstreamResponse:
    """An upstream response as the forwarder reads it: ``status``, ``headers`` (raw pairs, names as
    the upstream wrote them), and the body by :meth:`read`.

    ``read()`` returns what has arrived (everything buffered, in one piece; ``b""`` at the end) and
    raises ``httpx`` exceptions; after it, ``eof`` says whether the body is complete, so that the
    last piece and the end can go to the client together. :meth:`aclose` never waits: it also runs
    in a cancelled scope (the client went away).
    """

    __slots__ = ("eof", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.headers = headers
        self.eof = False

    async def read(self) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    async def aclose(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


#: aiohttp's StreamReader when its private fields are those `_AiohttpBody.read` reads in place of
#: ``readany()`` (checked once, at the first response), else False: another aiohttp uses ``readany()``.
_INLINE_READER: Any = None
_READER_FIELDS = frozenset({"_buffer", "_eof", "_waiter", "_timer", "_protocol", "_loop", "_exception"})


def _inline_reader() -> Any:
    global _INLINE_READER
    from aiohttp.streams import StreamReader

    fields = set(getattr(StreamReader, "__slots__", ()))
    _INLINE_READER = StreamReader if fields >= _READER_FIELDS and hasattr(StreamReader, "_read_nowait") else False
    return _INLINE_READER


class _AiohttpBody(UpstreamResponse):
    __slots__ = ("_content", "_plain", "response")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        super().__init__(response.status, response.raw_headers)  # type: ignore[arg-type]
        self.response = response
        self._content = response.content
        # Not a HEAD response's EmptyStreamReader, and an aiohttp whose reader has what `read` uses.
        reader = _INLINE_READER if _INLINE_READER is not None else _inline_reader()
        self._plain = type(self._content) is reader

    async def read(self) -> bytes:
        # aiohttp's ``StreamReader.readany()`` written out: the coroutine frame it adds is resumed, with
        # every frame of the request's task, each time an event arrives (docs/performance.md).
        content = self._content
        try:
            if not self._plain:
                chunk = await content.readany()
                self.eof = content.at_eof()
                return chunk
            if content._exception is not None:
                raise content._exception
            while not content._buffer and not content._eof:
                if not content._protocol.connected:
                    raise RuntimeError("Connection closed.")
                if content._waiter is not None:
                    raise RuntimeError("readany() called while another coroutine is already waiting for incoming data")
                waiter = content._waiter = content._loop.create_future()
                try:
                    with content._timer:
                        await waiter
                finally:
                    content._waiter = None
            chunk = content._read_nowait(-1)
        except BaseException as exc:
            self.response.close()
            if isinstance(exc, Exception):
                raise _translate(exc, before_response=False) from exc
            raise
        self.eof = content._eof and not content._buffer  # at_eof()
        return chunk

    async def aclose(self) -> None:
        if self.eof:
            self.response.release()  # back to the pool
        else:
            self.response.close()  # unread body: the connection cannot be reused


class _HttpxBody(UpstreamResponse):
    """An ``httpx.Response`` (any client, any transport) read the same way."""

    __slots__ = ("_chunks", "_response")

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code, response.headers.raw)
        self._response = response
        self._chunks = response.aiter_raw().__aiter__()

    async def read(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            self.eof = True
            return b""

    async def aclose(self) -> None:
        await self._response.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    """The body of :meth:`UpstreamTransport.handle_async_request`'s response (httpx's stream API)."""

    __slots__ = ("_body", "_request")

    def __init__(self, body: _AiohttpBody, request: httpx.Request) -> None:
        self._body = body
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = self._body.read
        try:
            while chunk := await read():
                yield chunk
        except httpx.RequestError as exc:
            exc.request = self._request
            raise

    async def aclose(self) -> None:
        await self._body.aclose()


def _translate(exc: Exception, *, before_response: bool) -> Exception:
    """The httpx exception for an aiohttp failure, with aiohttp's message (it holds no secret)."""
    import aiohttp

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
    return error(message)
