""".env import: well-known provider variables, and ``LLMROUTE_PROVIDER_<NAME>_<FIELD>`` for the rest.

Well-known variables (``OPENAI_API_KEY`` + ``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY`` +
``ANTHROPIC_BASE_URL``, and a few OpenAI-compatible services) become a provider each, named after
the service, with no models (route them as ``<provider>/<model>``). Any provider can be spelled out:

    LLMROUTE_PROVIDER_MY_VLLM_API=openai
    LLMROUTE_PROVIDER_MY_VLLM_BASE_URL=http://10.0.0.5:8000/v1
    LLMROUTE_PROVIDER_MY_VLLM_API_KEY=...
    LLMROUTE_PROVIDER_MY_VLLM_MODELS=llama=meta-llama/Llama-3.1-8B-Instruct,qwen
    LLMROUTE_PROVIDER_MY_VLLM_TIMEOUT=120

(provider ``my-vllm``). The file is parsed with python-dotenv, with no interpolation: values are
literals (``.env`` files hold the keys themselves) and a ``${NAME}`` in one is refused. Other
``*_API_KEY`` variables are listed as skipped (provider type not supported), the rest as not provider
variables; values are never shown.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from ..deferred import require
from .plan import Entry, ImportFileError, Issue, ParsedFile, key_from_string

__all__ = ["parse_dotenv"]


@dataclass(frozen=True)
class _Service:
    api: str
    base_url: str
    base_vars: tuple[str, ...]


_SERVICES = {
    "openai": _Service("openai", "https://api.openai.com/v1", ("OPENAI_BASE_URL", "OPENAI_API_BASE")),
    "anthropic": _Service("anthropic", "https://api.anthropic.com", ("ANTHROPIC_BASE_URL",)),
    "openrouter": _Service("openai", "https://openrouter.ai/api/v1", ("OPENROUTER_BASE_URL",)),
    "groq": _Service("openai", "https://api.groq.com/openai/v1", ("GROQ_BASE_URL",)),
    "mistral": _Service("openai", "https://api.mistral.ai/v1", ("MISTRAL_BASE_URL",)),
    "deepseek": _Service("openai", "https://api.deepseek.com/v1", ("DEEPSEEK_BASE_URL",)),
    "together": _Service("openai", "https://api.together.xyz/v1", ("TOGETHER_BASE_URL",)),
}
_QUOTED = re.compile(r"^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.]*\s*=\s*['\"]")
_GENERIC = re.compile(r"^LLMROUTE_PROVIDER_([A-Z0-9_]+?)_(API_KEY|BASE_URL|API|MODELS|TIMEOUT)$")


def _read(text: str) -> dict[str, tuple[str, int]]:
    """``NAME -> (value, line)``, parsed by python-dotenv's own rules (quotes, escapes, multi-line values).

    Nothing is interpolated: a ``${NAME}`` in a value would otherwise be stored as a literal key, so it is
    refused, naming the line and variable. A malformed line fails the whole file (its number is given).
    """
    parser = require("dotenv.parser", "store", what="Importing .env files")
    values: dict[str, tuple[str, int]] = {}
    for binding in parser.parse_stream(io.StringIO(text)):
        original = binding.original.string
        # python-dotenv counts blank lines before a statement as part of it: number the statement itself.
        lineno = binding.original.line + original[: len(original) - len(original.lstrip())].count("\n")
        if binding.error:
            if _QUOTED.match(original):
                raise ImportFileError(f"line {lineno}: unterminated quoted value")
            raise ImportFileError(f"line {lineno}: expected NAME=VALUE")
        if binding.key is None:
            continue  # a comment or a blank line
        value = binding.value if binding.value is not None else ""
        if "${" in value:
            raise ImportFileError(
                f"line {lineno}: {binding.key}: ${{...}} references are not expanded in imports; write the value itself"
            )
        values[binding.key] = (value, lineno)
    return values


def parse_dotenv(text: str) -> ParsedFile:
    values = _read(text)
    parsed = ParsedFile()
    used: set[str] = set()
    for name, service in _SERVICES.items():
        key_var = f"{name.upper()}_API_KEY"
        present = [v for v in (key_var, *service.base_vars) if v in values]
        if not present:
            continue
        used.update(present)
        base = next((values[v][0] for v in service.base_vars if v in values), service.base_url)
        where = " + ".join(f"{v} (line {values[v][1]})" for v in present)
        data = {"name": name, "api": service.api, "base_url": base}
        parsed.entries.append(Entry(where, data, key_from_string(values[key_var][0]) if key_var in values else None))
    generic: dict[str, dict[str, tuple[str, int]]] = {}
    for var, (value, lineno) in values.items():
        match = _GENERIC.match(var)
        if match:
            generic.setdefault(match.group(1), {})[match.group(2)] = (value, lineno)
            used.add(var)
    for raw_name, fields in generic.items():
        parsed.entries.append(_generic_entry(raw_name, fields))
    for var, (_, lineno) in values.items():
        if var in used:
            continue
        if var.endswith("_API_KEY"):
            reason = f"provider type not supported: {var[: -len('_API_KEY')].lower()}"
        elif var.startswith("LLMROUTE_PROVIDER_"):
            reason = "unknown field (expected _API, _BASE_URL, _API_KEY, _MODELS or _TIMEOUT)"
        else:
            reason = "not a provider variable"
        parsed.skipped.append(Issue(f"{var} (line {lineno})", reason))
    return parsed


def _generic_entry(raw_name: str, fields: dict[str, tuple[str, int]]) -> Entry:
    name = raw_name.lower().replace("_", "-")
    first = min(line for _, line in fields.values())
    where = f"LLMROUTE_PROVIDER_{raw_name}_* (line {first}) {name!r}"
    data: dict[str, object] = {"name": name}
    for field_name in ("API", "BASE_URL", "TIMEOUT"):
        if field_name in fields:
            data[field_name.lower()] = fields[field_name][0]
    if "MODELS" in fields:
        models = {}
        for item in fields["MODELS"][0].split(","):
            client, _, upstream = item.strip().partition("=")
            if client:
                models[client.strip()] = upstream.strip() or client.strip()
        data["models"] = models
    key = fields["API_KEY"][0] if "API_KEY" in fields else None
    return Entry(where, data, key_from_string(key) if key else None)
