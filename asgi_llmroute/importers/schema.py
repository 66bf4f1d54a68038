"""Our own schema, shared by the TOML and JSON importers (and written by ``providers export``).

    [[providers]]                       # or {"providers": [...]} in JSON, or a bare JSON list
    name = "openai"
    api = "openai"
    base_url = "https://api.openai.com/v1"
    api_key = "env:OPENAI_API_KEY"      # literal, env:NAME or file:PATH (resolved at import time)
    headers = {}
    timeout = 600
    models = { "gpt" = "gpt-4o" }       # or ["gpt-4o"]

A whole ``llmroute.toml`` imports too: its ``[[models]]`` entries join their provider's ``models``
and its other sections (``[server]``, ``[[tokens]]``, ...) are listed as skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .plan import Entry, Issue, ParsedFile, key_from_string

__all__ = ["from_data"]

_CONFIG_SECTIONS = ("server", "tokens", "admin", "translation", "store")


def from_data(data: object, *, lines: Sequence[int] = ()) -> ParsedFile:
    """Entries from parsed TOML/JSON data; ``lines[i]`` is where ``providers[i]`` starts, if known."""
    parsed = ParsedFile()
    if isinstance(data, list):
        data = {"providers": data}
    if not isinstance(data, Mapping):
        parsed.errors.append(Issue("file", "expected a table/object with 'providers', or a JSON list"))
        return parsed
    for key in data:
        if key in _CONFIG_SECTIONS:
            parsed.skipped.append(Issue(key, "gateway settings, not provider data: not imported"))
        elif key not in ("providers", "models"):
            parsed.errors.append(Issue(key, "unknown top-level key"))
    providers = data.get("providers", [])
    if not isinstance(providers, list):
        parsed.errors.append(Issue("providers", "must be a list of providers"))
        return parsed
    by_name: dict[str, Entry] = {}
    for i, item in enumerate(providers):
        where = f"providers[{i}]"
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            where += f" {item['name']!r}"
        if i < len(lines):
            where += f" (line {lines[i]})"
        if not isinstance(item, Mapping):
            parsed.errors.append(Issue(where, "must be a table/object"))
            continue
        fields = dict(item)
        try:
            key = key_from_string(fields.pop("api_key", None))
        except ValueError as exc:
            parsed.errors.append(Issue(where, str(exc)))
            continue
        entry = Entry(where, fields, key)
        parsed.entries.append(entry)
        if isinstance(fields.get("name"), str):
            by_name.setdefault(fields["name"], entry)
    _config_models(data.get("models", []), by_name, parsed)
    return parsed


def _config_models(models: Any, by_name: Mapping[str, Entry], parsed: ParsedFile) -> None:
    """Fold ``[[models]]`` (the config file's schema) into their providers' ``models``."""
    if not isinstance(models, list):
        parsed.errors.append(Issue("models", "must be a list"))
        return
    for i, item in enumerate(models):
        where = f"models[{i}]"
        if not isinstance(item, Mapping):
            parsed.errors.append(Issue(where, "must be a table/object"))
            continue
        unknown = sorted(set(item) - {"name", "provider", "model", "weight"})
        name, provider, upstream = item.get("name"), item.get("provider"), item.get("model")
        if unknown:
            parsed.errors.append(Issue(where, f"unknown field(s): {', '.join(unknown)}"))
        elif not all(isinstance(v, str) and v for v in (name, provider, upstream)):
            parsed.errors.append(Issue(where, "needs 'name', 'provider' and 'model' strings"))
        elif provider not in by_name:
            parsed.errors.append(Issue(where, f"no provider named {provider!r} in this file"))
        else:
            entry = by_name[str(provider)]
            table = entry.data.setdefault("models", {})
            if not isinstance(table, dict):
                parsed.errors.append(Issue(where, f"provider {provider!r} already lists its models as a list"))
                continue
            if name in table and table[name] != upstream:
                parsed.errors.append(Issue(where, f"model {name!r} is given twice for provider {provider!r}"))
                continue
            table[name] = upstream
            if "weight" in item:
                parsed.skipped.append(Issue(where, "'weight' is not stored (one deployment per provider)"))
