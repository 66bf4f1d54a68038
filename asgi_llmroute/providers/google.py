"""Google: the ``gemini`` wire format and the ``gemini`` and ``vertex_ai`` kinds.

- ``gemini`` (the Gemini API): ``{base}/models/{model}:generateContent`` and
  ``:streamGenerateContent?alt=sse``, base ``https://generativelanguage.googleapis.com/v1beta``,
  the key in ``x-goog-api-key`` (never in the URL).
- ``vertex_ai`` (Gemini on Vertex AI): ``{host}/{api_version}/projects/{project}/locations/
  {location}/publishers/google/models/{model}:generateContent`` (and the stream), the host derived
  from the location (``{location}-aiplatform.googleapis.com``; ``global`` ->
  ``aiplatform.googleapis.com``; ``us``/``eu`` -> ``aiplatform.{us|eu}.rep.googleapis.com``) unless
  ``base_url`` is given. Credentials: OAuth2 access tokens (:mod:`.google_auth`); or, in express mode
  (``auth = "api-key"``), an API key in ``x-goog-api-key`` on ``{host}/{api_version}/publishers/google/
  models/{model}:...`` (no project or location; the global host ``aiplatform.googleapis.com``).
- ``vertex_anthropic`` (Claude on Vertex AI): ``:rawPredict`` / ``:streamRawPredict`` with the
  Anthropic body (:mod:`asgi_llmroute.formats.vertex_claude`), the same credentials.

Requests in the OpenAI or Anthropic format are translated by :mod:`asgi_llmroute.formats.gemini`;
Gemini-format requests (the google-genai SDK on ``/v1beta/models/{model}:generateContent``) are
relayed as they are, to the method the client asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .google_auth import CLOUD_PLATFORM_SCOPE, GoogleTokenSource
from .kinds import (
    CHAT,
    COUNT_TOKENS,
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

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
VERTEX_DEFAULT_HOST = "https://aiplatform.googleapis.com"
_GENERATE = ":generateContent"
_STREAM = ":streamGenerateContent?alt=sse"
#: Gemini methods a client may call through the gateway (the rest of the API is not relayed).
METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens"})
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")  # project ids and locations
_VERSION = re.compile(r"^v1(beta1?|alpha)?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"  # Anthropic's route; Vertex's count-tokens:rawPredict


def _chat_path(stream: bool) -> str:
    return _STREAM if stream else _GENERATE


def _translator(client: str, options: TranslationOptions) -> Translator:
    from .google_media import GoogleTranslator  # the Gemini translation loads with the first request

    return GoogleTranslator(client, options)  # type: ignore[arg-type]


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
        capabilities=frozenset({CHAT, COUNT_TOKENS}),  # :countTokens
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


def _express(options: Mapping[str, str]) -> bool:
    """Vertex AI in express mode: an API key instead of OAuth2, no project or location."""
    return options.get("auth") == "api-key"


def _project_check(options: Mapping[str, str], has_key: bool, hint: str = "") -> None:
    for name in ("project", "location"):
        value = options.get(name)
        if value is None:
            raise KindError(f"Vertex AI providers need {name} (the Google Cloud {name}){hint}")
        if not _NAME.match(value):
            raise KindError(f"{name}: {value!r} is not a Google Cloud {name} id")


def _vertex_check(options: Mapping[str, str], has_key: bool) -> None:
    auth = options.get("auth", "oauth")
    if auth not in ("oauth", "api-key"):
        raise KindError(f"auth: {auth!r} must be 'oauth' (default) or 'api-key' (Vertex AI express mode)")
    if _express(options):
        found = sorted(name for name in ("project", "location") if name in options)
        if found:
            raise KindError(f'{found[0]}: Vertex AI express mode (auth = "api-key") URLs have no project or location')
    else:
        _project_check(options, has_key, ', or auth = "api-key" for an express-mode API key')
    version = options.get("api_version")
    if version is not None and not _VERSION.match(version):
        raise KindError(f"api_version: {version!r} is not a Vertex AI API version (v1 or v1beta1)")
    buckets = options.get("gcs_buckets")
    if buckets is not None and buckets != "*":
        for bucket in buckets.split(","):
            if not _BUCKET.match(bucket.strip()):
                raise KindError(f"gcs_buckets: {bucket.strip()!r} is not a Cloud Storage bucket name (or give '*')")


def _vertex_root(provider: Provider, version: str) -> str:
    """``{host}/{version}/projects/{project}/locations/{location}``, or ``{host}/{version}`` in express mode."""
    host = provider.base_url
    if provider.option("auth") == "api-key":
        return f"{host}/{version}"
    project = provider.option("project") or ""
    location = provider.option("location") or "global"
    if host == VERTEX_DEFAULT_HOST:
        host = vertex_host(location)
    return f"{host}/{version}/projects/{quote_segment(project)}/locations/{quote_segment(location)}"


def _vertex_endpoint(provider: Provider) -> UrlBuilder:
    root = _vertex_root(provider, provider.option("api_version", "v1") or "v1")

    def url(path: str, model: str) -> str:
        method = gemini_method(path)
        if method is None:
            raise ValueError(f"no Gemini method for {path!r}")
        name = model.removeprefix("models/").removeprefix("publishers/google/models/")
        return f"{root}/publishers/google/models/{quote_segment(name)}{method}"

    return url


def _no_credentials(provider: Provider) -> list[tuple[str, str]]:
    return []


def _vertex_credentials(provider: Provider) -> list[tuple[str, str]]:
    return _key_credentials(provider) if provider.option("auth") == "api-key" else []


def _vertex_authenticator(provider: Provider) -> Authenticator | None:
    if provider.option("auth") == "api-key":
        if provider.api_key is None:
            raise KindError(f"provider {provider.name!r}: Vertex AI express mode needs its API key (api_key)")
        if provider.api_key.reveal().lstrip().startswith("{"):  # never sent as a header: a private key in it
            raise KindError(
                f'provider {provider.name!r}: express mode (auth = "api-key") takes an API key, not a credentials '
                "JSON (leave auth out for OAuth2 with a service-account key)"
            )
        return None
    return GoogleTokenSource.for_key(provider.api_key, provider.name)


def _vertex_key_env(options: Mapping[str, str]) -> str:
    # google-genai's variable for an express-mode key; otherwise a key file's path, as Google's libraries read it
    return "GOOGLE_API_KEY" if _express(options) else "GOOGLE_APPLICATION_CREDENTIALS"


VERTEX_AI = register_kind(
    ProviderKind(
        "vertex_ai",
        "gemini",
        title="Google Vertex AI (Gemini)",
        aliases=("vertex_ai_beta", "vertex"),
        default_base_url=VERTEX_DEFAULT_HOST,
        key_env="GOOGLE_APPLICATION_CREDENTIALS",
        key_required=False,  # no key: Application Default Credentials
        capabilities=frozenset({CHAT, COUNT_TOKENS}),  # :countTokens
        options=frozenset({"project", "location", "api_version", "auth", "gcs_buckets"}),
        endpoint=_vertex_endpoint,
        credentials=_vertex_credentials,
        authenticator=_vertex_authenticator,
        check=_vertex_check,
        key_env_for=_vertex_key_env,
        notes="project and location; OAuth2 tokens from a service-account JSON key or ADC (extra `google`); "
        '`auth = "api-key"`: express mode',
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
    root = _vertex_root(provider, "v1")

    def url(path: str, model: str) -> str:
        if path == COUNT_TOKENS_PATH:  # the model travels in the body
            return f"{root}/publishers/anthropic/models/count-tokens:rawPredict"
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
        capabilities=frozenset({CHAT, COUNT_TOKENS}),  # count-tokens:rawPredict
        options=frozenset({"project", "location"}),
        endpoint=_vertex_claude_endpoint,
        credentials=_no_credentials,
        authenticator=_vertex_authenticator,
        check=_project_check,
        notes="`:rawPredict` / `:streamRawPredict`, `anthropic_version: vertex-2023-10-16` in the body",
    )
)
