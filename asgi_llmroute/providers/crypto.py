"""Encryption of provider API keys at rest: AES-256-GCM under a key derived from the store secret.

Each encrypted value is ``version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)``,
with a fresh random nonce per write. The associated data binds the value to its record (the
provider's name and base URL), so a value copied onto another record, or a record pointed at another
host, fails to decrypt instead of sending the key somewhere else.

The data key and a short public key id both come from the secret through HKDF-SHA256 with fixed,
purpose-naming salt and info strings; the key id is stored with the data so that a wrong secret is
reported as such, and a rotation can be checked, without trying to decrypt anything.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from ..deferred import require

__all__ = ["MIN_SECRET_LENGTH", "DecryptionError", "StoreKey", "record_aad"]

#: The secret is meant to be random (``openssl rand -base64 32``), not a password: HKDF does not
#: slow down guessing, so a short secret is refused.
MIN_SECRET_LENGTH = 32

_VERSION = 1
_NONCE = 12
_TAG = 16
_SALT = b"asgi-llmroute provider store v1"
_INFO_DATA_KEY = b"provider api keys, aes-256-gcm"
_INFO_KEY_ID = b"key id"


class DecryptionError(ValueError):
    """A value could not be decrypted: truncated, tampered with, moved, or under another secret."""


def _cryptography(module: str) -> ModuleType:
    return require(f"cryptography.{module}", "store", what="The encrypted provider store")


def _hkdf(secret: bytes, info: bytes, length: int) -> bytes:
    hashes, hkdf = _cryptography("hazmat.primitives.hashes"), _cryptography("hazmat.primitives.kdf.hkdf")
    derived: bytes = hkdf.HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(secret)
    return derived


def record_aad(name: str, base_url: str) -> bytes:
    """The associated data of a provider record: its identity and where its key may be sent."""
    return b"llmroute-provider:v1\x00" + name.encode("utf-8") + b"\x00" + base_url.encode("utf-8")


class StoreKey:
    """The data key derived from a store secret; never shows the secret or the key."""

    __slots__ = ("_aead", "_invalid_tag", "key_id")

    def __init__(self, secret: str) -> None:
        raw = secret.strip().encode("utf-8")
        if len(raw) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"the store secret is too short ({len(raw)} bytes; at least {MIN_SECRET_LENGTH}, "
                "e.g. from 'openssl rand -base64 32')"
            )
        self._aead: Any = _cryptography("hazmat.primitives.ciphers.aead").AESGCM(_hkdf(raw, _INFO_DATA_KEY, 32))
        self._invalid_tag: type[Exception] = _cryptography("exceptions").InvalidTag
        #: Public: derived one-way, it identifies the secret without revealing it.
        self.key_id = _hkdf(raw, _INFO_KEY_ID, 8).hex()

    def __repr__(self) -> str:
        return f"StoreKey(key_id={self.key_id!r})"

    def encrypt(self, plaintext: str, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        sealed: bytes = self._aead.encrypt(nonce, plaintext.encode("utf-8"), aad)
        return bytes([_VERSION]) + nonce + sealed

    def decrypt(self, blob: bytes, aad: bytes) -> str:
        if len(blob) < 1 + _NONCE + _TAG:
            raise DecryptionError("the encrypted key is truncated")
        if blob[0] != _VERSION:
            raise DecryptionError(f"unknown encryption format version {blob[0]}")
        try:
            plaintext: bytes = self._aead.decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], aad)
        except self._invalid_tag:
            raise DecryptionError(
                "the encrypted key does not authenticate (tampered with, truncated, copied from another "
                "record, or written under another secret)"
            ) from None
        return plaintext.decode("utf-8")
