"""Virtual keys and their spend, in tables of the provider store's SQLite file.

The store never holds a key's secret: a key is found by its keyed BLAKE2b digest (a MAC), where
the digest key is 32 random bytes kept encrypted under the store secret (so a copy of the file alone
does not even let someone test guesses, and rotating the store secret keeps every key valid). A key
is written whole in one transaction or not at all. Spend is kept per key, model and UTC day.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any

from ..providers.store import ProviderStore, StoreError
from .model import KeyInvalid, VirtualKey, display_prefix, new_key_id, new_secret, validate_fields

__all__ = ["KEY_TABLES", "KeyConflict", "KeyNotFound", "KeyStore", "KeyTable", "SpendRow"]

#: The key tables as first released, in SQLite's types: the one definition, which the PostgreSQL store runs as
#: its migration 2 (``pgstore.postgres_ddl`` turns BLOB and REAL into its types). A later change is a new step
#: in both stores (ALTER TABLE), never an edit here: databases created from this text exist.
KEY_TABLES = (
    """CREATE TABLE IF NOT EXISTS virtual_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        digest BLOB NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        team TEXT,
        fields TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        revoked_at TEXT
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS virtual_keys_active_name ON virtual_keys (name) WHERE revoked_at IS NULL",
    """CREATE TABLE IF NOT EXISTS key_spend (
        key_id TEXT NOT NULL,
        team TEXT,
        model TEXT NOT NULL,
        day TEXT NOT NULL,
        cost REAL NOT NULL,
        requests INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        PRIMARY KEY (key_id, model, day)
    )""",
)
_SELECT = "SELECT id, name, digest, prefix, team, fields, created_at, updated_at, revoked_at FROM virtual_keys"
_INSERT = (
    "INSERT INTO virtual_keys (id, name, digest, prefix, team, fields, created_at, updated_at, revoked_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_REPORT = (
    "SELECT key_spend.key_id, virtual_keys.name, key_spend.team, model, day, cost, requests, input_tokens,"
    " output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens"
    " FROM key_spend LEFT JOIN virtual_keys ON virtual_keys.id = key_spend.key_id"
    " WHERE key_spend.day >= ? AND key_spend.day <= ?"
    " AND (? IS NULL OR key_spend.key_id = ?) AND (? IS NULL OR key_spend.team = ?) AND (? IS NULL OR model = ?)"
    " ORDER BY day, key_spend.key_id, model"
)
_FIELDS = ("models", "rpm", "tpm", "max_in_flight", "budget", "budget_period", "expires_at", "metadata")
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


class KeyNotFound(StoreError):
    def __init__(self, ref: str) -> None:
        super().__init__(f"no virtual key {ref!r}")


class KeyConflict(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a virtual key named {name!r} exists already")


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One batch of spend for a key, model and day."""

    key_id: str
    team: str | None
    model: str
    day: date
    cost: float
    requests: int = 1
    tokens: Mapping[str, int] | None = None


class KeyTable:
    """Every active key, by digest, and the digest key: what authentication needs."""

    __slots__ = ("_base", "digest_key", "keys")

    def __init__(self, digest_key: bytes, keys: dict[bytes, VirtualKey]) -> None:
        self.digest_key = digest_key
        self.keys = keys
        self._base = _hasher(digest_key)  # keyed once; each digest copies it

    def digest(self, secret: str) -> bytes:
        h = self._base.copy()
        h.update(secret.encode("utf-8"))
        return h.digest()


def _hasher(key: bytes) -> hashlib.blake2b:
    return hashlib.blake2b(key=key, digest_size=32, person=b"llmroute-vkey")


def keyed_digest(key: bytes, secret: str) -> bytes:
    """The digest a key is stored and found under: keyed BLAKE2b (a MAC, like HMAC, and a few times
    faster than OpenSSL's HMAC for one short message)."""
    h = _hasher(key)
    h.update(secret.encode("utf-8"))
    return h.digest()


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(timezone.utc).isoformat(timespec="seconds")


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class KeyStore:
    """Virtual keys in the provider store's file (``ProviderStore`` owns the file and its secret)."""

    def __init__(self, store: ProviderStore) -> None:
        self.store = store
        self._schema_ready = False

    def __repr__(self) -> str:
        return f"KeyStore({str(self.store.path)!r})"

    # -- transactions ------------------------------------------------------------------------------

    def _write(self) -> Any:
        return self.store.writing()

    def _prepare(self, conn: sqlite3.Connection) -> bytes:
        for statement in KEY_TABLES:
            conn.execute(statement)
        return bytes.fromhex(self.store.sealed(conn, "virtual-key-digest", lambda: secrets.token_hex(32)))

    def _has_tables(self, conn: sqlite3.Connection) -> bool:
        row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'virtual_keys'").fetchone()
        return row is not None

    # -- keys ------------------------------------------------------------------------------------

    def create(self, fields: Mapping[str, Any], now: datetime, *, secret: str | None = None) -> tuple[VirtualKey, str]:
        """Create a key from ``fields`` (validated); returns it and its secret, shown this once."""
        values = validate_fields(dict(fields))
        if values["expires_at"] is not None and values["expires_at"] <= now:
            raise KeyInvalid(["expires_at: the expiry is in the past"])
        secret = secret or new_secret()
        if len(secret) < 24:
            raise KeyInvalid(["key: a key chosen by the caller must be at least 24 characters"])
        settings: dict[str, Any] = {k: values[k] for k in _FIELDS}
        settings["models"] = tuple(values["models"])
        key = VirtualKey(
            id=new_key_id(),
            name=values["name"],
            prefix=display_prefix(secret),
            created_at=now,
            updated_at=now,
            team=values["team"],
            **settings,
        )
        with self._write() as conn:
            digest_key = self._prepare(conn)
            digest = keyed_digest(digest_key, secret)
            self._check_name(conn, key.name)
            if conn.execute("SELECT 1 FROM virtual_keys WHERE digest = ?", (digest,)).fetchone():
                raise KeyInvalid(["key: this secret is in use by another key"])
            conn.execute(_INSERT, self._row(key, digest))
        return key, secret

    def get(self, ref: str) -> VirtualKey:
        """A key by id or (active) name; revoked keys are found by id."""
        with self.store.reading() as conn:
            if conn is None or not self._has_tables(conn):
                raise KeyNotFound(ref)
            return self._find(conn, ref)

    def list_keys(self, *, include_revoked: bool = False, team: str | None = None) -> list[VirtualKey]:
        with self.store.reading() as conn:
            if conn is None or not self._has_tables(conn):
                return []
            rows = conn.execute(_SELECT + " ORDER BY created_at, name").fetchall()
        keys = [self._decode(row) for row in rows]
        return [k for k in keys if (include_revoked or k.revoked_at is None) and (team is None or k.team == team)]

    def update(self, ref: str, changes: Mapping[str, Any], now: datetime) -> VirtualKey:
        values = validate_fields(dict(changes), partial=True)
        if values.get("expires_at") is not None and values["expires_at"] <= now:
            raise KeyInvalid(["expires_at: the expiry is in the past"])
        with self._write() as conn:
            self._prepare(conn)
            key = self._find(conn, ref, active=True)
            if "name" in values and values["name"] != key.name:
                self._check_name(conn, values["name"])
            if "models" in values:
                values["models"] = tuple(values["models"])
            updated = replace(key, **values, updated_at=now)
            conn.execute(
                "UPDATE virtual_keys SET name = ?, team = ?, fields = ?, updated_at = ? WHERE id = ?",
                (updated.name, updated.team, self._fields(updated), _iso(now), key.id),
            )
        return updated

    def rotate(self, ref: str, now: datetime) -> tuple[VirtualKey, str]:
        """A new secret for the key (the old one stops working); returns the key and the new secret."""
        secret = new_secret()
        with self._write() as conn:
            digest_key = self._prepare(conn)
            key = self._find(conn, ref, active=True)
            digest = keyed_digest(digest_key, secret)
            rotated = replace(key, prefix=display_prefix(secret), updated_at=now)
            conn.execute(
                "UPDATE virtual_keys SET digest = ?, prefix = ?, updated_at = ? WHERE id = ?",
                (digest, rotated.prefix, _iso(now), key.id),
            )
        return rotated, secret

    def revoke(self, ref: str, now: datetime) -> VirtualKey:
        with self._write() as conn:
            self._prepare(conn)
            key = self._find(conn, ref, active=True)
            conn.execute(
                "UPDATE virtual_keys SET revoked_at = ?, updated_at = ? WHERE id = ?", (_iso(now), _iso(now), key.id)
            )
        return replace(key, revoked_at=now, updated_at=now)

    def table(self) -> KeyTable:
        """Every active key by digest (creating the tables and the digest key on first use)."""
        with self._write() as conn:
            digest_key = self._prepare(conn)
            rows = conn.execute(_SELECT + " WHERE revoked_at IS NULL").fetchall()
        return KeyTable(digest_key, {row[2]: self._decode(row) for row in rows})

    # -- spend -----------------------------------------------------------------------------------

    def add_spend(self, rows: Iterable[SpendRow]) -> None:
        """Add batched spend, all rows in one transaction."""
        params = []
        for row in rows:
            tokens = row.tokens or {}
            counts = [int(tokens.get(name, 0) or 0) for name in _TOKENS]
            params.append((row.key_id, row.team, row.model, row.day.isoformat(), row.cost, row.requests, *counts))
        if not params:
            return
        with self._write() as conn:
            self._prepare(conn)
            conn.executemany(
                "INSERT INTO key_spend VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (key_id, model, day) DO UPDATE SET cost = cost + excluded.cost,"
                " requests = requests + excluded.requests, input_tokens = input_tokens + excluded.input_tokens,"
                " output_tokens = output_tokens + excluded.output_tokens,"
                " cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,"
                " cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,"
                " reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, team = excluded.team",
                params,
            )

    def daily_spend(self, since: date | None = None) -> list[tuple[str, str | None, str, date, float]]:
        """``(key_id, team, model, day, cost)`` for every day from ``since`` on."""
        with self.store.reading() as conn:
            if conn is None or not self._has_tables(conn):
                return []
            rows = conn.execute(
                "SELECT key_id, team, model, day, cost FROM key_spend WHERE day >= ?",
                ((since or date.min).isoformat(),),
            ).fetchall()
        return [(k, t, m, date.fromisoformat(d), c) for k, t, m, d, c in rows]

    def spend_report(
        self,
        *,
        key_id: str | None = None,
        team: str | None = None,
        model: str | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> list[dict[str, Any]]:
        """Spend rows (one per key, model and day) matching every filter given."""
        args = (
            (start or date.min).isoformat(),
            (end or date.max).isoformat(),
            *(key_id, key_id, team, team, model, model),
        )
        with self.store.reading() as conn:
            if conn is None or not self._has_tables(conn):
                return []
            rows = conn.execute(_REPORT, args).fetchall()
        names = ("key_id", "key_name", "team", "model", "day", "cost_usd", "requests", *_TOKENS)
        return [dict(zip(names, row, strict=True)) for row in rows]

    # -- rows ------------------------------------------------------------------------------------

    def _check_name(self, conn: sqlite3.Connection, name: str) -> None:
        if conn.execute("SELECT 1 FROM virtual_keys WHERE name = ? AND revoked_at IS NULL", (name,)).fetchone():
            raise KeyConflict(name)

    def _find(self, conn: sqlite3.Connection, ref: str, *, active: bool = False) -> VirtualKey:
        row = conn.execute(_SELECT + " WHERE id = ?", (ref,)).fetchone()
        if row is None:
            row = conn.execute(_SELECT + " WHERE name = ? AND revoked_at IS NULL", (ref,)).fetchone()
        if row is None:
            raise KeyNotFound(ref)
        key = self._decode(row)
        if active and key.revoked_at is not None:
            raise KeyNotFound(ref)
        return key

    @staticmethod
    def _fields(key: VirtualKey) -> str:
        data = {name: getattr(key, name) for name in _FIELDS}
        data["models"] = list(key.models)
        data["expires_at"] = _iso(key.expires_at)
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    def _row(self, key: VirtualKey, digest: bytes) -> tuple[Any, ...]:
        return (
            key.id,
            key.name,
            digest,
            key.prefix,
            key.team,
            self._fields(key),
            _iso(key.created_at),
            _iso(key.updated_at),
            _iso(key.revoked_at),
        )

    @staticmethod
    def _decode(row: tuple[Any, ...]) -> VirtualKey:
        key_id, name, _digest, prefix, team, fields, created, updated, revoked = row
        data = json.loads(fields)
        data["models"] = tuple(data.get("models") or ("*",))
        data["expires_at"] = _when(data.get("expires_at"))
        return VirtualKey(
            id=key_id,
            name=name,
            prefix=prefix,
            team=team,
            created_at=_when(created) or datetime.now(timezone.utc),
            updated_at=_when(updated),
            revoked_at=_when(revoked),
            **{k: data.get(k) for k in _FIELDS if k in data},
        )
