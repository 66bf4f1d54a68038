"""Google OAuth2 access tokens for the ``vertex_ai`` and ``vertex_anthropic`` kinds, from Google's
``google-auth`` library (the optional ``google`` extra, imported only when such a provider is configured).

The provider's key holds a service-account JSON (the JWT-bearer exchange at its ``token_uri``; ``file:``
and ``env:`` references work; a key file's path is read too), any other google-auth credentials JSON, or
is left out for Application Default Credentials; a key that is not JSON is a static access token. Tokens
are cached until five minutes before they expire and refreshed in a worker thread, one refresh shared by
every request waiting for it, in the background while the current token is still valid.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .auth import AuthError, TokenSource
from .kinds import KindError

if TYPE_CHECKING:
    import httpx

    from ..secret import Secret

__all__ = ["CLOUD_PLATFORM_SCOPE", "GoogleTokenSource"]

logger = logging.getLogger("asgi_llmroute.providers.google")

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class GoogleTokenSource(TokenSource):
    """OAuth2 access tokens from ``google-auth`` credentials (service account, ADC, ...).

    ``google-auth`` blocks while it refreshes (it signs the JWT and posts it to the token endpoint):
    :class:`TokenSource` runs :meth:`fetch_blocking` in a worker thread, once per expiry however
    many requests wait, and reuses the token until five minutes before it expires. The HTTP calls
    go through httpx (no ``requests`` needed).
    """

    def __init__(self, credentials: Any, *, name: str = "google", timeout: float = 30.0) -> None:
        super().__init__()
        self._credentials = credentials  # None: Application Default Credentials, looked up at the first fetch
        self._name = name
        self._timeout = timeout
        self._valid_until = 0.0  # when the cached token really expires (monotonic)
        self._lifetime = 0.0
        self._background: asyncio.Task[None] | None = None  # held: asyncio keeps only weak references
        self._refreshing = False

    async def token(self) -> str:
        """The cached token; past the refresh point (five minutes before expiry) a still-valid token is
        returned at once while one refresh runs in the background, so only a request that finds no
        valid token (the first one, or after a failed refresh) waits for the exchange."""
        token = self._token
        now = time.monotonic()
        if token is not None and now < self._refresh_at:
            return token
        if token is not None and now < self._valid_until - 30:
            if not self._refreshing:
                self._refreshing = True
                try:
                    self._spawn()
                except BaseException:
                    self._refreshing = False
                    raise
            return token
        return await self._refresh()

    def invalidate(self) -> None:
        """Forget the token (the upstream rejected it): the next request waits for a new one."""
        super().invalidate()
        self._valid_until = 0.0

    def _spawn(self) -> None:
        """Start the background refresh on the running event loop (asyncio, else trio)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio: a system task, which outlives the request that started it
            import trio

            trio.lowlevel.spawn_system_task(self._refresh_quietly)
        else:
            self._background = loop.create_task(self._refresh_quietly())

    async def _refresh(self) -> str:
        before = self._refresh_at
        token = await super().token()  # single-flight: one exchange however many wait
        if self._refresh_at != before:
            self._valid_until = self._refresh_at + min(self.refresh_margin, self._lifetime / 2)
        return token

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh()
        except AuthError as exc:  # the current token stays in use until it expires
            logger.warning("Google token refresh for %s failed: %s", self._name, exc)
        except Exception as exc:  # a system task must not raise (trio would stop); say what, never the key
            logger.error("Google token refresh for %s failed (%s)", self._name, type(exc).__name__)
        finally:
            self._refreshing = False

    def __repr__(self) -> str:
        return f"GoogleTokenSource({self._name!r})"

    @classmethod
    def for_key(cls, key: Secret | None, name: str = "google") -> TokenSource:
        """The token source a ``vertex_ai`` provider's key asks for: a service-account (or other
        google-auth) JSON, a static access token, or Application Default Credentials (no key)."""
        if key is not None:
            text = key.reveal().strip()
            if not text.startswith("{") and os.path.isfile(text):
                # A key file's path (GOOGLE_APPLICATION_CREDENTIALS, LiteLLM's VERTEXAI_CREDENTIALS).
                with open(text, encoding="utf-8") as file:
                    text = file.read().strip()
            if not text.startswith("{"):
                return _StaticToken(text)
            try:
                info = json.loads(text)
            except ValueError:
                raise KindError(f"provider {name!r}: the key is not valid JSON (a service-account key file)") from None
            if not isinstance(info, dict):
                raise KindError(f"provider {name!r}: the key JSON is not an object")
            return cls(_credentials_from_info(info, name), name=name)
        _google_auth(name)  # the library is there (a KindError now, not at the first request)
        # Application Default Credentials are looked up in the first fetch's worker thread: the lookup may
        # probe the metadata server over the network, which must not block the event loop (a provider made
        # from the store is made on a request's path) nor the start.
        return cls(None, name=name)

    def fetch_blocking(self) -> tuple[str, float]:
        from google.auth import exceptions

        if self._credentials is None:
            self._credentials = _default_credentials(self._name)
        try:
            self._credentials.refresh(_HttpxRequest(self._timeout))
        except exceptions.GoogleAuthError as exc:
            # google-auth's messages quote the token endpoint's answer, never the key.
            raise AuthError(f"Google credentials could not be refreshed ({type(exc).__name__})") from None
        token = self._credentials.token
        if not isinstance(token, str) or not token:
            raise AuthError("Google credentials returned no access token")
        expiry = getattr(self._credentials, "expiry", None)
        if isinstance(expiry, datetime.datetime):
            now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            lifetime = (expiry.replace(tzinfo=None) - now).total_seconds()
        else:
            lifetime = 3600.0
        self._lifetime = max(lifetime, 0.0)
        return token, lifetime


class _StaticToken(TokenSource):
    """A fixed access token (obtained elsewhere): sent as is, never refreshed."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._static = token

    def __repr__(self) -> str:
        return "StaticToken(...)"

    async def fetch(self) -> tuple[str, float]:
        return self._static, 365 * 24 * 3600.0


def _google_auth(name: str) -> Any:
    try:
        import google.auth
        import google.oauth2.service_account
    except ImportError:
        raise KindError(
            f"provider {name!r} (kind 'vertex_ai') needs Google's google-auth library: "
            "pip install 'asgi-llmroute[google]'"
        ) from None
    return google


def _credentials_from_info(info: dict[str, Any], name: str) -> Any:
    google = _google_auth(name)
    try:
        if info.get("type") == "service_account":
            return google.oauth2.service_account.Credentials.from_service_account_info(
                info, scopes=[CLOUD_PLATFORM_SCOPE]
            )
        credentials, _ = google.auth.load_credentials_from_dict(info, scopes=[CLOUD_PLATFORM_SCOPE])
        return credentials
    except (ValueError, KeyError, google.auth.exceptions.GoogleAuthError) as exc:
        reason = type(exc).__name__
        raise KindError(f"provider {name!r}: the Google credentials JSON is not usable ({reason})") from None


def _default_credentials(name: str) -> Any:
    google = _google_auth(name)
    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        raise AuthError(
            "no key and no Application Default Credentials found "
            "(set the key to a service-account JSON, or run where ADC is configured)"
        ) from None
    return credentials


class _HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.data = response.content


class _HttpxRequest:
    """google-auth's transport interface (``google.auth.transport.Request``) over httpx."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _HttpxResponse:
        import httpx
        from google.auth import exceptions

        try:
            response = httpx.request(
                method, url, content=body, headers=dict(headers or {}), timeout=timeout or self._timeout
            )
        except httpx.HTTPError as exc:
            message = f"token endpoint unreachable ({type(exc).__name__})"
            raise exceptions.TransportError(message) from None  # type: ignore[no-untyped-call]
        return _HttpxResponse(response)
