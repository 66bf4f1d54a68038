"""Checks for values that end up in an upstream request line or header, applied when they are written.

A provider's ``base_url``, its ``headers``, its key and its model names come from config files, the
provider store, the admin API and imports; each reaches the wire on every request through it. They are
checked here, once, with the same rules on every write path, so that a bad value is refused where it
comes in (with the field named) instead of failing every later request.

One rule for references, too: a string starting with ``env:``, ``file:`` or ``os.environ/`` is a
reference, never a literal key (:func:`is_reference`, defined with the forms in ``secret.py``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .secret import REFERENCE_PREFIXES, is_reference  # the one definition of the reference forms

__all__ = [
    "REFERENCE_PREFIXES",
    "check_base_url",
    "check_header_name",
    "check_header_value",
    "check_model_id",
    "is_reference",
]


# RFC 9110 token characters.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Printable Latin-1 on one line: no C0 controls, DEL or C1 controls.
_UNSAFE_VALUE = re.compile("[\\x00-\\x1f\\x7f-\\x9f]|[^\\x00-\\xff]")
_CONTROL = re.compile("[\\x00-\\x1f\\x7f-\\x9f]")


def check_base_url(value: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """``value`` without trailing slashes, or a ``ValueError`` saying what is wrong with it.

    An absolute ``http(s)://host[:port][/path]`` URL in printable ASCII: no spaces or control
    characters, no credentials (``user:password@``: a key belongs in ``api_key``, which is encrypted),
    no query string or fragment (request paths are appended to it).
    """
    wanted = " or ".join(f"{s}://" for s in schemes if s != "builtin")  # builtin:// is internal
    if not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError(f"must be an {wanted} URL without spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme not in schemes or not value.startswith(f"{parts.scheme}://"):
        raise ValueError(f"must start with {wanted}")
    if "@" in parts.netloc:
        raise ValueError("must not hold credentials (user:password@); put the key in api_key")
    if not parts.hostname:
        raise ValueError("has no host")
    try:
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError:
        raise ValueError("has an invalid port") from None
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise ValueError("must not have a query string or fragment")
    return value.rstrip("/")


def check_header_name(name: str) -> str:
    """``name`` lower-cased, or a ``ValueError`` if it is not an HTTP header name (an RFC 9110 token)."""
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid header name")
    return name.lower()


def check_header_value(value: str, what: str = "the value") -> None:
    """A ``ValueError`` unless ``value`` is printable Latin-1 on one line (no CR, LF, NUL or other controls)."""
    if _UNSAFE_VALUE.search(value) is not None:
        raise ValueError(f"{what} must be printable Latin-1 on one line (no control characters)")


def check_model_id(value: str, what: str = "model names") -> None:
    """A ``ValueError`` for an empty model name or one with control characters (it reaches URLs and headers)."""
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    if _CONTROL.search(value) is not None:
        raise ValueError(f"{what} must not contain control characters")
