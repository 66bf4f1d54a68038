"""Compact JSON helpers shared by the translators (one encoder instance: ``json.dumps`` with
non-default arguments builds a new encoder on every call)."""

from __future__ import annotations

import json
from typing import Any

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

dumps = _ENCODER.encode
"""Compact UTF-8-friendly JSON text (no spaces, non-ASCII kept)."""

loads = json.loads


def dumps_bytes(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes."""
    return _ENCODER.encode(value).encode()
