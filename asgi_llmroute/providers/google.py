"""Google: the ``gemini`` wire format and the ``gemini`` and ``vertex_ai`` kinds.

- ``gemini`` (the Gemini API): ``{base}/models/{model}:generateContent`` and
  ``:streamGenerateContent?alt=sse``, base ``https://generativelanguage.googleapis.com/v1beta``,
  the key in ``x-goog-api-key`` (never in the URL).
- ``vertex_ai`` (Gemini on Vertex AI): ``{host}/{api_version}/projects/{project}/locations/
  {location}/publishers/google/models/{model}:generateContent`` (and the stream), the host derived
  from the location (``{location}-aiplatform.googleapis.com``; ``global`` ->
  ``aiplatform.googleapis.com``; ``us``/``eu`` -> ``aiplatform.{us|eu}.rep.googleapis.com``) unless
  ``base_url`` is given. Credentials: OAuth2 access tokens from Google's ``google-auth`` library
  (the optional ``google`` extra, imported only when such a provider is configured): the provider's
  key holds a service-account JSON (the JWT-bearer exchange at its ``token_uri``; ``file:`` and
  ``env:`` references work; ``GOOGLE_APPLICATION_CREDENTIALS``, a key file's path, is read when no key
  is configured), or is left out for Application Default Credentials. Tokens are cached
  until five minutes before they expire and refreshed in a worker thread, one refresh shared by
  every request waiting for it. A key that is not JSON is used as a static access token.

Requests in the OpenAI or Anthropic format are translated by :mod:`asgi_llmroute.formats.gemini`;
Gemini-format requests (the google-genai SDK on ``/v1beta/models/{model}:generateContent``) are
relayed as they are, to the method the client asked for.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from .auth import AuthError, TokenSource
from .kinds import (
    CHAT,
    KindError,
    ProviderKind,
    UrlBuilder,
    WireFormat,
    quote_segment,
    register_kind,
    register_wire,
)

if TYPE_CHECKING:
    from ..formats.translator import Translator
    from ..formats.types import TranslationOptions
    from ..secret import Secret
    from .auth import Authenticator
    from .types import Provider

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "GEMINI",
    "GEMINI_WIRE",
    "VERTEX_AI",
    "VERTEX_ANTHROPIC",
    "GoogleTokenSource",
    "gemini_method",
    "vertex_host",
]

logger = logging.getLogger("asgi_llmroute.providers.google")

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
VERTEX_DEFAULT_HOST = "https://aiplatform.googleapis.com"
_GENERATE = ":generateContent"
_STREAM = ":streamGenerateContent?alt=sse"
#: Gemini methods a client may call through the gateway (the rest of the API is not relayed).
METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens"})
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")  # project ids and locations
_VERSION = re.compile(r"^v1(beta1?|alpha)?$")


def _chat_path(stream: bool) -> str:
    return _STREAM if stream else _GENERATE


def _translator(client: str, options: TranslationOptions) -> Translator:
    from ..formats import new_translator

    return new_translator(client, "gemini", options)  # type: ignore[arg-type]


GEMINI_WIRE = register_wire(WireFormat("gemini", _chat_path, _translator, b"anthropic-"))


def gemini_method(path: str) -> str | None:
    """``:method`` of a Gemini-format gateway path (``/v1beta/models/m:generateContent`` ->
    ``:generateContent``), the translated chat paths as they are, None for anything else."""
    if path.startswith(":"):
        return path
    _, sep, method = path.rpartition(":")
    if sep and method in METHODS and "/models/" in path:
        return ":" + method
    return None


def _model_segment(model: str) -> str:
    """The URL segment of a model id: ``models/x`` and ``x`` are the same model; ``tunedModels/x`` kept."""
    if model.startswith("tunedModels/"):
        return "tunedModels/" + quote_segment(model[12:])
    return "models/" + quote_segment(model.removeprefix("models/"))


def _gemini_endpoint(provider: Provider) -> UrlBuilder:
    base = provider.base_url

    def url(path: str, model: str) -> str:
        method = gemini_method(path)
        if method is None:
            raise ValueError(f"no Gemini method for {path!r}")
        return f"{base}/{_model_segment(model)}{method}"

    return url


def _key_credentials(provider: Provider) -> list[tuple[str, str]]:
    key = provider.api_key
    return [("x-goog-api-key", key.reveal())] if key is not None else []


GEMINI = register_kind(
    ProviderKind(
        "gemini",
        "gemini",
        title="Google Gemini API",
        aliases=("google", "google_ai_studio"),
        default_base_url=GEMINI_BASE_URL,
        key_env="GEMINI_API_KEY",
        capabilities=frozenset({CHAT}),
        endpoint=_gemini_endpoint,
        credentials=_key_credentials,
        notes="`x-goog-api-key`; model in the URL path; `:streamGenerateContent?alt=sse` for streams",
    )
)


# -- Vertex AI ------------------------------------------------------------------------------------


def vertex_host(location: str) -> str:
    """The Vertex AI API host for a location."""
    if location == "global":
        return VERTEX_DEFAULT_HOST
    if location in ("us", "eu"):
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def _vertex_check(options: Mapping[str, str], has_key: bool) -> None:
    for name in ("project", "location"):
        value = options.get(name)
        if value is None:
            raise KindError(f"Vertex AI providers need {name} (the Google Cloud {name})")
        if not _NAME.match(value):
            raise KindError(f"{name}: {value!r} is not a Google Cloud {name} id")
    version = options.get("api_version")
    if version is not None and not _VERSION.match(version):
        raise KindError(f"api_version: {version!r} is not a Vertex AI API version (v1 or v1beta1)")


def _vertex_endpoint(provider: Provider) -> UrlBuilder:
    project = provider.option("project") or ""
    location = provider.option("location") or "global"
    version = provider.option("api_version", "v1") or "v1"
    host = provider.base_url
    if host == VERTEX_DEFAULT_HOST:
        host = vertex_host(location)
    root = f"{host}/{version}/projects/{quote_segment(project)}/locations/{quote_segment(location)}"

    def url(path: str, model: str) -> str:
        method = gemini_method(path)
        if method is None:
            raise ValueError(f"no Gemini method for {path!r}")
        name = model.removeprefix("models/").removeprefix("publishers/google/models/")
        return f"{root}/publishers/google/models/{quote_segment(name)}{method}"

    return url


def _no_credentials(provider: Provider) -> list[tuple[str, str]]:
    return []


def _vertex_authenticator(provider: Provider) -> Authenticator | None:
    return GoogleTokenSource.for_key(provider.api_key, provider.name)


VERTEX_AI = register_kind(
    ProviderKind(
        "vertex_ai",
        "gemini",
        title="Google Vertex AI (Gemini)",
        aliases=("vertex_ai_beta", "vertex"),
        default_base_url=VERTEX_DEFAULT_HOST,
        key_env="GOOGLE_APPLICATION_CREDENTIALS",  # a key file's path, as Google's libraries read it
        key_required=False,  # no key: Application Default Credentials
        capabilities=frozenset({CHAT}),
        options=frozenset({"project", "location", "api_version"}),
        endpoint=_vertex_endpoint,
        credentials=_no_credentials,
        authenticator=_vertex_authenticator,
        check=_vertex_check,
        notes="project and location; OAuth2 tokens from a service-account JSON key or ADC (extra `google`)",
    )
)


# -- Claude on Vertex AI ---------------------------------------------------------------------------


def _raw_predict_path(stream: bool) -> str:
    return ":streamRawPredict" if stream else ":rawPredict"


def _vertex_claude_translator(client: str, options: TranslationOptions) -> Translator:
    from ..formats import new_translator

    return new_translator(client, "vertex-anthropic", options)  # type: ignore[arg-type]


#: Anthropic Messages on Vertex's rawPredict: Anthropic clients are relayed near unchanged, OpenAI
#: clients translated; ``anthropic-version`` travels in the body, so the client's header is dropped.
VERTEX_ANTHROPIC_WIRE = register_wire(
    WireFormat("vertex-anthropic", _raw_predict_path, _vertex_claude_translator, b"anthropic-version")
)


def _vertex_claude_endpoint(provider: Provider) -> UrlBuilder:
    project = provider.option("project") or ""
    location = provider.option("location") or "global"
    host = provider.base_url
    if host == VERTEX_DEFAULT_HOST:
        host = vertex_host(location)
    root = f"{host}/v1/projects/{quote_segment(project)}/locations/{quote_segment(location)}"

    def url(path: str, model: str) -> str:
        if path not in (":rawPredict", ":streamRawPredict"):
            raise ValueError(f"no Vertex rawPredict method for {path!r}")
        return f"{root}/publishers/anthropic/models/{quote_segment(model)}{path}"

    return url


VERTEX_ANTHROPIC = register_kind(
    ProviderKind(
        "vertex_anthropic",
        "vertex-anthropic",
        title="Claude on Google Vertex AI",
        aliases=("vertex_ai_anthropic", "vertex_claude"),
        default_base_url=VERTEX_DEFAULT_HOST,
        key_env="GOOGLE_APPLICATION_CREDENTIALS",
        key_required=False,
        capabilities=frozenset({CHAT}),
        options=frozenset({"project", "location"}),
        endpoint=_vertex_claude_endpoint,
        credentials=_no_credentials,
        authenticator=_vertex_authenticator,
        check=_vertex_check,
        notes="`:rawPredict` / `:streamRawPredict`, `anthropic_version: vertex-2023-10-16` in the body",
    )
)


# -- Google OAuth2 access tokens -------------------------------------------------------------------


class GoogleTokenSource(TokenSource):
    """OAuth2 access tokens from ``google-auth`` credentials (service account, ADC, ...).

    ``google-auth`` blocks while it refreshes (it signs the JWT and posts it to the token endpoint):
    :class:`TokenSource` runs :meth:`fetch_blocking` in a worker thread, once per expiry however
    many requests wait, and reuses the token until five minutes before it expires. The HTTP calls
    go through httpx (no ``requests`` needed).
    """

    def __init__(self, credentials: Any, *, name: str = "google", timeout: float = 30.0) -> None:
        super().__init__()
        self._credentials = credentials
        self._name = name
        self._timeout = timeout
        self._valid_until = 0.0  # when the cached token really expires (monotonic)
        self._lifetime = 0.0
        self._background: asyncio.Task[None] | None = None

    async def token(self) -> str:
        """The cached token; past the refresh point (five minutes before expiry) a still-valid token is
        returned at once while one refresh runs in the background, so only a request that finds no
        valid token (the first one, or after a failed refresh) waits for the exchange."""
        token = self._token
        now = time.monotonic()
        if token is not None and now < self._refresh_at:
            return token
        if token is not None and now < self._valid_until - 30:
            if self._background is None or self._background.done():
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # not on asyncio (trio): refresh in line
                    return await self._refresh()
                self._background = loop.create_task(self._refresh_quietly())
            return token
        return await self._refresh()

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
        return cls(_default_credentials(name), name=name)

    def fetch_blocking(self) -> tuple[str, float]:
        from google.auth import exceptions

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
        raise KindError(
            f"provider {name!r}: no key and no Application Default Credentials found "
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
        from google.auth import exceptions

        try:
            response = httpx.request(
                method, url, content=body, headers=dict(headers or {}), timeout=timeout or self._timeout
            )
        except httpx.HTTPError as exc:
            message = f"token endpoint unreachable ({type(exc).__name__})"
            raise exceptions.TransportError(message) from None  # type: ignore[no-untyped-call]
        return _HttpxResponse(response)
