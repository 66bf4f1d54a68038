"""Tool-call ids and tool names for Gemini, which has neither ids the clients could rely on nor
the clients' function-name rules.

Gemini pairs function calls and responses by order and name, so it needs no ids; the clients do.
The gateway mints them on the way back, deterministically (from the response id and the call's
position), and carries the part's ``thoughtSignature`` inside the id the client sees:
``<base>__ts_<base64url(signature)>``, only ``[A-Za-z0-9_-]`` (valid for OpenAI and Anthropic
ids). On the next request the signature is split off the id and put back on the same
``functionCall`` part: the round trip needs no state in the gateway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid

from ..tools import ToolNames

_MARK = "__ts_"  # followed by the base64 signature in the URL-safe alphabet, unpadded
_MARK_RAW = "__tr_"  # followed by base64url of a signature that is not base64 itself
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_TO_URLSAFE = str.maketrans("+/", "-_")
_FROM_URLSAFE = str.maketrans("-_", "+/")
#: Gemini function names: a letter or ``_`` first, then ``[a-zA-Z0-9_.:-]``, at most 64 characters.
GEMINI_NAME_MAX = 64
_VALID_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}")
_INVALID = re.compile(r"[^a-zA-Z0-9_-]")


def response_seed(response_id: object) -> str:
    """Seed of the ids minted for one response: its ``responseId``, else a random value."""
    return response_id if isinstance(response_id, str) and response_id else uuid.uuid4().hex


def mint_call_id(prefix: str, seed: str, index: int, signature: object = None) -> str:
    """Id of the ``index``-th function call of the response ``seed``, with its signature if any."""
    digest = hashlib.sha256(f"{seed}\x00{index}".encode()).hexdigest()[:24]
    base = prefix + digest
    if not isinstance(signature, str) or not signature:
        return base
    if _BASE64.fullmatch(signature) and len(signature) % 4 == 0:  # the usual case: transcode, no growth
        return base + _MARK + signature.rstrip("=").translate(_TO_URLSAFE)
    return base + _MARK_RAW + base64.urlsafe_b64encode(signature.encode()).decode().rstrip("=")


def split_call_id(call_id: str) -> tuple[str, str | None]:
    """(base id, thought signature or None) of an id minted by :func:`mint_call_id`."""
    base, sep, encoded = call_id.partition(_MARK)
    if sep and encoded:
        if not _BASE64URL.fullmatch(encoded) or len(encoded) % 4 == 1:
            return call_id, None
        return base, encoded.translate(_FROM_URLSAFE) + "=" * (-len(encoded) % 4)
    base, sep, encoded = call_id.partition(_MARK_RAW)
    if not sep or not encoded:
        return call_id, None
    try:
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError):
        return call_id, None
    return base, signature or None


class GeminiToolNames(ToolNames):
    """:class:`ToolNames` with Gemini's rule that a name starts with a letter or an underscore."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(GEMINI_NAME_MAX)

    def _rewrite(self, name: str) -> str:
        out = _INVALID.sub("_", name)
        if not (out[:1].isalpha() or out[:1] == "_"):
            out = "_" + out
        return out[: self._max]

    def _is_valid(self, name: str) -> bool:
        return _VALID_NAME.fullmatch(name) is not None
