"""TOML import: our own schema (see :mod:`.native`), including a whole ``llmroute.toml``."""

from __future__ import annotations

import re
import sys

from .plan import ImportFileError, ParsedFile
from .schema import from_data

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["parse_toml"]

_PROVIDER_TABLE = re.compile(r"^[ \t]*\[\[[ \t]*providers[ \t]*\]\]", re.MULTILINE)


def parse_toml(text: str) -> ParsedFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ImportFileError(f"invalid TOML: {exc}") from None
    # tomllib keeps no positions; ``[[providers]]`` headers give each entry's line.
    lines = [text.count("\n", 0, m.start()) + 1 for m in _PROVIDER_TABLE.finditer(text)]
    return from_data(data, lines=lines if len(lines) == len(data.get("providers", [])) else ())
