"""Links notation (``.lenv``) imports: the link-assistant router's provider files, and our own schema.

Three shapes (docs/providers.md, "Importing providers"):

- the router's provider store, ``<data_dir>/providers.lenv``: comment lines and one
  ``PROVIDER: {json}`` line per provider (``name``, ``kind``, ``base_url``, ``models``,
  ``default_model``, ``api_key_env``, ``encrypted_api_key``, ``enabled``). An encrypted key is
  AES-256-GCM under SHA-256 of the router's ``TOKEN_SECRET`` (``aes256gcm:`` + base64 of nonce,
  ciphertext and tag): it is decrypted when ``TOKEN_SECRET`` is set, and stored again under our
  store's own key;
- the router's indented provider list: a provider's name alone on a line, its fields indented
  below (``kind``, ``base-url``, ``model``, ``models "a,b"``, ``api-key``, ``api-key-env``,
  ``enabled``);
- our own schema in Links notation (a ``providers`` section, as in ``llmroute serve --config x.lenv``).

The router's OpenAI-compatible kinds (``openai-compatible``, ``openai``, ``openai_like``,
``litellm``) are ``api = "openai"`` providers; its ``z.ai-coding-plan`` kind (a subscriber policy
we do not have) is skipped, named.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..deferred import require
from ..lenv import LenvError, Node, read_tree, to_data
from ..providers.kinds import KindError, get_kind
from ..providers.records import ProviderSpec
from .plan import Entry, ImportFileError, Issue, KeyRef, ParsedFile, key_from_string
from .schema import from_data

__all__ = ["parse_lenv"]

#: The router's names for a generic OpenAI-compatible upstream.
_OPENAI_COMPATIBLE = frozenset({"openai", "openai-compatible", "openai_like", "litellm"})
_UNSUPPORTED_KINDS = frozenset({"z.ai-coding-plan", "zai-coding-plan"})
#: Record fields of the router's that only its z.ai Coding Plan policy reads.
_POLICY_FIELDS = ("subscriber_id", "intermediary_risk_acknowledged", "unsupported_clients")
_INDENTED_FIELDS = {
    "kind": "kind",
    "base_url": "base_url",
    "base-url": "base_url",
    "api_base": "base_url",
    "api-base": "base_url",
    "model": "default_model",
    "default_model": "default_model",
    "default-model": "default_model",
    "models": "models",
    "api_key": "api_key",
    "api-key": "api_key",
    "api_key_env": "api_key_env",
    "api-key-env": "api_key_env",
    "enabled": "enabled",
}
#: The config file's sections that hold no provider data.
_CONFIG_SECTIONS = frozenset(
    {"server", "tokens", "admin", "translation", "store", "routing", "logging", "metrics", "usage"}
    | {"state", "keys", "teams", "prices"}
)


def parse_lenv(text: str) -> ParsedFile:
    """A ``.lenv`` file's providers (:class:`ImportFileError` when it is not one of the three shapes)."""
    if any(line.strip().startswith("PROVIDER:") for line in text.splitlines()):
        return _store_file(text)
    try:
        nodes = read_tree(text)
    except LenvError as exc:
        raise ImportFileError(str(exc)) from None
    if not nodes:
        raise ImportFileError("the file holds no providers")
    if any(n.key in ("providers", "models") and not n.values and n.children for n in nodes):
        return _our_schema(nodes)
    return _provider_list(nodes)


# -- the router's providers.lenv ------------------------------------------------------------------


def _store_file(text: str) -> ParsedFile:
    parsed = ParsedFile()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {number}"
        key, sep, value = line.partition(":")
        if not sep or key.strip() != "PROVIDER":
            parsed.errors.append(Issue(where, "expected 'PROVIDER: {json}' (a provider store of the router)"))
            continue
        try:
            record = json.loads(value)
        except json.JSONDecodeError as exc:
            parsed.errors.append(Issue(where, f"the PROVIDER value is not JSON ({exc.msg}, column {exc.colno})"))
            continue
        if not isinstance(record, dict):
            parsed.errors.append(Issue(where, "the PROVIDER value must be a JSON object"))
            continue
        _router_record(record, where, parsed)
    return parsed


def _router_record(record: Mapping[str, Any], where: str, parsed: ParsedFile) -> None:
    """One router provider (a store record or an indented entry) as an entry, skipped or an error."""
    name = record.get("name")
    if not isinstance(name, str) or not name.strip():
        parsed.errors.append(Issue(where, "the provider has no name"))
        return
    where = f"{where} {name!r}"
    if record.get("enabled", True) is False:
        parsed.skipped.append(Issue(where, "disabled in the router (enabled false): not imported"))
        return
    kind = str(record.get("kind") or "openai-compatible").strip()
    if kind.lower() in _UNSUPPORTED_KINDS:
        parsed.skipped.append(Issue(where, f"the router's kind {kind!r} (a subscriber policy) is not supported"))
        return
    fields: dict[str, Any] = {"name": name.strip()}
    if kind.lower() in _OPENAI_COMPATIBLE:
        fields["api"] = "openai"
    else:
        try:
            fields["kind"] = get_kind(kind).name
        except KindError as exc:
            parsed.errors.append(Issue(where, f"kind: {exc}"))
            return
    if record.get("base_url"):
        fields["base_url"] = record["base_url"]
    models = record.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        parsed.errors.append(Issue(where, "models: must be a list of model names"))
        return
    default = record.get("default_model")
    if isinstance(default, str) and default:
        if default not in models:
            models = [*models, default]
        parsed.warnings.append(
            Issue(where, f"default_model {default!r}: served as a model name (a request must name its model)")
        )
    fields["models"] = list(dict.fromkeys(models))
    unknown = sorted(set(record) - {"name", "kind", "base_url", "default_model", "models", "api_key"} - _KEY_FIELDS)
    if any(record.get(k) for k in _POLICY_FIELDS):
        parsed.skipped.append(Issue(where, "the router's subscriber policy fields are not imported"))
    unknown = [k for k in unknown if k not in _POLICY_FIELDS and k != "enabled"]
    if unknown:
        parsed.warnings.append(Issue(where, f"field(s) not imported: {', '.join(unknown)}"))
    try:
        key = _router_key(record)
    except ValueError as exc:
        parsed.errors.append(Issue(where, str(exc)))
        return
    parsed.entries.append(Entry(where, fields, key))


_KEY_FIELDS = frozenset({"api_key_env", "encrypted_api_key"})


def _router_key(record: Mapping[str, Any]) -> str | KeyRef | None:
    """The key as the router resolves it: ``api_key_env`` when set, else the encrypted key, else ``api_key``."""
    variable = record.get("api_key_env")
    encrypted = record.get("encrypted_api_key")
    if isinstance(variable, str) and variable and (os.environ.get(variable) or not encrypted):
        return KeyRef("env", variable)
    if isinstance(encrypted, str) and encrypted:
        return _decrypt(encrypted)
    return key_from_string(record.get("api_key") or None)


def _decrypt(encrypted: str) -> str:
    secret = os.environ.get("TOKEN_SECRET", "")
    if not secret:
        raise ValueError(
            "api key: encrypted with the router's TOKEN_SECRET: set TOKEN_SECRET to import it "
            "(or give api_key_env in the file)"
        )
    if not encrypted.startswith("aes256gcm:"):
        raise ValueError("encrypted_api_key: not the router's aes256gcm: format")
    aead = require("cryptography.hazmat.primitives.ciphers.aead", "store", what="Decrypting a router key")
    try:
        packed = base64.b64decode(encrypted[len("aes256gcm:") :], validate=True)
        if len(packed) < 13:
            raise ValueError
        plain = aead.AESGCM(hashlib.sha256(secret.encode()).digest()).decrypt(packed[:12], packed[12:], None)
        return str(plain.decode("utf-8"))
    except Exception:  # InvalidTag, bad base64 or UTF-8: one message, nothing of the secret in it
        raise ValueError("encrypted_api_key: does not decrypt under TOKEN_SECRET (another router's secret?)") from None


# -- the router's indented provider list ----------------------------------------------------------


def _provider_list(nodes: list[Node]) -> ParsedFile:
    parsed = ParsedFile()
    for node in nodes:
        where = node.at().removesuffix(": ") or "entry"
        if node.values:
            parsed.errors.append(
                Issue(where, f"expected a provider name alone on a line, got {' '.join(node.words)!r}")
            )
            continue
        record: dict[str, Any] = {"name": node.key}
        problem = None
        for child in node.children:
            field = _INDENTED_FIELDS.get(child.key)
            if field is None:
                problem = f"{child.at()}unknown provider field {child.key!r}"
            elif len(child.values) != 1 or child.children:
                problem = f"{child.at()}{child.key}: expected one value (quote values with spaces or ':')"
            elif field == "models":
                record["models"] = [m.strip() for m in child.values[0].split(",") if m.strip()]
            elif field == "enabled":
                record["enabled"] = child.values[0] in ("true", "1", "yes")
            else:
                record[field] = child.values[0]
            if problem:
                break
        if problem:
            parsed.errors.append(Issue(f"{where} {node.key!r}", problem.removesuffix(": ")))
            continue
        _router_record(record, where, parsed)
    return parsed


# -- our own schema -------------------------------------------------------------------------------


class _ModelRow(BaseModel):
    """A ``models`` entry as the config file has it (only name, provider and model are imported)."""

    model_config = ConfigDict(extra="allow")
    name: str
    provider: str
    model: str
    weight: float = 1.0
    fallbacks: list[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    capabilities: dict[str, str] | None = None


class _File(BaseModel):
    providers: list[ProviderSpec] = Field(default_factory=list)
    models: list[_ModelRow] = Field(default_factory=list)


def _our_schema(nodes: list[Node]) -> ParsedFile:
    skipped = [n for n in nodes if n.key in _CONFIG_SECTIONS]
    lines: dict[tuple[Any, ...], int] = {}
    try:
        data = to_data([n for n in nodes if n.key not in _CONFIG_SECTIONS], _File, lines=lines)
    except LenvError as exc:
        raise ImportFileError(str(exc)) from None
    starts = [lines.get(("providers", i)) for i in range(len(data.get("providers", [])))]
    parsed = from_data(data, lines=[n for n in starts if n is not None] if None not in starts else ())
    parsed.skipped.extend(Issue(n.key, "gateway settings, not provider data: not imported") for n in skipped)
    return parsed
