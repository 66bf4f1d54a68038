"""Virtual keys as values: the record, the fields a caller may set, budget periods and expiry.

A virtual key is a router token created at run time (admin API, CLI, LiteLLM's ``/key/*``). The
gateway never keeps its secret: the store holds a keyed digest and a short display prefix. Budgets
reset per calendar period in UTC (``daily``: midnight, ``weekly``: Monday midnight, ``monthly``: the
1st) or every ``N`` days from the key's creation day (``"Nd"``, LiteLLM's ``budget_duration``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "KEY_PREFIX",
    "KeyFields",
    "KeyInvalid",
    "VirtualKey",
    "budget_window",
    "new_key_id",
    "new_secret",
    "parse_duration",
    "parse_expiry",
    "validate_fields",
]

#: Every virtual key starts with this, so a leaked one is recognisable (and scanners can find it).
KEY_PREFIX = "sk-llmroute-vk-"
_PERIODS = ("daily", "weekly", "monthly")
_DURATION = re.compile(r"^(\d{1,5})([smhdw])$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$")


class KeyInvalid(ValueError):
    """A key's fields are not acceptable; ``problems`` has one ``field: problem`` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def new_secret() -> str:
    """A fresh key secret: the prefix and 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    """A public, random identifier of a key (what LiteLLM calls its ``token``)."""
    return "vk_" + secrets.token_hex(12)


def display_prefix(secret: str) -> str:
    """What list/show output shows of a secret: enough to recognise it, nothing to use."""
    return secret[: len(KEY_PREFIX) + 6] + "..."


def parse_duration(text: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"15m"``, ``"90s"``, ``"2w"`` -> a timedelta (ValueError otherwise)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like '30d', '12h', '15m', '90s' or '2w'")
    count, unit = int(match[1]), match[2]
    if count == 0:
        raise ValueError("a duration must be longer than zero")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}[unit]
    return timedelta(seconds=count * seconds)


def parse_expiry(value: str | None, now: datetime) -> datetime | None:
    """An expiry given as an ISO 8601 time or a duration from ``now`` (``"permanent"``/None: none)."""
    if value is None or value in ("", "permanent", "never", "none"):
        return None
    try:
        return now + parse_duration(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither an ISO 8601 time nor a duration like '30d'") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _check_period(value: str | None) -> str | None:
    if value is None or value in _PERIODS:
        return value
    if value in ("none", ""):
        return None
    delta = parse_duration(value)
    if delta.total_seconds() % 86400:
        raise ValueError("a budget period is 'daily', 'weekly', 'monthly' or a whole number of days ('30d')")
    return value


class KeyFields(BaseModel):
    """What a caller may set on a key (create takes all of them, update any subset)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    team: str | None = None
    models: list[str] = Field(default_factory=lambda: ["*"])
    rpm: int | None = Field(default=None, gt=0, strict=True)  # true is not 1
    tpm: int | None = Field(default=None, gt=0, strict=True)
    max_in_flight: int | None = Field(default=None, gt=0, strict=True)
    budget: float | None = Field(default=None, ge=0, le=1e9, allow_inf_nan=False)
    budget_period: str | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name", "team")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError("1-128 characters: letters, digits and _ . : @ / - (starting with a letter or digit)")
        return value

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one model pattern ('*' allows every model)")
        for pattern in value:
            if not pattern or len(pattern) > 256 or any(ord(c) < 32 or ord(c) == 127 for c in pattern):
                raise ValueError(f"{pattern!r} is not a model name pattern")
        return value

    @field_validator("budget_period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        return _check_period(value)

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(repr(value)) > 16384:
            raise ValueError("at most 16 KiB of metadata")
        return value


def validate_fields(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """``data`` checked as :class:`KeyFields`; raises :class:`KeyInvalid` naming every bad field."""
    try:
        if partial:
            full = KeyFields.model_validate({"name": "x", **data})
            return {k: getattr(full, k) for k in data}
        return KeyFields.model_validate(data).model_dump()
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = ".".join(str(p) for p in error["loc"])
            message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append(f"{loc}: {message.removeprefix('Value error, ')}" if loc else message)
        raise KeyInvalid(problems) from None


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A stored virtual key (never its secret)."""

    id: str
    name: str
    prefix: str
    created_at: datetime
    team: str | None = None
    models: tuple[str, ...] = ("*",)
    rpm: int | None = None
    tpm: int | None = None
    max_in_flight: int | None = None
    budget: float | None = None
    budget_period: str | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    revoked_at: datetime | None = None
    updated_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def public(self) -> dict[str, Any]:
        """The key as the admin API shows it (JSON-ready; no secret, no digest)."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "team": self.team,
            "models": list(self.models),
            "rpm": self.rpm,
            "tpm": self.tpm,
            "max_in_flight": self.max_in_flight,
            "budget": self.budget,
            "budget_period": self.budget_period,
            "expires_at": _iso(self.expires_at),
            "metadata": self.metadata,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "revoked_at": _iso(self.revoked_at),
        }


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def budget_window(period: str | None, created: date, today: date) -> tuple[date, date | None]:
    """The first day of the budget period holding ``today`` and the first day of the next one.

    With no period the window is the key's whole life (``next`` is None: it never resets).
    """
    if period is None:
        return created, None
    if period == "daily":
        return today, today + timedelta(days=1)
    if period == "weekly":
        start = today - timedelta(days=today.weekday())
        return start, start + timedelta(days=7)
    if period == "monthly":
        start = today.replace(day=1)
        following = (start + timedelta(days=32)).replace(day=1)
        return start, following
    days = int(parse_duration(period).total_seconds() // 86400)
    elapsed = max((today - created).days, 0)
    start = created + timedelta(days=elapsed - elapsed % days)
    return start, start + timedelta(days=days)
