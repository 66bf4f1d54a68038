"""Compact JSON helpers shared by the translators (one encoder instance: ``json.dumps`` with
non-default arguments builds a new encoder on every call)."""

from __future__ import annotations

import json
from typing import Any

from .types import UpstreamProtocolError

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

dumps = _ENCODER.encode
"""Compact UTF-8-friendly JSON text (no spaces, non-ASCII kept)."""

loads = json.loads

loads_str = json.JSONDecoder().decode
"""``json.loads`` for text, minus the dispatch layers (hot path: one call per SSE event)."""


def dumps_bytes(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    return _ENCODER.encode(value).encode("utf-8", "backslashreplace")


def parse_json_object(body: bytes, what: str) -> dict[str, Any]:
    """Parse an upstream 2xx body that must be a JSON object, or raise UpstreamProtocolError."""
    try:
        parsed = loads(body)
    except (ValueError, RecursionError):
        raise UpstreamProtocolError(f"upstream returned an invalid JSON {what}") from None
    if not isinstance(parsed, dict):
        raise UpstreamProtocolError(f"upstream {what} is not a JSON object")
    if "error" in parsed and parsed.get("error"):
        raise UpstreamProtocolError(f"upstream returned an error object in a successful {what}")
    return parsed
