from __future__ import annotations

import pytest

from asgi_llmroute.providers.crypto import DecryptionError, StoreKey, record_aad
from tests.providers.support import KEY_A, OTHER_SECRET, SECRET

AAD = record_aad("openai", "https://api.openai.com/v1")


def test_round_trip() -> None:
    key = StoreKey(SECRET)
    blob = key.encrypt(KEY_A, AAD)
    assert KEY_A.encode() not in blob
    assert key.decrypt(blob, AAD) == KEY_A
    assert StoreKey(SECRET).decrypt(blob, AAD) == KEY_A  # derivation is deterministic


def test_fresh_nonce_per_write() -> None:
    key = StoreKey(SECRET)
    first, second = key.encrypt(KEY_A, AAD), key.encrypt(KEY_A, AAD)
    assert first[1:13] != second[1:13]
    assert first != second


@pytest.mark.parametrize("index", [0, 1, 12, 13, -1])
def test_tampered_byte_fails(index: int) -> None:
    key = StoreKey(SECRET)
    blob = bytearray(key.encrypt(KEY_A, AAD))
    blob[index] ^= 0x01
    with pytest.raises(DecryptionError):
        key.decrypt(bytes(blob), AAD)


@pytest.mark.parametrize("length", [0, 1, 12, 28])
def test_truncated_fails(length: int) -> None:
    key = StoreKey(SECRET)
    blob = key.encrypt(KEY_A, AAD)
    with pytest.raises(DecryptionError, match="truncated"):
        key.decrypt(blob[:length], AAD)
    with pytest.raises(DecryptionError):
        key.decrypt(blob[:-1], AAD)


def test_wrong_key_fails() -> None:
    blob = StoreKey(SECRET).encrypt(KEY_A, AAD)
    with pytest.raises(DecryptionError) as info:
        StoreKey(OTHER_SECRET).decrypt(blob, AAD)
    assert SECRET not in str(info.value) and KEY_A not in str(info.value)


def test_aad_swap_fails() -> None:
    key = StoreKey(SECRET)
    blob = key.encrypt(KEY_A, record_aad("openai", "https://api.openai.com/v1"))
    with pytest.raises(DecryptionError):
        key.decrypt(blob, record_aad("other", "https://api.openai.com/v1"))  # copied onto another record
    with pytest.raises(DecryptionError):
        key.decrypt(blob, record_aad("openai", "https://evil.example.com/v1"))  # record pointed elsewhere


def test_key_id_identifies_the_secret_without_revealing_it() -> None:
    assert StoreKey(SECRET).key_id == StoreKey(SECRET).key_id
    assert StoreKey(SECRET).key_id != StoreKey(OTHER_SECRET).key_id
    assert SECRET not in repr(StoreKey(SECRET))
    assert len(StoreKey(SECRET).key_id) == 16


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        StoreKey("password")


def test_unknown_version_fails() -> None:
    key = StoreKey(SECRET)
    blob = b"\x02" + key.encrypt(KEY_A, AAD)[1:]
    with pytest.raises(DecryptionError, match="version"):
        key.decrypt(blob, AAD)
