"""Encryption of provider API keys at rest: AES-256-GCM under a key derived from the store secret.

Each encrypted value is ``version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)``,
with a fresh random nonce per write. The associated data binds the value to its record (the
provider's name and base URL), so a value copied onto another record, or a record pointed at another
host, fails to decrypt instead of sending the key somewhere else.

The store secret is one of (docs/providers.md):

- a random key: 32 bytes written as 64 hex digits or in base64 / base64url (``openssl rand -base64 32``),
  used as key material as it is;
- a passphrase (anything else, at least 16 characters of some variety), stretched with scrypt
  (N=2**15, r=8, p=1: 32 MiB and a fraction of a second per derivation) into key material.

The data key and a short public key id both come from that key material through HKDF-SHA256 with
fixed, purpose-naming salt and info strings. The key id is stored with the data, so that a wrong
secret is reported as such; since it is derived from the *stretched* key, someone holding the store
file can test a guessed passphrase against it no faster than one scrypt run per guess.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import re
from types import ModuleType
from typing import Any

from ..deferred import require

__all__ = ["MIN_SECRET_LENGTH", "DecryptionError", "StoreKey", "key_material", "record_aad"]

#: A passphrase shorter than this is refused (a random key is always 32 bytes).
MIN_SECRET_LENGTH = 16
#: Fewest distinct characters in a passphrase (and distinct bytes in a random key): refuses "aaaa...".
_MIN_VARIETY = 8
_MIN_KEY_VARIETY = 16
_RANDOM_KEY_BYTES = 32

_VERSION = 1
_NONCE = 12
_TAG = 16
_SALT = b"asgi-llmroute provider store v1"
_SCRYPT_SALT = b"asgi-llmroute provider store passphrase v2"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_INFO_DATA_KEY = b"provider api keys, aes-256-gcm"
_INFO_KEY_ID = b"key id"
_HEX = re.compile(r"[0-9a-fA-F]{64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{43}=?")


class DecryptionError(ValueError):
    """A value could not be decrypted: truncated, tampered with, moved, or under another secret."""


def _cryptography(module: str) -> ModuleType:
    return require(f"cryptography.{module}", "store", what="The encrypted provider store")


def _hkdf(secret: bytes, info: bytes, length: int) -> bytes:
    hashes, hkdf = _cryptography("hazmat.primitives.hashes"), _cryptography("hazmat.primitives.kdf.hkdf")
    derived: bytes = hkdf.HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(secret)
    return derived


@functools.lru_cache(maxsize=8)
def _stretch(passphrase: bytes) -> bytes:
    """scrypt: what a guess at the passphrase costs (memoised: workers re-derive on every store check)."""
    scrypt = _cryptography("hazmat.primitives.kdf.scrypt")
    derived: bytes = scrypt.Scrypt(salt=_SCRYPT_SALT, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P).derive(
        passphrase
    )
    return derived


def _random_key(secret: str) -> bytes | None:
    """The 32 bytes a hex or base64 random key stands for, or None if ``secret`` is not shaped like one."""
    if _HEX.fullmatch(secret):
        return bytes.fromhex(secret)
    if _BASE64.fullmatch(secret):
        padded = secret.replace("-", "+").replace("_", "/").rstrip("=") + "="
        try:
            raw = base64.b64decode(padded, validate=True)
        except binascii.Error:
            return None
        return raw if len(raw) == _RANDOM_KEY_BYTES else None
    return None


def key_material(secret: str) -> tuple[str, bytes]:
    """``("key", bytes)`` for a random key, ``("passphrase", stretched bytes)`` for a passphrase.

    A ``ValueError`` (naming no part of the secret) for a secret too weak to protect the store.
    """
    secret = secret.strip()
    raw = _random_key(secret)
    if raw is not None:
        if len(set(raw)) < _MIN_KEY_VARIETY:
            raise ValueError("the store secret is shaped like a random key but is not random; generate one")
        return "key", raw
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"the store secret is too short ({len(secret)} characters): give a random key "
            f"('openssl rand -base64 32') or a passphrase of at least {MIN_SECRET_LENGTH} characters"
        )
    if len(set(secret)) < _MIN_VARIETY:
        raise ValueError(
            "the store secret has too little variety to be a passphrase; give a random key ('openssl rand -base64 32')"
        )
    return "passphrase", _stretch(secret.encode("utf-8"))


def record_aad(name: str, base_url: str) -> bytes:
    """The associated data of a provider record: its identity and where its key may be sent."""
    return b"llmroute-provider:v1\x00" + name.encode("utf-8") + b"\x00" + base_url.encode("utf-8")


class StoreKey:
    """The data key derived from a store secret; never shows the secret or the key."""

    __slots__ = ("_aead", "_invalid_tag", "key_id", "kind")

    def __init__(self, secret: str) -> None:
        kind, material = key_material(secret)
        #: ``"key"`` (a random key) or ``"passphrase"`` (stretched with scrypt).
        self.kind = kind
        self._aead: Any = _cryptography("hazmat.primitives.ciphers.aead").AESGCM(_hkdf(material, _INFO_DATA_KEY, 32))
        self._invalid_tag: type[Exception] = _cryptography("exceptions").InvalidTag
        #: Public: derived one-way from the (stretched) key material, it identifies the secret without revealing it.
        self.key_id = _hkdf(material, _INFO_KEY_ID, 8).hex()

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
