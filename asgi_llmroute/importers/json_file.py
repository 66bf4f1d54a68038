"""JSON import: our own schema (see :mod:`.native`), ``{"providers": [...]}`` or a bare list."""

from __future__ import annotations

import json

from .plan import ImportFileError, ParsedFile
from .schema import from_data

__all__ = ["parse_json"]


def parse_json(text: str) -> ParsedFile:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    return from_data(data)
