"""Provider kinds: everything the gateway knows about one family of upstreams, in one place.

A :class:`ProviderKind` says which wire format a provider speaks (:class:`WireFormat`), how the URL of
each operation is built, how the provider authenticates (a static header, or an
:class:`~asgi_llmroute.providers.auth.Authenticator` such as an OAuth token source or a request
signer), its default base URL and key variable, and which operations it offers. The forwarder asks
the kind for URL and headers and stays generic; translation picks its translator from the client's
format and the kind's wire format. docs/providers.md describes the interface and every kind.

Kinds are registered by name (:func:`register_kind`); the OpenAI-compatible catalog
(``catalog.py``) and Azure (``azure.py``) add theirs when this package is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from ..formats.translator import Translator
    from ..formats.types import TranslationOptions
    from .auth import Authenticator
    from .types import Provider

__all__ = [
    "ALL_OPERATIONS",
    "AUDIO",
    "CHAT",
    "COMPLETIONS",
    "COUNT_TOKENS",
    "EMBEDDINGS",
    "IMAGES",
    "MODERATIONS",
    "RERANK",
    "RESPONSES",
    "KindError",
    "ModelParams",
    "ProviderKind",
    "WireFormat",
    "find_kind",
    "get_kind",
    "get_wire",
    "kind_names",
    "kinds",
    "operation_of",
    "register_kind",
    "register_wire",
]

# -- operations --------------------------------------------------------------------------------

CHAT = "chat"
EMBEDDINGS = "embeddings"
RESPONSES = "responses"  # the OpenAI Responses API served natively (else translated to chat)
COUNT_TOKENS = "count_tokens"  # Anthropic's token counting served natively (else estimated)
COMPLETIONS = "completions"
IMAGES = "images"
AUDIO = "audio"
MODERATIONS = "moderations"
RERANK = "rerank"
ALL_OPERATIONS = frozenset({CHAT, EMBEDDINGS, RESPONSES, COUNT_TOKENS, COMPLETIONS, IMAGES, AUDIO, MODERATIONS, RERANK})

_OPERATION_BY_PATH = {
    "/v1/chat/completions": CHAT,
    "/v1/messages": CHAT,
    "/v1/messages/count_tokens": COUNT_TOKENS,
    "/v1/responses": RESPONSES,
    "/v1/embeddings": EMBEDDINGS,
    "/v1/completions": COMPLETIONS,
    "/v1/moderations": MODERATIONS,
    "/v1/images/generations": IMAGES,
    "/v1/images/edits": IMAGES,
    "/v1/images/variations": IMAGES,
    "/v1/audio/speech": AUDIO,
    "/v1/audio/transcriptions": AUDIO,
    "/v1/audio/translations": AUDIO,
    "/v1/rerank": RERANK,
}


def operation_of(path: str) -> str | None:
    """The operation a gateway route performs (``/v1/embeddings`` -> ``"embeddings"``), or None."""
    return _OPERATION_BY_PATH.get(path)


class KindError(ValueError):
    """A provider's kind-specific settings are wrong; ``str(error)`` is fit for an operator."""


# -- wire formats ------------------------------------------------------------------------------

TranslatorFactory = Callable[[str, "TranslationOptions"], "Translator"]


@dataclass(frozen=True, slots=True)
class WireFormat:
    """The request/response format an upstream speaks, and how to translate to it.

    - ``name``: ``"openai"`` (Chat Completions) or ``"anthropic"`` (Messages); new formats add theirs.
      It is ``Provider.api``, and the format the forwarder writes its own errors in.
    - ``chat_path(stream)``: the upstream operation path of a translated chat request (the kind's
      URL builder turns it into a URL).
    - ``translator(client_wire, options)``: a new per-request translator from a client speaking
      ``client_wire`` (``"openai"``/``"anthropic"``) to this format.
    - ``foreign_headers``: prefixes of client protocol headers not forwarded when translating
      (``anthropic-`` to an OpenAI upstream).
    """

    name: str
    chat_path: Callable[[bool], str]
    translator: TranslatorFactory
    foreign_headers: bytes


_WIRES: dict[str, WireFormat] = {}


def register_wire(wire: WireFormat) -> WireFormat:
    _WIRES[wire.name] = wire
    return wire


def get_wire(name: str) -> WireFormat:
    try:
        return _WIRES[name]
    except KeyError:
        raise KindError(f"unknown wire format {name!r}") from None


def _builtin_translator(upstream: str) -> TranslatorFactory:
    def factory(client: str, options: TranslationOptions) -> Translator:
        from ..formats import new_translator

        return new_translator(client, upstream, options)  # type: ignore[arg-type]

    return factory


register_wire(WireFormat("openai", lambda stream: "/v1/chat/completions", _builtin_translator("openai"), b"anthropic-"))
register_wire(WireFormat("anthropic", lambda stream: "/v1/messages", _builtin_translator("anthropic"), b"openai-"))


# -- URL building and static credentials --------------------------------------------------------

#: Builds one provider's upstream URLs: ``(gateway path, upstream model) -> URL``. Worked out once
#: per provider by :attr:`ProviderKind.endpoint`; called once per request.
UrlBuilder = Callable[[str, str], str]


def openai_endpoint(provider: Provider) -> UrlBuilder:
    """OpenAI-style bases end in the version (``.../v1``): the gateway's ``/v1`` is not repeated."""
    base = provider.base_url

    def url(path: str, model: str) -> str:
        return base + (path[3:] if path.startswith("/v1/") else path)

    return url


def full_path_endpoint(provider: Provider) -> UrlBuilder:
    """Bases without a version (Anthropic's): the full path is appended."""
    base = provider.base_url

    def url(path: str, model: str) -> str:
        return base + path

    return url


def quote_segment(value: str) -> str:
    """``value`` as one URL path segment (``/`` and ``:`` encoded, nothing else left raw)."""
    return quote(value, safe="-._~")


def header_credentials(header: str, prefix: str = "") -> Callable[[Provider], list[tuple[str, str]]]:
    """The provider's key sent as ``header: <prefix><key>`` (nothing without a key)."""

    def credentials(provider: Provider) -> list[tuple[str, str]]:
        key = provider.api_key
        return [(header, prefix + key.reveal())] if key is not None else []

    return credentials


bearer_credentials = header_credentials("authorization", "Bearer ")


def _no_authenticator(provider: Provider) -> Authenticator | None:
    return None


def _no_check(options: Mapping[str, str], has_key: bool) -> None:
    return None


# -- kinds ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelParams:
    """The request fields some of a kind's models refuse or ignore (DeepSeek's ``deepseek-reasoner``).

    ``models`` are patterns of upstream model ids (``fnmatch``: ``grok-4*``); ``refused`` fields the
    provider answers 400 for, ``ignored`` ones it accepts and has no effect on.
    """

    models: tuple[str, ...]
    refused: frozenset[str] = frozenset()
    ignored: frozenset[str] = frozenset()

    def matches(self, model: str) -> bool:
        return any(fnmatchcase(model, pattern) for pattern in self.models)


@dataclass(frozen=True, slots=True)
class ProviderKind:
    """One family of upstreams (``"groq"``, ``"azure"``, ``"anthropic"``, ...).

    Data:

    - ``name``, ``wire`` (a registered :class:`WireFormat` name), ``title`` (for docs and listings),
      ``aliases`` (other names that select it, LiteLLM's among them).
    - ``default_base_url`` (None: ``base_url`` is required), ``base_url_env`` (a variable read for it
      at start when set), ``key_env`` (the variable ``api_key`` defaults to), ``key_required``
      (False for local servers that take no key).
    - ``capabilities``: the operations it serves (:data:`CHAT`, :data:`EMBEDDINGS`, ...).
    - ``refused_params``: top-level request fields it is known to refuse with a 400; the gateway
      refuses them first with an error naming the field, or drops them with a warning header
      (``drop_params``). ``ignored_params``: fields it accepts but does not act on; the gateway
      drops them with a warning header, so the client learns they had no effect.
      ``model_params``: the same for some models only (:class:`ModelParams`, first match wins).
    - ``reasoning_content``: its chat answers carry reasoning as ``reasoning_content``.
    - ``options``: the kind-specific settings a provider of this kind accepts (``api_version``, ...).

    Behaviour (functions of the :class:`~asgi_llmroute.providers.types.Provider`, worked out once per
    provider, never per request):

    - ``endpoint(provider)``: its :data:`UrlBuilder`.
    - ``credentials(provider)``: the static headers that carry its key.
    - ``authenticator(provider)``: an :class:`~asgi_llmroute.providers.auth.Authenticator` for
      credentials that change per request or over time (token sources, signers), or None.
    - ``check(options, has_key)``: validates the kind-specific options; raises :class:`KindError`.
    - ``key_env_for(options)``: the key variable when it depends on the options.
    """

    name: str
    wire: str
    title: str = ""
    aliases: tuple[str, ...] = ()
    default_base_url: str | None = None
    base_url_env: str | None = None
    key_env: str | None = None
    key_required: bool = True
    capabilities: frozenset[str] = frozenset({CHAT})
    refused_params: frozenset[str] = frozenset()
    ignored_params: frozenset[str] = frozenset()
    model_params: tuple[ModelParams, ...] = ()
    #: The output-limit field it reads when that is not OpenAI's ``max_completion_tokens`` (Mistral,
    #: DeepSeek, Ollama: ``max_tokens``); the gateway renames the field in requests to it.
    max_tokens_name: str | None = None
    reasoning_content: bool = False
    options: frozenset[str] = frozenset()
    endpoint: Callable[[Provider], UrlBuilder] = field(default=openai_endpoint, compare=False)
    credentials: Callable[[Provider], list[tuple[str, str]]] = field(default=bearer_credentials, compare=False)
    authenticator: Callable[[Provider], Authenticator | None] = field(default=_no_authenticator, compare=False)
    check: Callable[[Mapping[str, str], bool], None] = field(default=_no_check, compare=False)
    #: The key variable when it depends on the options (Azure: the client secret's for Entra ID).
    key_env_for: Callable[[Mapping[str, str]], str | None] | None = field(default=None, compare=False)
    notes: str = ""
    #: Requests in its own wire format need no per-kind step (worked out once, read per request).
    plain: bool = field(init=False, compare=False)

    def __post_init__(self) -> None:
        every = _OPENAI_ROUTES if self.wire == "openai" else frozenset({CHAT})
        checks = self.refused_params or self.ignored_params or self.model_params or self.max_tokens_name
        object.__setattr__(self, "plain", not checks and every <= self.capabilities)

    def serves(self, operation: str) -> bool:
        return operation in self.capabilities

    def params_for(self, model: str | None) -> tuple[frozenset[str], frozenset[str]]:
        """The fields refused and the fields ignored for requests to ``model`` (an upstream model id)."""
        refused, ignored = self.refused_params, self.ignored_params
        for rule in self.model_params:
            if model is not None and rule.matches(model):
                return refused | rule.refused, ignored | rule.ignored
        return refused, ignored

    def default_key_env(self, options: Mapping[str, str]) -> str | None:
        """The variable ``api_key`` defaults to for a provider with these options."""
        return self.key_env_for(options) if self.key_env_for is not None else self.key_env

    def __repr__(self) -> str:
        return f"ProviderKind({self.name!r}, wire={self.wire!r})"


_KINDS: dict[str, ProviderKind] = {}
_OPENAI_ROUTES = frozenset({CHAT, EMBEDDINGS, RESPONSES, COMPLETIONS, IMAGES, AUDIO, MODERATIONS, RERANK})
_ALIASES: dict[str, str] = {}


def register_kind(kind: ProviderKind) -> ProviderKind:
    """Make ``kind`` (and its aliases) available by name; a later registration replaces an earlier one."""
    get_wire(kind.wire)  # the wire format must exist
    _KINDS[kind.name] = kind
    for alias in kind.aliases:
        _ALIASES[alias] = kind.name
    return kind


def find_kind(name: str) -> ProviderKind | None:
    """The kind called ``name`` or one of its aliases, or None."""
    kind = _KINDS.get(name)
    if kind is None:
        alias = _ALIASES.get(name)
        kind = _KINDS.get(alias) if alias is not None else None
    return kind


def get_kind(name: str) -> ProviderKind:
    """Like :func:`find_kind`, but an unknown name raises :class:`KindError` listing the known ones."""
    kind = find_kind(name)
    if kind is None:
        raise KindError(f"unknown provider kind {name!r} (known: {', '.join(sorted(_KINDS))})")
    return kind


def kinds() -> list[ProviderKind]:
    """Every registered kind, in registration order."""
    return list(_KINDS.values())


def kind_names() -> list[str]:
    return sorted(_KINDS)


def check_options(kind: ProviderKind, options: Mapping[str, Any], has_key: bool) -> dict[str, str]:
    """``options`` validated for ``kind`` (unknown names are errors), as strings."""
    unknown = sorted(set(options) - kind.options)
    if unknown:
        accepted = f" (kind {kind.name!r} accepts: {', '.join(sorted(kind.options))})" if kind.options else ""
        raise KindError(f"unknown key(s) for kind {kind.name!r}: {', '.join(unknown)}{accepted}")
    out: dict[str, str] = {}
    for name, value in options.items():
        if not isinstance(value, str) or not value.strip() or not value.isprintable():
            raise KindError(f"{name}: must be a non-empty string on one line")
        out[name] = value.strip()
    kind.check(out, has_key)
    return out


def options_tuple(options: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    items = options.items() if isinstance(options, Mapping) else options
    return tuple(sorted(items))


# -- the two built-in wire formats' own kinds -----------------------------------------------------


OPENAI = register_kind(
    ProviderKind(
        "openai",
        "openai",
        title="OpenAI",
        default_base_url="https://api.openai.com/v1",
        key_env="OPENAI_API_KEY",
        capabilities=_OPENAI_ROUTES,  # api = "openai" providers relay every OpenAI-style route
        notes='also any OpenAI-compatible server (`api = "openai"` with a `base_url`)',
    )
)


def _anthropic_credentials(provider: Provider) -> list[tuple[str, str]]:
    key = provider.api_key
    return [("x-api-key", key.reveal())] if key is not None else []


ANTHROPIC = register_kind(
    ProviderKind(
        "anthropic",
        "anthropic",
        title="Anthropic",
        default_base_url="https://api.anthropic.com",
        key_env="ANTHROPIC_API_KEY",
        capabilities=frozenset({CHAT, COUNT_TOKENS}),
        endpoint=full_path_endpoint,
        credentials=_anthropic_credentials,
        notes="`x-api-key` and `anthropic-version` headers",
    )
)


def builtin_kind(api: str) -> ProviderKind:
    """The kind an ``api = "..."`` provider has: the wire format's own kind."""
    return get_kind(api)
