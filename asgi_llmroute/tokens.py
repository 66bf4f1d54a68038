"""Tokens: reading them from a request, router tokens as the gateway keeps them, admin tokens.

Every layer that authenticates (router-token auth, the admin API, ``/metrics``) reads the presented
tokens with :func:`presented_tokens` and compares digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from .secret import Secret

__all__ = ["AdminTokens", "TokenEntry", "presented_tokens", "token_digest"]


def presented_tokens(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The tokens a request presents, in header order: ``Authorization: Bearer <token>``, ``x-api-key``
    and ``x-goog-api-key`` (google-genai clients).

    Other ``Authorization`` schemes (Basic, ...) are not tokens of ours; empty values are left out.
    """
    found = []
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() != "bearer":
                continue
        elif name == b"x-api-key" or name == b"x-goog-api-key":  # the latter: google-genai clients
            token = value.decode("latin-1")
        else:
            continue
        token = token.strip()
        if token:
            found.append(token)
    return found


def token_digest(token: str) -> bytes:
    """The SHA-256 digest under which a router token is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """A router token as the gateway keeps it: a name, the token's digest and its model allow-list."""

    name: str
    digest: bytes
    models: tuple[str, ...] = ("*",)

    @classmethod
    def from_key(cls, name: str, key: str, models: Iterable[str] = ("*",)) -> TokenEntry:
        return cls(name=name, digest=token_digest(key), models=tuple(models))


class AdminTokens:
    """Admin tokens, kept as SHA-256 digests; empty tokens are never admitted."""

    __slots__ = ("_digests",)

    def __init__(self, tokens: Iterable[Secret]) -> None:
        self._digests = tuple(token_digest(t.reveal()) for t in tokens if t.reveal().strip())

    def __bool__(self) -> bool:
        return bool(self._digests)

    def admits(self, presented: Iterable[str]) -> bool:
        """Whether any presented token is an admin token.

        Every presented token is compared with every admin token, without an early exit, so the time
        taken tells nothing about which (if any) matched.
        """
        ok = False
        for token in presented:
            digest = token_digest(token)
            for admin in self._digests:
                ok |= hmac.compare_digest(digest, admin)
        return ok
