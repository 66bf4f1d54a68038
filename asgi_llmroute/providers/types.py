"""Runtime records for providers, deployments and routes (what resolution hands the forwarder)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..secret import Secret

__all__ = ["API", "Deployment", "Provider", "Route"]

API = Literal["openai", "anthropic"]


@dataclass(frozen=True, slots=True)
class Provider:
    """An upstream API endpoint and the credentials the gateway uses for it.

    ``base_url`` follows each SDK's own convention: OpenAI-style bases end in ``/v1``
    (the gateway appends ``/chat/completions``), Anthropic bases do not (it appends ``/v1/messages``).
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
    #: What layers work out once from this record (the forwarder's header plan, credentials included):
    #: it lives exactly as long as the record, so a removed or rotated provider leaves nothing behind.
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))


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
