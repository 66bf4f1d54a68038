"""Stored provider records: what the store keeps, how input is validated, and the redacted view.

A record is a :class:`~asgi_llmroute.providers.types.Provider` plus its models (client-facing name ->
upstream model id). :class:`ProviderSpec` validates every way a record comes in (CLI, admin API,
imports) with the same rules and messages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..fields import check_base_url, check_header_name, check_header_value, check_model_id, is_reference
from ..retry_policy import DEFAULT_RETRY_ON, RetryPolicy
from ..secret import Secret
from ..timeouts import UpstreamTimeouts
from .kinds import KindError, check_options, get_kind, options_tuple
from .types import API, Deployment, Provider, Route, make_provider

__all__ = [
    "NAME_PATTERN",
    "TUNING_KEYS",
    "ProviderFields",
    "ProviderRecord",
    "ProviderSpec",
    "describe_validation",
    "merge_routes",
]

NAME_PATTERN = r"^[A-Za-z0-9_.:-]+$"

#: Headers that carry credentials: they belong in ``api_key``, which is encrypted; headers are not.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"})


#: Per-provider settings a record may carry besides its identity (the same keys as ``[[providers]]``).
TUNING_KEYS = (
    "connect_timeout",
    "first_byte_timeout",
    "idle_timeout",
    "stream_timeout",
    "max_retries",
    "retry_on",
    "max_in_flight",
    "cooldown",
)


@dataclass(frozen=True)
class ProviderRecord:
    """A provider as the store keeps it (the key decrypted, inside a :class:`Secret`).

    ``kind`` is None for an ``api``-only provider; ``options`` are the kind's own settings;
    ``tuning`` the per-provider timeouts, retries and limits (:data:`TUNING_KEYS`) that were set.
    """

    name: str
    api: API
    base_url: str
    api_key: Secret | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 600.0
    models: Mapping[str, str] = field(default_factory=dict)
    responses_api: bool | None = False
    updated_at: str | None = field(default=None, compare=False)
    kind: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    #: None: the gateway's ``[translation] drop_params``.
    drop_params: bool | None = None
    tuning: Mapping[str, Any] = field(default_factory=dict)

    def provider(self, drop_params: bool = False) -> Provider:
        """The runtime provider; ``drop_params`` is the gateway's default for records that set none."""
        headers = tuple((k.lower(), v) for k, v in sorted(self.headers.items()))
        timeouts, retry = self._timeouts(), self._retry()
        drop = self.drop_params if self.drop_params is not None else drop_params
        if self.kind is None:
            return Provider(
                self.name,
                self.api,
                self.base_url,
                self.api_key,
                headers,
                self.timeout,
                responses_api=bool(self.responses_api),
                drop_params=drop,
                timeouts=timeouts,
                retry=retry,
                max_in_flight=self.tuning.get("max_in_flight"),
            )
        provider = make_provider(
            self.name,
            get_kind(self.kind),
            base_url=self.base_url,
            api_key=self.api_key,
            headers=headers,
            timeout=self.timeout,
            options=options_tuple(self.options),
            responses_api=self.responses_api,
            drop_params=drop,
        )
        limit = self.tuning.get("max_in_flight")
        if timeouts is None and retry is None and limit is None:
            return provider
        return dataclasses.replace(provider, timeouts=timeouts, retry=retry, max_in_flight=limit)

    def _timeouts(self) -> UpstreamTimeouts | None:
        tuning = self.tuning
        if not any(k in tuning for k in ("connect_timeout", "first_byte_timeout", "idle_timeout", "stream_timeout")):
            return None
        default = UpstreamTimeouts.from_total(self.timeout)
        return default._replace(
            connect=tuning.get("connect_timeout") or default.connect,
            first_byte=tuning.get("first_byte_timeout"),
            idle=tuning.get("idle_timeout") or default.idle,
            stream_total=tuning.get("stream_timeout"),
        )

    def _retry(self) -> RetryPolicy | None:
        tuning = self.tuning
        if not any(k in tuning for k in ("max_retries", "retry_on", "cooldown")):
            return None
        default = RetryPolicy()
        retry_on = tuning.get("retry_on")
        return RetryPolicy(
            max_retries=tuning.get("max_retries", default.max_retries),
            retry_on=frozenset(retry_on) if retry_on is not None else DEFAULT_RETRY_ON,
            cooldown=tuning.get("cooldown", default.cooldown),
        )

    def fields(self, *, include_key: bool = False) -> dict[str, Any]:
        """The record as plain data, in :class:`ProviderSpec`'s schema; the key only if asked."""
        identity = {"kind": self.kind} if self.kind is not None else {"api": self.api}
        out: dict[str, Any] = {"name": self.name, **identity, "base_url": self.base_url}
        if include_key:
            out["api_key"] = self.api_key.reveal() if self.api_key is not None else None
        out.update(headers=dict(self.headers), timeout=self.timeout, models=dict(self.models))
        out.update((k, v) for k, v in self.stored_options().items() if k != "kind")
        return out

    def stored_options(self) -> dict[str, Any]:
        """What the store keeps beside the columns (the ``options`` JSON)."""
        out: dict[str, Any] = {}
        if self.responses_api is not None and (self.responses_api or self.kind is not None):
            out["responses_api"] = self.responses_api
        if self.kind is not None:
            out["kind"] = self.kind
        if self.options:
            out["options"] = dict(self.options)
        if self.drop_params is not None:
            out["drop_params"] = self.drop_params
        out.update(self.tuning)
        return out

    def view(self) -> dict[str, Any]:
        """The redacted view that ``list``/``show`` and the admin API print."""
        key = self.api_key.redacted() if self.api_key is not None else None
        return {**self.fields(), "api_key": key, "updated_at": self.updated_at}

    def changes(self, other: ProviderRecord) -> list[str]:
        """The fields that differ from ``other`` (by name only: values may be secret)."""
        names = ("api", "kind", "base_url", "api_key", "headers", "timeout", "models", "responses_api", "options")
        changed = [n for n in names if getattr(self, n) != getattr(other, n)]
        changed += ["drop_params"] if self.drop_params != other.drop_params else []
        return changed + [k for k in TUNING_KEYS if self.tuning.get(k) != other.tuning.get(k)]


class ProviderFields(BaseModel):
    """The fields of a provider wherever one is written: a ``[[providers]]`` entry of the configuration
    (``config.ProviderConfig``) and a provider record as input (:class:`ProviderSpec`), with their shared checks.
    Each adds its own fields and rules (the name's limits, defaults of retries and cooldown, models, options)."""

    name: str
    #: ``api`` (any server of that format) or ``kind`` (docs/providers.md; defaults from the kind).
    api: Literal["openai", "anthropic"] | None = None
    kind: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=600.0, gt=0, allow_inf_nan=False)
    #: OpenAI-format providers: the provider serves ``/v1/responses`` itself (relayed as-is, not translated;
    #: docs/responses.md). Default: whether its kind does (``api = ...`` providers: false).
    responses_api: bool | None = None
    #: Fields the kind refuses are dropped (with a warning header) instead of refused with a 400;
    #: unset: the gateway's ``[translation] drop_params``.
    drop_params: bool | None = None
    #: Timeouts, retries, limits and the circuit breaker (docs/routing.md).
    connect_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    first_byte_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    idle_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    #: A total deadline for event streams; none by default (``timeout`` is for non-stream calls).
    stream_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    retry_on: list[int] | None = None
    max_in_flight: int | None = Field(default=None, gt=0)

    @field_validator("retry_on")
    @classmethod
    def _statuses(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(not 400 <= status <= 599 for status in value):
            raise ValueError("statuses must be between 400 and 599")
        return value


class ProviderSpec(ProviderFields):
    """A provider record as input. Unknown fields are errors; ``api_key`` is the key itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    #: Client-facing model name -> upstream model id; a list means the same names on both sides.
    models: dict[str, str] = Field(default_factory=dict)
    #: The kind's own settings (Azure's ``api_version``, ...), checked against the kind.
    options: dict[str, str] = Field(default_factory=dict)
    max_retries: int | None = Field(default=None, ge=0, le=10)
    cooldown: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)

    @model_validator(mode="after")
    def _kind(self) -> ProviderSpec:
        if self.kind is None:
            if self.api is None:
                raise ValueError('give kind (docs/providers.md) or api ("openai" or "anthropic")')
            if self.base_url is None:
                raise ValueError("base_url: required with api (or give a kind with a default base URL)")
            if self.options:
                raise ValueError("options: only providers with a kind have options")
            if self.responses_api and self.api != "openai":
                raise ValueError("responses_api: only OpenAI-format providers serve the Responses API")
            return self
        try:
            kind = get_kind(self.kind)
            check_options(kind, self.options, self.api_key is not None)
        except KindError as exc:
            raise ValueError(str(exc)) from None
        if self.api is not None and self.api != kind.wire:
            raise ValueError(f"kind {kind.name!r} speaks the {kind.wire!r} API, not {self.api!r}: leave api out")
        if self.base_url is None and kind.default_base_url is None:
            raise ValueError(f"base_url: kind {kind.name!r} has no default base URL: give one")
        if self.responses_api and kind.wire != "openai":
            raise ValueError("responses_api: only OpenAI-format providers serve the Responses API")
        return self

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("the key is empty (leave api_key out for a provider without a key)")
        if is_reference(value):
            # One rule on every write path: a reference is resolved by whoever may (the CLI), never stored.
            raise ValueError("is a reference (env:, file:, os.environ/), not a key; it is not resolved here")
        check_header_value(value, "the key")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, header_value in value.items():
            lowered = check_header_name(name)
            if lowered in _CREDENTIAL_HEADERS:
                raise ValueError(f"{name!r} carries credentials: put the key in api_key, which is encrypted")
            check_header_value(header_value, f"the value of {lowered!r}")
            out[lowered] = header_value
        return out

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, value: object) -> object:
        if isinstance(value, list):
            return {v: v for v in value} if all(isinstance(v, str) for v in value) else value
        return value

    @field_validator("models")
    @classmethod
    def _model_names(cls, value: dict[str, str]) -> dict[str, str]:
        for client, upstream in value.items():
            check_model_id(client)
            check_model_id(upstream)
        return value

    def record(self) -> ProviderRecord:
        key = Secret(self.api_key) if self.api_key is not None else None
        tuning = {k: getattr(self, k) for k in TUNING_KEYS if getattr(self, k) is not None}
        if self.kind is None:
            assert self.api is not None and self.base_url is not None
            return ProviderRecord(
                self.name,
                self.api,
                self.base_url,
                key,
                self.headers,
                self.timeout,
                self.models,
                bool(self.responses_api),
                drop_params=self.drop_params,
                tuning=tuning,
            )
        kind = get_kind(self.kind)
        base_url = self.base_url or kind.default_base_url
        assert base_url is not None
        return ProviderRecord(
            self.name,
            kind.wire,  # type: ignore[arg-type]
            base_url,
            key,
            self.headers,
            self.timeout,
            self.models,
            self.responses_api,
            kind=kind.name,
            options=dict(self.options),
            drop_params=self.drop_params,
            tuning=tuning,
        )


def describe_validation(exc: ValidationError) -> list[str]:
    """One ``field: problem`` line per error, never echoing the input (it may hold a key)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(f"{loc}: {message}" if loc else message)
    return lines


def merge_routes(
    records: Iterable[ProviderRecord], taken: Sequence[str] = (), providers: Mapping[str, Provider] | None = None
) -> list[Route]:
    """Routes for the records' models; a name several providers serve gets one deployment each.

    ``providers`` are the records' runtime providers by name, if already made (one object per record).
    """
    deployments: dict[str, list[Deployment]] = {}
    skip = set(taken)
    for record in records:
        provider = providers[record.name] if providers is not None else record.provider()
        for client, upstream in record.models.items():
            if client not in skip:
                deployments.setdefault(client, []).append(Deployment(provider, upstream))
    return [Route(name, tuple(d)) for name, d in deployments.items()]
