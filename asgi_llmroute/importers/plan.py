"""What every importer produces (a :class:`ParsedFile`) and what an import would do (an :class:`ImportPlan`).

Parsing is format-specific; planning is shared: each entry's key reference is resolved, the entry
is validated as a :class:`ProviderSpec`, checked against the rest of the file, the config file and
the store, and classified as an addition, an update (naming the fields that change) or unchanged.
An entry without ``api_key`` that updates a stored record keeps the stored key, so a file exported
without keys can be imported back without erasing them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ..providers.records import ProviderRecord, ProviderSpec, describe_validation
from ..secret import SecretReferenceError, resolve_reference

__all__ = ["Entry", "ImportFileError", "ImportPlan", "Issue", "KeyRef", "ParsedFile", "build_plan", "key_from_string"]


class ImportFileError(ValueError):
    """The file cannot be imported at all (unreadable, not the format, ...)."""


@dataclass(frozen=True)
class Issue:
    """A problem or a skipped item, located (``where``: entry, name and/or line)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class KeyRef:
    """A key given by reference: resolved when the plan is built, never stored as a reference."""

    kind: Literal["env", "file"]
    target: str
    #: A missing default (LiteLLM's implicit OPENAI_API_KEY) means "no key", not an error.
    optional: bool = False
    #: Variables the file itself defines (LiteLLM ``environment_variables``), searched first.
    env: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"


@dataclass
class Entry:
    """One provider as read from the file: spec fields, and the key (literal, reference or absent)."""

    where: str
    data: dict[str, Any]
    api_key: str | KeyRef | None = None


@dataclass
class ParsedFile:
    entries: list[Entry] = field(default_factory=list)
    skipped: list[Issue] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


@dataclass
class ImportPlan:
    """What an import changes. It may be applied only when ``errors`` is empty (or they are skipped)."""

    add: list[ProviderRecord] = field(default_factory=list)
    update: list[tuple[ProviderRecord, list[str]]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Issue] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    def records(self) -> list[ProviderRecord]:
        """The records to write: the additions and the updates."""
        return [*self.add, *(record for record, _ in self.update)]

    def as_json(self) -> dict[str, Any]:
        issues = {
            k: [{"where": i.where, "message": i.message} for i in v]
            for k, v in (("skipped", self.skipped), ("errors", self.errors), ("warnings", self.warnings))
        }
        return {
            "add": [r.view() for r in self.add],
            "update": [{**r.view(), "changed": fields} for r, fields in self.update],
            "unchanged": self.unchanged,
            **issues,
        }

    def render(self) -> str:
        """The plan as text for the terminal (keys redacted)."""
        lines = []
        for record in self.add:
            lines.append(f"add     {record.name} ({record.api}, {record.base_url}, {_models(record)})")
        for record, fields in self.update:
            lines.append(f"update  {record.name} ({', '.join(fields)} changed)")
        lines += [f"same    {name}" for name in self.unchanged]
        lines += [f"skipped {issue}" for issue in self.skipped]
        lines += [f"warning {issue}" for issue in self.warnings]
        lines += [f"error   {issue}" for issue in self.errors]
        return "\n".join(lines) if lines else "nothing to import"


def _models(record: ProviderRecord) -> str:
    if not record.models:
        return f"no models; use {record.name}/<model>"
    return "models " + ", ".join(record.models)


def _resolve(ref: KeyRef, base_dir: Path | None, allow_refs: bool) -> str | None:
    if not allow_refs:
        raise ValueError(
            f"api_key: the reference {ref} is not resolved here (over the admin API the server's "
            "environment and files are off limits); import this file with the CLI, or give the key itself"
        )
    if ref.kind == "env" and ref.optional and ref.target not in ref.env and ref.target not in os.environ:
        return None
    try:
        return resolve_reference(f"{ref.kind}:{ref.target}", base_dir=base_dir, env=ref.env)
    except SecretReferenceError as exc:
        raise ValueError(f"api_key: {exc}") from None


def build_plan(
    parsed: ParsedFile,
    existing: Mapping[str, ProviderRecord],
    *,
    unreadable: Mapping[str, str] | None = None,
    reserved_providers: Collection[str] = (),
    reserved_models: Collection[str] = (),
    allow_refs: bool = True,
    base_dir: Path | None = None,
) -> ImportPlan:
    """Validate ``parsed`` against the store's ``existing`` records and the config file's names.

    ``unreadable`` maps stored records that cannot be decrypted to why; ``allow_refs=False`` refuses
    ``env:``/``file:`` key references (the admin API must not read the server's environment).
    """
    plan = ImportPlan(skipped=list(parsed.skipped), errors=list(parsed.errors), warnings=list(parsed.warnings))
    unreadable = unreadable or {}
    seen: dict[str, str] = {}
    for entry in parsed.entries:
        try:
            record = _validate(entry, base_dir, allow_refs)
        except ValueError as exc:
            plan.errors.append(Issue(entry.where, str(exc)))
            continue
        name = record.name
        problems = []
        if name in seen:
            problems.append(f"the provider name {name!r} is used twice (first at {seen[name]})")
        if name in reserved_providers:
            problems.append(f"{name!r} is a provider in the config file (a name may be in one place only)")
        taken = sorted(set(record.models) & set(reserved_models))
        if taken:
            problems.append(f"model(s) {', '.join(taken)} are defined in the config file")
        seen.setdefault(name, entry.where)
        current = existing.get(name)
        if record.api_key is None and name in unreadable:
            problems.append(f"cannot keep the stored key of {name!r} ({unreadable[name]}); give api_key")
        if problems:
            plan.errors.extend(Issue(entry.where, p) for p in problems)
            continue
        if record.api_key is None and current is not None and current.api_key is not None:
            record = dataclasses.replace(record, api_key=current.api_key)
        elif record.api_key is None and isinstance(entry.api_key, KeyRef):
            plan.warnings.append(Issue(entry.where, f"{entry.api_key.target} is not set: {name!r} gets no key"))
        if current is None:
            plan.add.append(record)
            continue
        changed = record.changes(current)
        if changed:
            plan.update.append((record, changed))
        else:
            plan.unchanged.append(name)
    return plan


def _validate(entry: Entry, base_dir: Path | None, allow_refs: bool) -> ProviderRecord:
    key = entry.api_key
    if isinstance(key, KeyRef):
        key = _resolve(key, base_dir, allow_refs)
    data = dict(entry.data)
    if "api_key" in data:
        raise ValueError("api_key: give the key through the entry's key, not twice")
    if key is not None:
        data["api_key"] = key
    try:
        return ProviderSpec.model_validate(data).record()
    except ValidationError as exc:
        raise ValueError("; ".join(describe_validation(exc))) from None


def key_from_string(value: object, env: Mapping[str, str] | None = None) -> str | KeyRef | None:
    """A key reference (``env:NAME``, ``file:PATH``, LiteLLM's ``os.environ/NAME``) or a literal key.

    The same rule in every import format: a string with one of those prefixes is never a literal.
    ``env`` holds variables the file itself defines (LiteLLM ``environment_variables``).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("api_key: must be a string")
    stripped = value.strip()
    if stripped.startswith("env:"):
        return KeyRef("env", stripped[4:], env=env or {})
    if stripped.startswith("os.environ/"):
        return KeyRef("env", stripped[len("os.environ/") :], env=env or {})
    if stripped.startswith("file:"):
        return KeyRef("file", stripped[5:])
    return value
