"""Runtime records for providers, deployments and routes (what resolution hands the forwarder)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..retry_policy import RetryPolicy
from ..secret import Secret
from ..timeouts import UpstreamTimeouts
from .kinds import ProviderKind, get_kind

if TYPE_CHECKING:
    from .auth import Authenticator

__all__ = ["API", "Deployment", "Provider", "Route", "make_provider"]

#: A wire format name (``Provider.api``): the built-in ones; registered formats add theirs.
API = Literal["openai", "anthropic"]


@dataclass(frozen=True, slots=True)
class Provider:
    """An upstream API endpoint and the credentials the gateway uses for it.

    ``base_url`` follows each SDK's own convention: OpenAI-style bases end in ``/v1``
    (the gateway appends ``/chat/completions``), Anthropic bases do not (it appends ``/v1/messages``).

    ``kind`` (:class:`~asgi_llmroute.providers.kinds.ProviderKind`, default: the kind named like
    ``api``) decides URLs, credentials and capabilities; ``api`` is its wire format. ``options`` are
    the kind-specific settings (``api_version``, ...), ``auth`` an authenticator the kind made for
    credentials that are not a fixed header, ``drop_params`` whether fields the kind refuses are
    dropped (with a warning header) rather than refused with a 400.
    """

    name: str
    api: API
    base_url: str
    api_key: Secret | None = None
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 600.0
    #: The provider serves the OpenAI Responses API (``/v1/responses``) itself: Responses requests are
    #: relayed as they are instead of being translated to Chat Completions (docs/responses.md).
    responses_api: bool = False
    kind: ProviderKind = None  # type: ignore[assignment]  # set from ``api`` when not given
    options: tuple[tuple[str, str], ...] = ()
    auth: Authenticator | None = None
    drop_params: bool = False
    #: Its own timeouts and retry policy (store records carry them); None: the gateway's for its name.
    timeouts: UpstreamTimeouts | None = None
    retry: RetryPolicy | None = None
    #: Requests in flight to it at once (store records carry it; ``ConcurrencyLimitMiddleware``
    #: applies it when its ``limits`` do not name the provider); None: unlimited.
    max_in_flight: int | None = None
    #: What layers work out once from this record (the forwarder's header plan, credentials included):
    #: it lives exactly as long as the record, so a removed or rotated provider leaves nothing behind.
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.kind is None:
            object.__setattr__(self, "kind", get_kind(self.api))
        elif self.kind.wire != self.api:
            wire = self.kind.wire
            raise ValueError(f"provider {self.name!r}: kind {self.kind.name!r} speaks {wire!r}, not {self.api!r}")

    def option(self, name: str, default: str | None = None) -> str | None:
        """A kind-specific setting (``options``), or ``default``."""
        for key, value in self.options:
            if key == name:
                return value
        return default


@dataclass(frozen=True, slots=True)
class Deployment:
    """One way to serve a client-facing model: a provider and the upstream model id."""

    provider: Provider
    model: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Route:
    """What a client-facing model name resolves to."""

    name: str
    deployments: tuple[Deployment, ...]
    fallbacks: tuple[str, ...] = field(default=())


def make_provider(
    name: str,
    kind: ProviderKind,
    *,
    base_url: str | None = None,
    api_key: Secret | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    timeout: float = 600.0,
    options: tuple[tuple[str, str], ...] = (),
    responses_api: bool | None = None,
    drop_params: bool = False,
) -> Provider:
    """A provider of ``kind`` with the kind's defaults filled in and its authenticator made.

    ``base_url`` defaults to the kind's; ``responses_api`` to whether the kind serves the Responses
    API natively. Raises :class:`~asgi_llmroute.providers.kinds.KindError` when the kind has no
    default base URL and none is given, or when an option is wrong.
    """
    from .kinds import RESPONSES, KindError

    base = base_url or kind.default_base_url
    if not base:
        raise KindError(f"kind {kind.name!r} has no default base_url: give one")
    native = kind.serves(RESPONSES) if responses_api is None else responses_api
    provider = Provider(
        name,
        kind.wire,  # type: ignore[arg-type]
        base,
        api_key,
        headers,
        timeout,
        responses_api=native,
        kind=kind,
        options=options,
        drop_params=drop_params,
    )
    auth = kind.authenticator(provider)
    return provider if auth is None else dataclasses.replace(provider, auth=auth)
