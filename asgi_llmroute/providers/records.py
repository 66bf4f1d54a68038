"""Stored provider records: what the store keeps, how input is validated, and the redacted view.

A record is a :class:`~asgi_llmroute.providers.types.Provider` plus its models (client-facing name ->
upstream model id). :class:`ProviderSpec` validates every way a record comes in (CLI, admin API,
imports) with the same rules and messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..fields import check_base_url, check_header_name, check_header_value, check_model_id, is_reference
from ..secret import Secret
from .types import API, Deployment, Provider, Route

__all__ = ["NAME_PATTERN", "ProviderRecord", "ProviderSpec", "describe_validation", "merge_routes"]

NAME_PATTERN = r"^[A-Za-z0-9_.:-]+$"

#: Headers that carry credentials: they belong in ``api_key``, which is encrypted; headers are not.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"})


@dataclass(frozen=True)
class ProviderRecord:
    """A provider as the store keeps it (the key decrypted, inside a :class:`Secret`)."""

    name: str
    api: API
    base_url: str
    api_key: Secret | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 600.0
    models: Mapping[str, str] = field(default_factory=dict)
    responses_api: bool = False
    updated_at: str | None = field(default=None, compare=False)

    def provider(self) -> Provider:
        headers = tuple((k.lower(), v) for k, v in sorted(self.headers.items()))
        return Provider(
            self.name, self.api, self.base_url, self.api_key, headers, self.timeout, responses_api=self.responses_api
        )

    def fields(self, *, include_key: bool = False) -> dict[str, Any]:
        """The record as plain data, in :class:`ProviderSpec`'s schema; the key only if asked."""
        out: dict[str, Any] = {"name": self.name, "api": self.api, "base_url": self.base_url, "api_key": None}
        if include_key and self.api_key is not None:
            out["api_key"] = self.api_key.reveal()
        elif not include_key:
            del out["api_key"]
        out.update(headers=dict(self.headers), timeout=self.timeout, models=dict(self.models))
        if self.responses_api:
            out["responses_api"] = True
        return out

    def view(self) -> dict[str, Any]:
        """The redacted view that ``list``/``show`` and the admin API print."""
        key = self.api_key.redacted() if self.api_key is not None else None
        return {**self.fields(), "api_key": key, "updated_at": self.updated_at}

    def changes(self, other: ProviderRecord) -> list[str]:
        """The fields that differ from ``other`` (by name only: values may be secret)."""
        names = ("api", "base_url", "api_key", "headers", "timeout", "models", "responses_api")
        return [n for n in names if getattr(self, n) != getattr(other, n)]


class ProviderSpec(BaseModel):
    """A provider record as input. Unknown fields are errors; ``api_key`` is the key itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128, pattern=NAME_PATTERN)
    api: Literal["openai", "anthropic"]
    base_url: str
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=600.0, gt=0)
    #: Client-facing model name -> upstream model id; a list means the same names on both sides.
    models: dict[str, str] = Field(default_factory=dict)
    #: ``api = "openai"`` only: the provider serves ``/v1/responses`` itself (docs/responses.md).
    responses_api: bool = False

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_base_url(value)

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
        return ProviderRecord(
            self.name, self.api, self.base_url, key, self.headers, self.timeout, self.models, self.responses_api
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


def merge_routes(records: Iterable[ProviderRecord], taken: Sequence[str] = ()) -> list[Route]:
    """Routes for the records' models; a name several providers serve gets one deployment each."""
    deployments: dict[str, list[Deployment]] = {}
    skip = set(taken)
    for record in records:
        provider = record.provider()
        for client, upstream in record.models.items():
            if client not in skip:
                deployments.setdefault(client, []).append(Deployment(provider, upstream))
    return [Route(name, tuple(d)) for name, d in deployments.items()]
