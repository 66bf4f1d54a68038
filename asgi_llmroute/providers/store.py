"""The embedded provider store: one SQLite file, API keys encrypted with AES-256-GCM.

One cohesive thing over 400 lines: the store's transactions, reads, writes and key rotation share one
connection discipline and one error mapping, so they are read together.

SQLite (standard library) because the store is small, must be transactional, and is read and
written by several gateway worker processes and CLI invocations at once: WAL mode lets readers run
while one writer commits; every write is one ``BEGIN IMMEDIATE`` transaction (so a multi-record
import is all or nothing, and a process killed mid-write leaves the previous state), and
``busy_timeout`` queues writers instead of failing them.

Every error is a :class:`StoreError` whose message names the store file or the record, never a key
or the secret.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..secret import Secret
from .crypto import DecryptionError, StoreKey, record_aad
from .records import ProviderRecord, ProviderSpec, describe_validation

__all__ = [
    "RecordConflict",
    "RecordError",
    "RecordInvalid",
    "RecordNotFound",
    "SecretSource",
    "Snapshot",
    "ProviderStore",
    "StoreError",
    "StoreSecretError",
]

SCHEMA_VERSION = "1"
_SEALED = "sealed:"  # meta rows holding values encrypted under the store key

#: Returns the candidate secrets, preferred first (a rotation in progress offers two).
SecretSource = Callable[[], Sequence[str]]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS providers (
        name TEXT PRIMARY KEY,
        api TEXT NOT NULL,
        base_url TEXT NOT NULL,
        key_id TEXT,
        api_key BLOB,
        headers TEXT NOT NULL,
        timeout REAL NOT NULL,
        models TEXT NOT NULL,
        options TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
)
_SELECT_ALL = (
    "SELECT name, api, base_url, key_id, api_key, headers, timeout, models, options, updated_at FROM providers"
)
_SELECT_ONE = (
    "SELECT name, api, base_url, key_id, api_key, headers, timeout, models, options, updated_at"
    " FROM providers WHERE name = ?"
)
_INSERT = (
    "INSERT INTO providers (name, api, base_url, key_id, api_key, headers, timeout, models, options, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT = (
    "INSERT OR REPLACE INTO providers"
    " (name, api, base_url, key_id, api_key, headers, timeout, models, options, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class StoreError(Exception):
    """The store cannot do what was asked. ``str(error)`` is fit for an operator."""


class StoreSecretError(StoreError):
    """The configured secret is not the one the store was written with."""


class RecordNotFound(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no provider named {name!r} in the store")
        self.name = name


class RecordConflict(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a provider named {name!r} is already in the store")
        self.name = name


class RecordInvalid(StoreError):
    """A change would make a record invalid; ``str(error)`` names the record and the fields, ``param`` the first."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class RecordError(StoreError):
    """One record cannot be read (tampered with, truncated, written under another secret, ...)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"provider {name!r}: {problem}")
        self.name = name
        self.problem = problem


@dataclass(frozen=True)
class Snapshot:
    """Every record readable at one moment, and an error for each one that is not."""

    records: list[ProviderRecord] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _create_private(path: Path) -> None:
    """Create an empty store file readable by its owner only (SQLite's -wal/-shm files follow it)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


class ProviderStore:
    """Provider records in one SQLite file; safe to share between threads and processes.

    ``secret`` is the store secret, or a callable returning the candidate secrets (it is called
    again when another process rotated the secret). With ``create=False`` a missing file reads as
    an empty store and nothing is created until the first write.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        secret: str | SecretSource,
        *,
        create: bool = True,
        busy_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self._source: SecretSource = (lambda: (secret,)) if isinstance(secret, str) else secret
        self._create = create
        self._busy_ms = int(busy_timeout * 1000)
        self._key: StoreKey | None = None
        # One connection for reads (and change polling), one for writes: SQLite's data_version only
        # moves for commits made by *other* connections, so our own writes are seen too.
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._readers_opened = 0  # data_version is per connection: a new reader starts a new series
        self._write_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ProviderStore({str(self.path)!r})"

    # -- connections -----------------------------------------------------------------------------

    def _connect(self, *, for_write: bool) -> sqlite3.Connection | None:
        if not self.path.exists():
            if not (for_write or self._create):
                return None
            _create_private(self.path)
        uri = self.path.resolve().as_uri() + "?mode=rw"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the provider store: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            if for_write or self._create:
                with self._mapped():
                    self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """WAL mode and the schema, for a connection that may write. SQLite can answer "busy" here without
        waiting on its busy handler (another process's connection opening or closing the WAL file at that
        moment): retried until ``busy_timeout`` has passed, like any other wait for the lock."""
        deadline = time.monotonic() + self._busy_ms / 1000
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                self._ensure_schema(conn)
                return
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if has_meta:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._ensure_schema_in_transaction(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _ensure_schema_in_transaction(conn: sqlite3.Connection) -> None:
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """Turn SQLite's exceptions into :class:`StoreError` messages naming the file."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise StoreError(f"{self.path}: the store is busy (another process holds it); try again") from None
            raise StoreError(f"{self.path}: the store file is unreadable or corrupt: {text}") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: the store file is corrupt or not a provider store: {exc}") from None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """A consistent read transaction (None: there is no store file yet)."""
        with self._read_lock, self._mapped():
            if self._reader is None:
                self._reader = self._connect(for_write=False)
                if self._reader is None:
                    yield None
                    return
                self._readers_opened += 1
            conn = self._reader
            conn.execute("BEGIN")
            try:
                yield conn if self._check_schema(conn) else None
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed whole, or rolled back whole on any exception."""
        with self._write_lock, self._mapped():
            if self._writer is None:
                self._writer = self._connect(for_write=True)
                assert self._writer is not None
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not self._check_schema(conn):
                    self._ensure_schema_in_transaction(conn)
                self._key_for(conn, write=True)
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _check_schema(self, conn: sqlite3.Connection) -> bool:
        """True for a provider store, False for a file another process has only just created."""
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is None:
            if self.path.stat().st_size == 0:
                return False
            raise StoreError(f"{self.path}: not a provider store (no schema record)")
        if row[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: store schema {row[0]} is not supported (this version: {SCHEMA_VERSION})")
        return True

    def _key_for(self, conn: sqlite3.Connection, *, write: bool = False) -> StoreKey:
        """The key matching the store's key id (claiming an empty store for our secret on write)."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'key_id'").fetchone()
        stored = row[0] if row else None
        if self._key is not None and (stored is None or stored == self._key.key_id):
            key = self._key
        else:
            key = self._match_secret(stored)
        if stored is None and write:
            conn.execute("INSERT INTO meta VALUES ('key_id', ?)", (key.key_id,))
        return key

    def _match_secret(self, stored: str | None) -> StoreKey:
        keys = []
        for candidate in self._source():
            try:
                keys.append(StoreKey(candidate))
            except ValueError as exc:
                raise StoreSecretError(f"{self.path}: {exc}") from None
        if not keys:
            raise StoreSecretError(f"{self.path}: no store secret")
        match = next((k for k in keys if stored is None or k.key_id == stored), None)
        if match is None:
            raise StoreSecretError(
                f"{self.path}: the store secret does not match this store (the store was written under "
                f"key id {stored}, the configured secret has key id {keys[0].key_id}); check [store] secret"
            )
        self._key = match
        return match

    def check_secret(self) -> str:
        """Check the secret against the store; return the key id in use (public, reveals nothing)."""
        with self._read() as conn:
            return (self._key_for(conn) if conn is not None else self._match_secret(None)).key_id

    def close(self) -> None:
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    # -- for other tables in the same file (virtual keys) ---------------------------------------

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection | None]:
        """A read transaction on the store file, for tables of other components (None: no file yet)."""
        with self._read() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the store file (secret checked), committed whole or not at all."""
        with self._write() as conn:
            yield conn

    def sealed(self, conn: sqlite3.Connection, name: str, make: Callable[[], str]) -> str:
        """A secret value kept encrypted under the store key in ``meta`` (created by ``make``).

        Call inside :meth:`writing`. Rotating the store secret re-encrypts sealed values too.
        """
        key = self._key_for(conn, write=True)
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (_SEALED + name,)).fetchone()
        aad = b"llmroute-sealed:v1\x00" + name.encode()
        if row is not None:
            try:
                return key.decrypt(bytes.fromhex(row[0]), aad)
            except (DecryptionError, ValueError):
                raise StoreError(f"{self.path}: the sealed value {name!r} does not decrypt") from None
        value = make()
        conn.execute("INSERT INTO meta VALUES (?, ?)", (_SEALED + name, key.encrypt(value, aad).hex()))
        return value

    # -- reading ---------------------------------------------------------------------------------

    def data_version(self, *, blocking: bool = True) -> tuple[int, int] | None:
        """A value that changes whenever any connection commits (None: busy, or no store yet)."""
        if not self._read_lock.acquire(blocking):
            return None
        try:
            if self._reader is None:
                with self._mapped():
                    self._reader = self._connect(for_write=False)
                if self._reader is None:
                    return None
                self._readers_opened += 1
            with self._mapped():
                version: int = self._reader.execute("PRAGMA data_version").fetchone()[0]
            return self._readers_opened, version
        finally:
            self._read_lock.release()

    def load(self) -> Snapshot:
        """Every record, decrypted; an unreadable record is reported, not fatal."""
        with self._read() as conn:
            if conn is None:
                return Snapshot()
            rows = conn.execute(_SELECT_ALL + " ORDER BY name").fetchall()
            key = self._key_for(conn) if rows else None
        snapshot = Snapshot()
        for row in rows:
            assert key is not None
            try:
                snapshot.records.append(self._decode(row, key))
            except RecordError as exc:
                snapshot.errors.append(exc)
        return snapshot

    def get(self, name: str) -> ProviderRecord:
        with self._read() as conn:
            if conn is None:
                raise RecordNotFound(name)
            row = conn.execute(_SELECT_ONE, (name,)).fetchone()
            if row is None:
                raise RecordNotFound(name)
            key = self._key_for(conn)
        return self._decode(row, key)

    def _decode(self, row: Sequence[Any], key: StoreKey, *, with_key: bool = True) -> ProviderRecord:
        name, api, base_url, key_id, blob, headers, timeout, models, options, updated_at = row
        try:
            spec = ProviderSpec.model_validate(
                {
                    # Options (responses_api, ...) first: the columns win over anything put in there.
                    **json.loads(options),
                    "name": name,
                    **({"api": api} if "kind" not in json.loads(options) else {}),
                    "base_url": base_url,
                    "headers": json.loads(headers),
                    "timeout": timeout,
                    "models": json.loads(models),
                }
            )
        except (ValueError, TypeError) as exc:
            problem = "; ".join(describe_validation(exc)) if isinstance(exc, ValidationError) else "bad JSON"
            raise RecordError(str(name), f"the record is malformed ({problem})") from None
        secret = None
        if blob is not None and with_key:
            if key_id != key.key_id:
                raise RecordError(name, f"the key was encrypted under another secret (key id {key_id})")
            try:
                secret = Secret(key.decrypt(bytes(blob), record_aad(name, base_url)))
            except DecryptionError as exc:
                raise RecordError(name, str(exc)) from None
        return dataclasses.replace(spec.record(), api_key=secret, updated_at=updated_at)

    # -- writing ---------------------------------------------------------------------------------

    def _put(self, conn: sqlite3.Connection, record: ProviderRecord, *, replace: bool) -> ProviderRecord:
        key = self._key_for(conn)
        updated_at = _now()
        aad = record_aad(record.name, record.base_url)
        blob = key.encrypt(record.api_key.reveal(), aad) if record.api_key is not None else None
        values = (
            record.name,
            record.api,
            record.base_url,
            key.key_id if blob is not None else None,
            blob,
            json.dumps(dict(record.headers), sort_keys=True),
            record.timeout,
            json.dumps(dict(record.models)),
            json.dumps(record.stored_options(), sort_keys=True),
            updated_at,
        )
        try:
            conn.execute(_UPSERT if replace else _INSERT, values)
        except sqlite3.IntegrityError:
            raise RecordConflict(record.name) from None
        return dataclasses.replace(record, updated_at=updated_at)

    def add(self, record: ProviderRecord) -> ProviderRecord:
        """Add a new record (returned as stored); :class:`RecordConflict` if the name is taken."""
        with self._write() as conn:
            return self._put(conn, record, replace=False)

    def apply(self, records: Sequence[ProviderRecord]) -> None:
        """Add or replace ``records`` in one transaction: all of them are written, or none."""
        with self._write() as conn:
            for record in records:
                self._put(conn, record, replace=True)

    def update(self, name: str, changes: Mapping[str, Any]) -> ProviderRecord:
        """Change some fields of a record (``api_key`` absent: kept; None: removed).

        The current key is decrypted (and re-encrypted, since the base URL is bound to it) only
        when ``changes`` does not replace it.
        """
        with self._write() as conn:
            row = conn.execute(_SELECT_ONE, (name,)).fetchone()
            if row is None:
                raise RecordNotFound(name)
            keep_key = "api_key" not in changes
            current = self._decode(row, self._key_for(conn), with_key=keep_key)
            fields = {**current.fields(include_key=keep_key), **changes, "name": name}
            try:
                record = ProviderSpec.model_validate(fields).record()
            except ValidationError as exc:
                errors = exc.errors()
                param = str(errors[0]["loc"][0]) if errors and errors[0]["loc"] else None
                message = f"provider {name!r}: " + "; ".join(describe_validation(exc))
                raise RecordInvalid(message, param) from None
            return self._put(conn, record, replace=True)

    def remove(self, name: str) -> None:
        with self._write() as conn:
            if conn.execute("DELETE FROM providers WHERE name = ?", (name,)).rowcount == 0:
                raise RecordNotFound(name)

    def rotate(self, new_secret: str) -> int:
        """Re-encrypt every key under ``new_secret``, all or nothing; returns the number of keys.

        Fails, changing nothing, if any record cannot be decrypted under the current secret.
        """
        try:
            new_key = StoreKey(new_secret)
        except ValueError as exc:
            raise StoreSecretError(f"the new secret: {exc}") from None
        with self._write() as conn:
            old_key = self._key_for(conn)
            if new_key.key_id == old_key.key_id:
                raise StoreSecretError("the new secret is the same as the current one")
            rows = conn.execute(_SELECT_ALL + " WHERE api_key IS NOT NULL").fetchall()
            updates, errors = [], []
            for row in rows:
                try:
                    record = self._decode(row, old_key)
                except RecordError as exc:
                    errors.append(str(exc))
                    continue
                assert record.api_key is not None
                blob = new_key.encrypt(record.api_key.reveal(), record_aad(record.name, record.base_url))
                updates.append((new_key.key_id, blob, record.name))
            if errors:
                raise StoreError("nothing was re-encrypted: " + "; ".join(errors))
            sealed = []
            for meta_key, value in conn.execute("SELECT key, value FROM meta WHERE key LIKE 'sealed:%'").fetchall():
                aad = b"llmroute-sealed:v1\x00" + meta_key[len(_SEALED) :].encode()
                try:
                    plain = old_key.decrypt(bytes.fromhex(value), aad)
                except (DecryptionError, ValueError):
                    raise StoreError(
                        f"nothing was re-encrypted: the sealed value {meta_key!r} does not decrypt"
                    ) from None
                sealed.append((new_key.encrypt(plain, aad).hex(), meta_key))
            conn.executemany("UPDATE providers SET key_id = ?, api_key = ? WHERE name = ?", updates)
            conn.executemany("UPDATE meta SET value = ? WHERE key = ?", sealed)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'key_id'", (new_key.key_id,))
        self._key = new_key
        return len(updates)
