"""Compact JSON helpers shared by the translators (one encoder instance: ``json.dumps`` with
non-default arguments builds a new encoder on every call)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .types import UpstreamProtocolError

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

dumps = _ENCODER.encode
"""Compact UTF-8-friendly JSON text (no spaces, non-ASCII kept)."""

loads = json.loads

_DECODER = json.JSONDecoder()
loads_str = _DECODER.decode
"""``json.loads`` for text, minus the dispatch layers (hot path: one call per SSE event)."""

scan_once: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
"""The C scanner: ``scan_once(text, index)`` -> (the JSON value that starts at ``index``, the index after it);
StopIteration when no value starts there."""

scan_string: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
"""``scan_string(text, index, True)`` -> (the JSON string whose opening quote ends before ``index``, the index
after its closing quote); ValueError when it is not a valid (strict) JSON string."""

dumps_str = json.encoder.encode_basestring
""":data:`dumps` of a ``str``, without the encoder's dispatch (same text: non-ASCII kept)."""


def loads_object_str(text: str) -> Any:
    """:data:`loads_str`, straight to the C scanner for the usual case, a text that is one JSON object
    with no white space around it (no regular expressions for the white space, no wrapper calls). Same
    value and same errors as :data:`loads_str` for any text."""
    if text[:1] == "{" and text[-1:] == "}":
        try:
            value, end = scan_once(text, 0)
        except StopIteration:  # pragma: no cover - a text starting with "{" always scans as an object or fails
            return loads_str(text)
        if end == len(text):
            return value
    return loads_str(text)


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
