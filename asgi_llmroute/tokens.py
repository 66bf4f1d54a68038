"""Router tokens as the gateway keeps them: a name, a SHA-256 digest and a model allow-list."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["TokenEntry", "token_digest"]


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
