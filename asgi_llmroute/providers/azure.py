"""Azure OpenAI: the ``azure`` kind (deployment URLs, ``api-version``, ``api-key`` or Entra ID).

Two URL shapes, chosen by ``api_version``:

- a dated version (default ``2024-10-21``): ``{base}/openai/deployments/{deployment}/chat/completions
  ?api-version=...`` for the deployment operations (chat, completions, embeddings, audio, images;
  the upstream model is the deployment name), ``{base}/openai/{path}?api-version=...`` otherwise;
- ``v1`` (or a ``base_url`` ending in ``/openai/v1``): ``{base}/openai/v1/chat/completions`` with no
  query; the body's ``model`` is the deployment name.

Credentials (``auth``): ``api-key`` (the key in the ``api-key`` header; the default), ``bearer`` (the
key is a Microsoft Entra ID access token, sent as ``Authorization: Bearer``), or ``entra`` (OAuth2
client credentials: ``tenant_id``, ``client_id``, and the client secret as the key, exchanged at
``{authority_host}/{tenant_id}/oauth2/v2.0/token`` and cached until shortly before it expires; the
default when ``tenant_id`` and ``client_id`` are set). Never both headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .auth import AuthError, TokenSource
from .kinds import (
    AUDIO,
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    IMAGES,
    KindError,
    ProviderKind,
    UrlBuilder,
    quote_segment,
    register_kind,
)

if TYPE_CHECKING:
    from ..secret import Secret
    from .auth import Authenticator
    from .types import Provider

__all__ = ["AZURE", "DEFAULT_API_VERSION", "DEFAULT_AUTHORITY_HOST", "DEFAULT_SCOPE", "EntraTokenSource"]

DEFAULT_API_VERSION = "2024-10-21"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_SCOPE = "https://cognitiveservices.azure.com/.default"
_V1 = frozenset({"v1", "latest", "preview"})
# Operations whose Azure URL carries the deployment (as the openai SDK's AzureOpenAI client builds them).
_DEPLOYMENT_PATHS = frozenset(
    {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/audio/transcriptions",
        "/v1/audio/translations",
        "/v1/audio/speech",
        "/v1/images/generations",
        "/v1/images/edits",
    }
)
_VERSION = re.compile(r"^[A-Za-z0-9.-]{1,40}$")
_TENANT = re.compile(r"^[A-Za-z0-9.-]{1,100}$")
_AUTH_MODES = ("api-key", "bearer", "entra")


def _auth_mode(options: Mapping[str, str]) -> str:
    mode = options.get("auth")
    if mode is not None:
        return mode
    return "entra" if "tenant_id" in options and "client_id" in options else "api-key"


def _check(options: Mapping[str, str], has_key: bool) -> None:
    version = options.get("api_version")
    if version is not None and not _VERSION.match(version):
        raise KindError(f"api_version: {version!r} is not an Azure API version (e.g. {DEFAULT_API_VERSION} or v1)")
    mode = _auth_mode(options)
    if mode not in _AUTH_MODES:
        raise KindError(f"auth: must be one of {', '.join(_AUTH_MODES)}")
    if mode == "entra":
        missing = [name for name in ("tenant_id", "client_id") if name not in options]
        if missing:
            raise KindError(f"auth = 'entra' needs {' and '.join(missing)} (and the client secret as the key)")
        if not _TENANT.match(options["tenant_id"]):
            raise KindError("tenant_id: must be a tenant id or domain (letters, digits, '.', '-')")
    host = options.get("authority_host")
    if host is not None and not host.startswith(("https://", "http://")):
        raise KindError("authority_host: must be an http:// or https:// URL")


def _key_env(options: Mapping[str, str]) -> str:
    return "AZURE_CLIENT_SECRET" if _auth_mode(options) == "entra" else "AZURE_OPENAI_API_KEY"


def _endpoint(provider: Provider) -> UrlBuilder:
    version = provider.option("api_version", DEFAULT_API_VERSION) or DEFAULT_API_VERSION
    base = provider.base_url
    if version in _V1 or base.endswith("/openai/v1"):
        root = base if base.endswith("/openai/v1") else base.removesuffix("/openai") + "/openai/v1"
        query = "?api-version=preview" if version == "preview" else ""

        def v1_url(path: str, model: str) -> str:
            return root + (path[3:] if path.startswith("/v1/") else path) + query

        return v1_url
    root = base.removesuffix("/openai") + "/openai"
    query = "?api-version=" + version

    def deployment_url(path: str, model: str) -> str:
        rest = path[3:] if path.startswith("/v1/") else path
        if path in _DEPLOYMENT_PATHS:
            return f"{root}/deployments/{quote_segment(model)}{rest}{query}"
        return root + rest + query

    return deployment_url


def _credentials(provider: Provider) -> list[tuple[str, str]]:
    key = provider.api_key
    mode = _auth_mode(dict(provider.options))
    if key is None or mode == "entra":
        return []
    if mode == "bearer":
        return [("authorization", "Bearer " + key.reveal())]
    return [("api-key", key.reveal())]


def _authenticator(provider: Provider) -> Authenticator | None:
    options = dict(provider.options)
    if _auth_mode(options) != "entra" or provider.api_key is None:
        return None
    return EntraTokenSource(
        options["tenant_id"],
        options["client_id"],
        provider.api_key,
        authority_host=options.get("authority_host", DEFAULT_AUTHORITY_HOST),
        scope=options.get("scope", DEFAULT_SCOPE),
    )


class EntraTokenSource(TokenSource):
    """Microsoft Entra ID access tokens by OAuth2 client credentials, cached until shortly before expiry."""

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: Secret,
        *,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        scope: str = DEFAULT_SCOPE,
        timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self.token_url = f"{authority_host.rstrip('/')}/{tenant_id}/oauth2/v2.0/token"
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "scope": scope}
        self._secret = client_secret
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"EntraTokenSource({self.token_url!r})"

    async def fetch(self) -> tuple[str, float]:
        import httpx  # with the first token: an Azure provider without Entra ID never needs it here

        form = {**self._form, "client_secret": self._secret.reveal()}
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
                response = await client.post(self.token_url, data=form)
        except httpx.HTTPError as exc:
            raise AuthError(f"the Entra ID token endpoint could not be reached ({type(exc).__name__})") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200 or not isinstance(data, dict):
            code = data.get("error") if isinstance(data, dict) else None
            detail = f" ({code})" if isinstance(code, str) and code.isprintable() and len(code) < 80 else ""
            raise AuthError(f"the Entra ID token endpoint answered {response.status_code}{detail}")
        token, lifetime = data.get("access_token"), data.get("expires_in")
        if not isinstance(token, str) or not token:
            raise AuthError("the Entra ID token endpoint returned no access_token")
        try:
            seconds = float(lifetime) if lifetime is not None else 3600.0
        except (TypeError, ValueError):
            seconds = 3600.0
        return token, seconds


AZURE = register_kind(
    ProviderKind(
        "azure",
        "openai",
        title="Azure OpenAI",
        aliases=("azure_openai", "azure_ai_openai"),
        base_url_env="AZURE_OPENAI_ENDPOINT",
        key_env="AZURE_OPENAI_API_KEY",
        capabilities=frozenset({CHAT, EMBEDDINGS, COMPLETIONS, IMAGES, AUDIO}),
        options=frozenset({"api_version", "auth", "tenant_id", "client_id", "authority_host", "scope"}),
        endpoint=_endpoint,
        credentials=_credentials,
        authenticator=_authenticator,
        check=_check,
        key_env_for=_key_env,
        notes="deployment in the path and `api-version`, or the `v1` API; `api-key` or Entra ID",
    )
)
