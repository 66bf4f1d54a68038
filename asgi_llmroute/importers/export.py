"""``providers export``: stored records written in our own schema (TOML or JSON), keys only if asked.

The output imports back unchanged (an import without ``api_key`` keeps the stored keys).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..providers.records import ProviderRecord

__all__ = ["export_json", "export_toml"]


def export_json(records: Iterable[ProviderRecord], *, include_keys: bool = False) -> str:
    data = {"providers": [_clean(r.fields(include_key=include_keys)) for r in records]}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def export_toml(records: Iterable[ProviderRecord], *, include_keys: bool = False) -> str:
    note = "API keys included: keep this file secret" if include_keys else "API keys not included (--include-keys)"
    out = [f"# llmroute providers export; {note}.", ""]
    for record in records:
        out.append("[[providers]]")
        for key, value in _clean(record.fields(include_key=include_keys)).items():
            out.append(f"{key} = {_toml_value(value)}")
        out.append("")
    return "\n".join(out)


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_string(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(float(value))
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_string(value: str) -> str:
    # JSON's escapes are TOML's (with ensure_ascii=False no surrogate pairs); DEL must be escaped too.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
