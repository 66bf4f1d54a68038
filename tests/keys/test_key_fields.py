"""Virtual-key fields alone: durations, expiries, budget periods and every field check."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from asgi_llmroute.keys.model import KeyInvalid, parse_duration, parse_expiry, validate_fields

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        (" 12h", timedelta(hours=12)),
        ("2w", timedelta(days=14)),
    ],
)
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize(
    ("text", "message"), [("0d", "longer than zero"), ("3y", "not a duration"), ("d", "not a duration")]
)
def test_bad_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_expiries() -> None:
    assert parse_expiry(None, NOW) is None and parse_expiry("never", NOW) is None
    assert parse_expiry("1d", NOW) == NOW + timedelta(days=1)
    assert parse_expiry("2026-02-01T00:00:00Z", NOW) == datetime(2026, 2, 1, tzinfo=timezone.utc)
    assert parse_expiry("2026-02-01", NOW) == datetime(2026, 2, 1, tzinfo=timezone.utc)  # naive: UTC
    with pytest.raises(ValueError, match="neither an ISO 8601 time nor a duration"):
        parse_expiry("next tuesday", NOW)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": "-bad"}, "name"),
        ({"name": "k", "team": "a b"}, "team"),
        ({"name": "k", "models": []}, "models"),
        ({"name": "k", "models": ["ok", "bad\n"]}, "models"),
        ({"name": "k", "models": ["m" * 257]}, "models"),
        ({"name": "k", "budget_period": "36h"}, "budget_period"),
        ({"name": "k", "budget_period": "soon"}, "budget_period"),
        ({"name": "k", "budget": float("inf")}, "budget"),
        ({"name": "k", "metadata": {"blob": "x" * 20000}}, "metadata"),
        ({"name": "k", "colour": "red"}, "colour"),
        ({}, "name"),
    ],
)
def test_each_bad_field_is_named(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(KeyInvalid) as info:
        validate_fields(fields)
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_good_fields_are_normalised() -> None:
    values = validate_fields(
        {"name": "k", "budget_period": "none", "expires_at": datetime(2026, 3, 1), "models": ["gpt-*"]}
    )
    assert values["budget_period"] is None
    assert values["expires_at"] == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert validate_fields({"budget_period": "30d"}, partial=True) == {"budget_period": "30d"}
    assert validate_fields({"budget_period": "weekly"}, partial=True) == {"budget_period": "weekly"}
