"""Credentials that are not a fixed header: token sources and request signers.

The forwarder builds the upstream request (URL, headers, final body), then, when the provider has
an :class:`Authenticator`, awaits ``authorize(request)``, which adds or replaces headers. Two
ready-made bases:

- :class:`TokenSource`: a bearer token fetched from somewhere (an OAuth token endpoint, a metadata
  server) and cached until shortly before it expires; one fetch at a time however many requests
  wait, and the requests that waited for a fetch that failed get its error rather than a fetch each.
  Subclasses implement ``fetch()`` (async) or ``fetch_blocking()`` (run in a worker thread, for
  libraries that block, such as google-auth).
- :class:`RequestSigner`: a signature over the exact request (AWS SigV4). Subclasses implement
  ``sign(method, url, headers, body)``, run in a worker thread unless ``blocking = False``.

Failures raise :class:`AuthError`: the forwarder answers 502 ``upstream_auth`` naming the provider,
never the secret, and the retry layer treats it like any failed attempt.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    import httpx

__all__ = ["AuthError", "Authenticator", "RequestSigner", "TokenSource"]


class AuthError(Exception):
    """Credentials for an upstream could not be obtained; ``str(error)`` is safe to log and show."""


@runtime_checkable
class Authenticator(Protocol):
    """Adds credentials to one upstream request (called once per attempt, after the body is final)."""

    async def authorize(self, request: httpx.Request) -> None: ...


class TokenSource:
    """Bearer tokens that expire: fetched once, reused until ``refresh_margin`` seconds before expiry."""

    #: Refresh this long before the token expires (tokens with a shorter life are refreshed at half-life).
    refresh_margin = 300.0
    header = "authorization"

    def __init__(self) -> None:
        self._token: str | None = None
        self._refresh_at = 0.0
        self._lock: anyio.Lock | None = None
        self._fetches = 0  # fetches finished, for requests that waited for one
        self._failure: str | None = None  # why the last fetch failed (None: it succeeded)

    async def fetch(self) -> tuple[str, float]:
        """A new token and its lifetime in seconds. Default: ``fetch_blocking`` in a worker thread."""
        return await anyio.to_thread.run_sync(self.fetch_blocking)

    def fetch_blocking(self) -> tuple[str, float]:
        raise NotImplementedError("implement fetch() or fetch_blocking()")

    async def token(self) -> str:
        token = self._token
        if token is not None and time.monotonic() < self._refresh_at:
            return token
        if self._lock is None:
            self._lock = anyio.Lock()
        fetches = self._fetches
        async with self._lock:
            if self._token is not None and time.monotonic() < self._refresh_at:
                return self._token  # another request refreshed it while this one waited
            if self._fetches != fetches and self._failure is not None:
                # The fetch this request waited for failed: its answer, not one more try in a row per waiter.
                raise AuthError(self._failure)
            try:
                new, lifetime = await self.fetch()
            except AuthError as exc:
                self._failure = str(exc)
                raise
            finally:
                self._fetches += 1
            self._failure = None
            margin = min(self.refresh_margin, max(lifetime, 0.0) / 2)
            self._token, self._refresh_at = new, time.monotonic() + max(lifetime, 0.0) - margin
            return new

    def invalidate(self) -> None:
        """Forget the cached token (the upstream rejected it): the next request fetches a new one."""
        self._refresh_at = 0.0

    async def authorize(self, request: httpx.Request) -> None:
        request.headers[self.header] = "Bearer " + await self.token()


class RequestSigner:
    """Signs each request over its method, URL, headers and body; returns the headers to set."""

    #: Run ``sign`` in a worker thread (it blocks or is CPU-heavy). Cheap HMAC signers may say False.
    blocking = True

    def sign(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Mapping[str, str]:
        raise NotImplementedError

    async def authorize(self, request: httpx.Request) -> None:
        body = request.content  # the forwarder builds requests with the final body in memory
        args = (request.method, str(request.url), dict(request.headers), body)
        signed = await anyio.to_thread.run_sync(self.sign, *args) if self.blocking else self.sign(*args)
        for name, value in signed.items():
            request.headers[name] = value
