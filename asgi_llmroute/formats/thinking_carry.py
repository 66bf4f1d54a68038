"""Signed thinking carried in a Responses ``reasoning`` item's ``encrypted_content``.

The gateway stores nothing, so when it mints a ``reasoning`` item from Anthropic thinking (reached
through the chat ``thinking_blocks`` convention) the item itself has to carry what the next request
needs: each ``thinking`` block's text and ``signature`` and each ``redacted_thinking`` block's
``data``, in order. The value is ``llmr1:`` + unpadded base64url of the raw-deflated compact JSON
array ``[["t", thinking, signature] | ["r", data], ...]``: versioned (a later encoding gets another
prefix), opaque to clients, and ASCII only.

It is not authenticated: everything in it is the client's own conversation (the thinking text is in
the same item in the clear), the upstream verifies the signatures itself and refuses a forged or
altered block, and a key would make it depend on which gateway instance minted it. A client can
send the very same blocks as chat ``thinking_blocks`` anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

from ._json import dumps
from .types import TranslationError

__all__ = ["PREFIX", "decode_thinking", "encode_thinking", "is_gateway_content"]

#: Prefix of the current encoding; ``llmr`` + a version number + ``:`` marks every gateway encoding.
PREFIX = "llmr1:"
_FAMILY = "llmr"
#: Largest decoded value accepted (bytes of JSON): a bound on what a small input can inflate to.
MAX_DECODED = 16 * 1024 * 1024


def encode_thinking(blocks: list[dict[str, Any]]) -> str | None:
    """``encrypted_content`` for chat ``thinking_blocks`` (None when none can be sent back)."""
    compact: list[list[str]] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "thinking":
            thinking, signature = block.get("thinking"), block.get("signature")
            if isinstance(signature, str) and signature:  # unsigned thinking cannot be sent back
                compact.append(["t", thinking if isinstance(thinking, str) else "", signature])
        elif kind == "redacted_thinking":
            data = block.get("data")
            if isinstance(data, str) and data:
                compact.append(["r", data])
    if not compact:
        return None
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = deflate.compress(dumps(compact).encode()) + deflate.flush()
    return PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def is_gateway_content(value: str) -> bool:
    """Whether ``value`` is in one of the gateway's encodings (``llmr<version>:``), known or not."""
    head, sep, _ = value.partition(":")
    return bool(sep) and head.startswith(_FAMILY) and head[len(_FAMILY) :].isdigit()


def decode_thinking(value: str, param: str) -> list[dict[str, Any]] | None:
    """Chat ``thinking_blocks`` of an ``encrypted_content`` in the current encoding; None for any other.

    A value that has the current prefix but is damaged is the client's error (400, naming ``param``).
    """
    if not value.startswith(PREFIX):
        return None
    encoded = value[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        inflate = zlib.decompressobj(-15)
        data = inflate.decompress(raw, MAX_DECODED)
        if inflate.unconsumed_tail or not inflate.eof:
            raise ValueError("truncated or too large")
        compact = json.loads(data)
    except (ValueError, binascii.Error, zlib.error, RecursionError):
        raise TranslationError("encrypted_content was minted by this gateway but is damaged", param) from None
    blocks: list[dict[str, Any]] = []
    if not isinstance(compact, list):
        raise TranslationError("encrypted_content was minted by this gateway but is damaged", param)
    for entry in compact:
        if isinstance(entry, list) and len(entry) == 3 and entry[0] == "t" and all(isinstance(x, str) for x in entry):
            blocks.append({"type": "thinking", "thinking": entry[1], "signature": entry[2]})
        elif isinstance(entry, list) and len(entry) == 2 and entry[0] == "r" and isinstance(entry[1], str):
            blocks.append({"type": "redacted_thinking", "data": entry[1]})
        else:
            raise TranslationError("encrypted_content was minted by this gateway but is damaged", param)
    return blocks
