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


# -- what a store secret may be (issue 11, item 4) ------------------------------------------------

RANDOM_HEX = "3f" * 2 + "a1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddee"
RANDOM_B64 = "q8M0p0dY9g3cN0r3xP2bJkL5vQ7wT1uZsA6eHfIjKmo="
RANDOM_B64URL = "q8M0p0dY9g3cN0r3xP2bJkL5vQ7wT1uZsA6eHfIjKmo"


@pytest.mark.parametrize("secret", [RANDOM_HEX, RANDOM_B64, RANDOM_B64URL])
def test_random_keys_are_used_as_keys(secret: str) -> None:
    key = StoreKey(secret)
    assert key.kind == "key"
    assert key.decrypt(key.encrypt(KEY_A, AAD), AAD) == KEY_A


def test_a_passphrase_is_stretched_with_scrypt() -> None:
    key = StoreKey(SECRET)
    assert key.kind == "passphrase"
    assert StoreKey(SECRET).key_id == key.key_id


@pytest.mark.parametrize(
    "secret",
    [
        "a" * 32,  # long but no entropy
        "ab" * 40,
        "password",  # short
        "0" * 64,  # shaped like a hex key, but all zero bytes
        "A" * 43 + "=",  # shaped like a base64 key, but all zero bytes
    ],
)
def test_low_entropy_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="store secret"):
        StoreKey(secret)


def test_the_key_id_costs_a_kdf_run_per_guess(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whoever holds the store file has the key id: checking a guessed passphrase against it must
    # cost a full scrypt run, i.e. the key id is derived from the stretched key, not the passphrase.
    from asgi_llmroute.providers import crypto

    calls: list[bytes] = []
    real = crypto._stretch

    def counting(passphrase: bytes) -> bytes:
        calls.append(passphrase)
        return real.__wrapped__(passphrase)

    monkeypatch.setattr(crypto, "_stretch", counting)
    guess = "correct horse battery staple, guessed"
    StoreKey(guess)
    assert calls == [guess.encode()]
    fast = crypto._hkdf(guess.encode(), crypto._INFO_KEY_ID, 8).hex()
    assert StoreKey(guess).key_id != fast


def test_secret_equality_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from asgi_llmroute import secret as secrets

    compared: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert secrets.Secret("sk-a") == secrets.Secret("sk-a")
    assert secrets.Secret("sk-a") != secrets.Secret("sk-b")
    assert secrets.Secret("sk-a") != "sk-a"
    assert len(compared) == 2
