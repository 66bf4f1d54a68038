"""Secret values and the references that stand for them: ``env:NAME``, ``file:PATH`` and LiteLLM's ``os.environ/NAME``.

Every place that reads a reference (the TOML config, provider imports, LiteLLM configs) resolves it
here, so the forms, their errors and their messages are the same everywhere.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "REFERENCE_PREFIXES",
    "Secret",
    "SecretReferenceError",
    "is_reference",
    "litellm_env_var",
    "redact",
    "redact_url",
    "resolve_reference",
]

#: LiteLLM's reference to an environment variable: ``os.environ/NAME``.
LITELLM_ENV_PREFIX = "os.environ/"
#: Prefixes that make a string a reference to a secret (ours, and LiteLLM's ``os.environ/NAME``).
REFERENCE_PREFIXES = ("env:", "file:", LITELLM_ENV_PREFIX)


class SecretReferenceError(ValueError):
    """A ``env:`` or ``file:`` reference could not be resolved."""


class Secret:
    """A string that never shows itself in ``repr``/``str``; call :meth:`reveal` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redacted(self) -> str:
        return redact(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        # Constant time: comparing secrets must not tell an attacker how much of a guess was right.
        if not isinstance(other, Secret):
            return False
        return hmac.compare_digest(
            self._value.encode("utf-8", "surrogatepass"), other._value.encode("utf-8", "surrogatepass")
        )

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def redact(value: str) -> str:
    """``sk-...abcd``: enough to recognise a key, never enough to use it."""
    if len(value) < 12:
        return "****"
    prefix = value[:3] if value[:3].isalpha() or value.startswith("sk-") else ""
    return f"{prefix}...{value[-4:]}"


def redact_url(url: str, unparsable: str) -> str:
    """``url`` (a Redis URL, a PostgreSQL DSN) without its password, for messages; ``unparsable`` if unreadable."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return unparsable


def is_reference(value: str) -> bool:
    """Whether ``value`` is an ``env:``/``file:``/``os.environ/`` reference rather than a literal."""
    return value.startswith(REFERENCE_PREFIXES)


def litellm_env_var(value: str) -> str | None:
    """``NAME`` for LiteLLM's ``os.environ/NAME``, else None."""
    return value[len(LITELLM_ENV_PREFIX) :] if value.startswith(LITELLM_ENV_PREFIX) else None


def resolve_reference(value: str, *, base_dir: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Resolve ``env:NAME`` (LiteLLM spells it ``os.environ/NAME``) and ``file:PATH``; others are literals.

    Relative ``file:`` paths are taken from ``base_dir`` (the config file's folder); ``env`` is looked
    up before the process environment (a LiteLLM file's ``environment_variables``).
    Error messages name the variable or file, never a value.
    """
    if value.startswith(("env:", LITELLM_ENV_PREFIX)):
        name = value[4:] if value.startswith("env:") else value[len(LITELLM_ENV_PREFIX) :]
        if not name:
            raise SecretReferenceError("'env:' needs a variable name, as in env:OPENAI_API_KEY")
        found = env.get(name) if env is not None else None
        if found is None:
            found = os.environ.get(name)
        if found is None:
            raise SecretReferenceError(f"environment variable {name} is not set")
        return found
    if value.startswith("file:"):
        path = Path(value[5:]).expanduser()
        if not value[5:]:
            raise SecretReferenceError("'file:' needs a path, as in file:/run/secrets/key")
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretReferenceError(f"cannot read {path}: {exc.strerror or exc}") from None
    return value
