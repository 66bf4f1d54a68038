"""The provider store in PostgreSQL, for several instances (``[store] backend = "postgres"``).

Needs the ``postgres`` extra (asyncpg), imported only when this store is opened.

The records, their encryption and every read and write are the SQLite store's
(:class:`~.store.ProviderStore`, inherited): keys are encrypted with AES-256-GCM in the gateway
before they are sent, so the database never sees a plaintext key. Only the connection differs:
the same statements run through asyncpg on a private event-loop thread (the store's API is
synchronous, like SQLite's, so the admin API, the CLI and the route table use either alike).

- Writers are serialised with a transaction-scoped advisory lock (SQLite's ``BEGIN IMMEDIATE``).
- Every write commits a new ``version`` and a ``NOTIFY`` in its transaction. A listening connection
  turns notifications into a new :meth:`data_version`, so every instance re-reads the store within
  its refresh interval; the version is also polled every few seconds, and re-read after the
  listener reconnects, so a notification lost in an outage delays a change, never loses it.
- Migrations (:data:`MIGRATIONS`) run at start under an advisory lock, or alone with
  ``llmroute store migrate``.
- When PostgreSQL cannot be reached, reads and writes fail with :class:`~.store.StoreError` (the
  gateway keeps serving its last loaded providers; admin writes answer 503).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import sqlite3
import threading
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from ..keys.store import KEY_TABLES
from ..secret import redact_url
from .store import SCHEMA_VERSION, ProviderStore, SecretSource, StoreError

if TYPE_CHECKING:
    import asyncpg

__all__ = ["MIGRATIONS", "PostgresProviderStore", "postgres_ddl"]

_T = TypeVar("_T")

_SQLITE_TYPES = re.compile(r"\b(BLOB|REAL)\b")
_POSTGRES_TYPES = {"BLOB": "BYTEA", "REAL": "DOUBLE PRECISION"}


def postgres_ddl(sql: str) -> str:
    """A SQLite ``CREATE`` statement of the stores with PostgreSQL's column types."""
    return _SQLITE_TYPES.sub(lambda m: _POSTGRES_TYPES[m.group(1)], sql)


#: Schema steps, applied in order once each; the SQLite store's columns, in PostgreSQL's types.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS providers (
            name TEXT PRIMARY KEY,
            api TEXT NOT NULL,
            base_url TEXT NOT NULL,
            key_id TEXT,
            api_key BYTEA,
            headers TEXT NOT NULL,
            timeout DOUBLE PRECISION NOT NULL,
            models TEXT NOT NULL,
            options TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        f"INSERT INTO meta VALUES ('schema', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING",  # noqa: S608 - a constant
        "INSERT INTO meta VALUES ('version', '0') ON CONFLICT DO NOTHING",
    ),
    # Virtual keys and their spend: keys/store.py's tables, defined there once.
    tuple(postgres_ddl(statement) for statement in KEY_TABLES),
)

_CHANNEL = "llmroute_store"
_LOCK = 0x6C6C_6D72  # the advisory lock of writers and migrations ("llmr")
_POLL = 5.0  # seconds between version checks, besides notifications


_PLACEHOLDER = re.compile(r"\?")
_UPSERT = re.compile(r"^\s*INSERT OR REPLACE INTO (\w+)\s*\(([^)]*)\)", re.S)
_INSERT_INTO = re.compile(r"^\s*INSERT INTO (\w+)")
_ACCUMULATE = re.compile(r"= (\w+) \+ excluded\.")
_NULL_CHECK = re.compile(r"(\$\d+) IS NULL")
_HAS_TABLE = re.compile(r"FROM sqlite_master WHERE type = 'table' AND name = ('\w+')")


def _translate(sql: str) -> str:
    """The SQLite store's statements in PostgreSQL's dialect (its placeholders and upserts)."""
    upsert = _UPSERT.match(sql)
    if upsert is not None:
        # The first column is the table's primary key (``name``).
        columns = [c.strip() for c in upsert.group(2).split(",")]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
        sql = sql.replace("INSERT OR REPLACE", "INSERT", 1) + f" ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}"
    elif sql.lstrip().startswith("INSERT OR IGNORE"):
        sql = sql.replace("INSERT OR IGNORE", "INSERT", 1) + " ON CONFLICT DO NOTHING"
    elif "DO UPDATE SET" in sql and (table := _INSERT_INTO.match(sql)) is not None:
        # `SET n = n + excluded.n`: PostgreSQL wants the existing row's column qualified.
        sql = _ACCUMULATE.sub(lambda m: f"= {table.group(1)}.{m.group(1)} + excluded.", sql)
    sql = _HAS_TABLE.sub(
        r"FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = \1", sql
    )
    count = 0

    def number(_: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    # `? IS NULL OR col = ?` (an optional filter): PostgreSQL needs the first parameter's type.
    return _NULL_CHECK.sub(r"\1::text IS NULL", _PLACEHOLDER.sub(number, sql))


class _Cursor:
    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int = -1) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows


class _Session:
    """One pooled connection inside one transaction, driven from the caller's thread."""

    def __init__(self, store: PostgresProviderStore, conn: asyncpg.Connection[Any]) -> None:
        self._store = store
        self._conn = conn
        self._cache: dict[str, str] = {}

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        import asyncpg

        statement = self._cache.get(sql) or self._cache.setdefault(sql, _translate(sql))
        if statement.lstrip().upper().startswith("CREATE "):
            return _Cursor([])  # tables and indexes are the migrations' (MIGRATIONS), not the caller's
        if statement.lstrip().upper().startswith("SELECT"):
            return _Cursor(self._store._call(self._conn.fetch(statement, *params)))
        try:
            status: str = self._store._call(self._conn.execute(statement, *params))
        except asyncpg.UniqueViolationError:
            raise sqlite3.IntegrityError("unique") from None  # what the SQLite store's callers catch
        tail = status.rsplit(" ", 1)[-1]
        return _Cursor([], int(tail) if tail.isdigit() else -1)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._store._call(self._conn.executemany(_translate(sql), rows))


class PostgresProviderStore(ProviderStore):
    """Provider records in PostgreSQL at ``dsn``; the same API and encryption as the SQLite store.

    ``timeout``: seconds a connection attempt or a statement may take before the store counts as
    unavailable.
    """

    def __init__(self, dsn: str, secret: str | SecretSource, *, timeout: float = 5.0, migrate: bool = True) -> None:
        try:
            import asyncpg  # noqa: F401
        except ImportError:
            raise StoreError(
                "[store] backend = \"postgres\" needs asyncpg: pip install 'asgi-llmroute[postgres]'"
            ) from None
        # Not the SQLite store's __init__: no file. ``path`` names the database in messages.
        self.path = redact_url(dsn, "<postgresql dsn>")  # type: ignore[assignment]
        self._dsn = dsn
        self._source: SecretSource = (lambda: (secret,)) if isinstance(secret, str) else secret
        self._create = True
        self._key = None
        self._timeout = timeout
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._readers_opened = 0
        self._version = 0  # moves on every notification or polled change
        self._seen: str | None = None  # the last version value read from the database
        self._pool: asyncpg.Pool[Any] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llmroute-pgstore", daemon=True)
        self._thread.start()
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        if migrate:
            try:
                self.migrate()
            except BaseException:
                self.close()
                raise
        self._listener = self._call(self._start_listening())

    def __repr__(self) -> str:
        return f"PostgresProviderStore({self.path!r})"

    # -- the loop thread -------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(self._timeout + 1)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise StoreError(f"{self.path}: PostgreSQL did not answer within {self._timeout:g} s") from None

    async def _get_pool(self) -> asyncpg.Pool[Any]:
        import asyncpg

        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=0, max_size=2, timeout=self._timeout, command_timeout=self._timeout
            )
        return self._pool

    async def _acquire(self) -> asyncpg.Connection[Any]:
        pool = await self._get_pool()
        conn: asyncpg.Connection[Any] = await pool.acquire(timeout=self._timeout)
        return conn

    async def _release(self, conn: asyncpg.Connection[Any]) -> None:
        assert self._pool is not None
        await self._pool.release(conn)

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        import asyncpg

        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except StoreError:
            raise
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            raise StoreError(f"{self.path}: PostgreSQL is unavailable: {text}") from None

    @contextmanager
    def _session(self, *, write: bool) -> Iterator[_Session]:
        conn = self._call(self._acquire())
        transaction = conn.transaction(isolation="read_committed" if write else "repeatable_read", readonly=not write)
        try:
            self._call(transaction.start())
            session = _Session(self, conn)
            try:
                if write:
                    session.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
                yield session
            except BaseException:
                try:
                    self._call(transaction.rollback())
                except Exception:  # noqa: S110 - the connection is gone; nothing was committed
                    pass
                raise
            self._call(transaction.commit())
        finally:
            try:
                self._call(self._release(conn))
            except Exception:  # noqa: S110 - a broken connection: the pool drops it
                pass

    # -- the SQLite store's hooks ----------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self._read_lock, self._mapped(), self._session(write=False) as session:
            yield session if self._check_schema(session) else None

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self._write_lock, self._mapped(), self._session(write=True) as session:
            if not self._check_schema(session):
                raise StoreError(f"{self.path}: the schema is not there; run `llmroute store migrate`")
            self._key_for(session, write=True)  # type: ignore[arg-type]
            yield session
            session.execute("UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'version'")
            session.execute(f"SELECT pg_notify('{_CHANNEL}', '')")
        self._version += 1  # our own write is seen at once

    def _check_schema(self, conn: Any) -> bool:
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except StoreError:
            raise
        except Exception:
            return False
        if row is None:
            return False
        if row[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: store schema {row[0]} is not supported (this version: {SCHEMA_VERSION})")
        return True

    def data_version(self, *, blocking: bool = True) -> tuple[int, int] | None:
        """Moves when any instance commits (from notifications; no database round trip)."""
        return (1, self._version)

    # -- migrations, notifications ---------------------------------------------------------------

    def migrate(self) -> int:
        """Apply the migrations this database lacks; returns how many ran."""
        with self._mapped():
            return self._call(self._migrate())

    async def _migrate(self) -> int:
        conn = await self._acquire()
        try:
            async with conn.transaction():
                await conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
                await conn.execute("CREATE TABLE IF NOT EXISTS llmroute_migrations (version INTEGER PRIMARY KEY)")
                done = {r[0] for r in await conn.fetch("SELECT version FROM llmroute_migrations")}
                ran = 0
                for number, steps in enumerate(MIGRATIONS, start=1):
                    if number in done:
                        continue
                    for step in steps:
                        await conn.execute(step)
                    await conn.execute("INSERT INTO llmroute_migrations VALUES ($1)", number)
                    ran += 1
                return ran
        finally:
            await self._release(conn)

    async def _start_listening(self) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        import asyncpg

        delay = 0.1
        while not self._closed:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn, timeout=self._timeout, command_timeout=self._timeout)
            except Exception:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(_CHANNEL, lambda *_: self._bump())
                while not lost.is_set():
                    value = await conn.fetchval("SELECT value FROM meta WHERE key = 'version'")
                    if value != self._seen:  # also right after a (re)connect: changes made meanwhile
                        self._seen = value
                        self._bump()
                    try:
                        await asyncio.wait_for(lost.wait(), _POLL)
                    except asyncio.TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(delay)  # lost it (or no schema yet): connect again
                delay = min(delay * 2, 5.0)
            finally:
                if not conn.is_closed():
                    conn.terminate()

    def _bump(self) -> None:
        self._version += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def shutdown() -> None:
            if self._listener is not None:
                self._listener.cancel()
                await asyncio.gather(self._listener, return_exceptions=True)
            if self._pool is not None:
                self._pool.terminate()
                self._pool = None

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(self._timeout)
        except Exception:  # noqa: S110 - closing anyway
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self._timeout)
        if not self._thread.is_alive():
            self._loop.close()
