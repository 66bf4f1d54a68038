"""Our own provider-file schema (TOML/JSON/.lenv imports): each problem is located and explained,
and a whole llmroute.toml's [[models]] fold into their providers."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llmroute.importers.schema import from_data

OPENAI = {"name": "oa", "api": "openai", "base_url": "https://api.openai.com/v1"}


def issues(data: Any, kind: str = "errors", **kw: Any) -> list[str]:
    return [str(i) for i in getattr(from_data(data, **kw), kind)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("text", ["file: expected a table/object with 'providers', or a JSON list"]),
        ({"providers": {}}, ["providers: must be a list of providers"]),
        ({"providers": [], "extras": 1}, ["extras: unknown top-level key"]),
        ([3], ["providers[0]: must be a table/object"]),
        ([{**OPENAI, "api_key": 5}], ["providers[0] 'oa': api_key: must be a string"]),
        ({"providers": [OPENAI], "models": {}}, ["models: must be a list"]),
        ({"providers": [OPENAI], "models": ["m"]}, ["models[0]: must be a table/object"]),
        (
            {"providers": [OPENAI], "models": [{"name": "a", "provider": "oa", "model": "m", "rpm": 5}]},
            ["models[0]: unknown field(s): rpm"],
        ),
        (
            {"providers": [OPENAI], "models": [{"name": "a", "provider": "oa"}]},
            ["models[0]: needs 'name', 'provider' and 'model' strings"],
        ),
        (
            {"providers": [OPENAI], "models": [{"name": "a", "provider": "other", "model": "m"}]},
            ["models[0]: no provider named 'other' in this file"],
        ),
        (
            {
                "providers": [{**OPENAI, "models": ["gpt-4o"]}],
                "models": [{"name": "a", "provider": "oa", "model": "m"}],
            },
            ["models[0]: provider 'oa' already lists its models as a list"],
        ),
        (
            {
                "providers": [OPENAI],
                "models": [
                    {"name": "a", "provider": "oa", "model": "m1"},
                    {"name": "a", "provider": "oa", "model": "m2"},
                ],
            },
            ["models[1]: model 'a' is given twice for provider 'oa'"],
        ),
    ],
)
def test_problems_are_located(data: Any, expected: list[str]) -> None:
    assert issues(data) == expected


def test_lines_locate_entries() -> None:
    assert issues([{"name": "x", "api_key": []}], lines=[7]) == ["providers[0] 'x' (line 7): api_key: must be a string"]


def test_a_whole_config_file_folds_its_models_and_skips_its_settings() -> None:
    data = {
        "server": {"port": 1},
        "tokens": [{"name": "t"}],
        "providers": [{**OPENAI, "api_key": "env:OPENAI_API_KEY"}],
        "models": [
            {"name": "gpt", "provider": "oa", "model": "gpt-4o", "weight": 2},
            {"name": "gpt", "provider": "oa", "model": "gpt-4o"},  # the same again: fine
        ],
    }
    parsed = from_data(data)
    assert parsed.errors == []
    assert [str(i) for i in parsed.skipped] == [
        "server: gateway settings, not provider data: not imported",
        "tokens: gateway settings, not provider data: not imported",
        "models[0]: 'weight' is not stored (one deployment per provider)",
    ]
    (entry,) = parsed.entries
    assert entry.data["models"] == {"gpt": "gpt-4o"}
    assert "api_key" not in entry.data
