"""The provider store on a real PostgreSQL: the SQLite store's behaviour, encryption, notifications, outages."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from asgi_llmroute.keys.store import KEY_TABLES
from asgi_llmroute.providers.pgstore import MIGRATIONS, PostgresProviderStore, postgres_ddl
from asgi_llmroute.providers.store import ProviderStore, RecordConflict, RecordNotFound, StoreError, StoreSecretError
from tests.providers.support import KEY_A, KEY_B, OTHER_SECRET, SECRET, record
from tests.support.cli import LLMROUTE
from tests.support.dbservers import PostgresServer


def _sql(dsn: str, query: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query)
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    """A fresh database of the session's server."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    _sql(postgres.dsn, f"CREATE DATABASE {name}")
    return postgres.dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def store(database: str) -> Iterator[PostgresProviderStore]:
    store = PostgresProviderStore(database, SECRET, timeout=2.0)
    yield store
    store.close()


def test_add_get_update_remove(store: PostgresProviderStore) -> None:
    store.add(record("a", KEY_A, models={"gpt": "gpt-4o"}, headers={"X-Team": "blue"}))
    got = store.get("a")
    assert got.api_key is not None and got.api_key.reveal() == KEY_A
    assert got.models == {"gpt": "gpt-4o"} and got.headers == {"x-team": "blue"}
    with pytest.raises(RecordConflict):
        store.add(record("a", KEY_B))
    updated = store.update("a", {"base_url": "https://other.example.com/v1"})
    assert updated.api_key is not None and updated.api_key.reveal() == KEY_A
    store.apply([record("b", KEY_B), record("a", None)])
    assert [r.name for r in store.load().records] == ["a", "b"]
    assert store.get("a").api_key is None
    store.remove("a")
    with pytest.raises(RecordNotFound):
        store.get("a")
    with pytest.raises(RecordNotFound):
        store.remove("a")


def test_the_database_never_sees_a_plaintext_key(store: PostgresProviderStore, database: str) -> None:
    store.add(record("a", KEY_A))
    rows = _sql(database, "SELECT * FROM providers")
    dump = repr([tuple(r) for r in rows]) + repr(_sql(database, "SELECT * FROM meta"))
    assert KEY_A not in dump and KEY_A.encode() not in b"".join(r["api_key"] for r in rows)
    # Another secret cannot read it; rotation re-encrypts.
    other = PostgresProviderStore(database, OTHER_SECRET)
    try:
        with pytest.raises(StoreSecretError):
            other.get("a")
    finally:
        other.close()
    assert store.rotate(OTHER_SECRET) == 1
    again = PostgresProviderStore(database, OTHER_SECRET)
    try:
        key = again.get("a").api_key
        assert key is not None and key.reveal() == KEY_A
    finally:
        again.close()


def test_same_columns_as_the_sqlite_store(store: PostgresProviderStore, database: str, tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from asgi_llmroute.keys.store import KeyStore

    sqlite_store = ProviderStore(tmp_path / "providers.db", SECRET)
    sqlite_store.add(record("a", KEY_A))
    KeyStore(sqlite_store).create({"name": "k"}, datetime.now(timezone.utc))  # its tables, too
    sqlite_store.close()
    # Every table of the SQLite store, with the same columns (a new SQLite column needs a PG migration).
    with sqlite3.connect(tmp_path / "providers.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"providers", "meta", "virtual_keys", "key_spend"} <= set(tables)
        for table in tables:
            sqlite_columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            rows = _sql(database, f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'")
            assert {r[0] for r in rows} == sqlite_columns, table


def test_the_key_tables_are_defined_once() -> None:
    """PostgreSQL's migration 2 is keys/store.py's KEY_TABLES with PostgreSQL's types, not a copy."""
    assert postgres_ddl("a BLOB NOT NULL, cost REAL, REALM TEXT, BLOBS INTEGER") == (
        "a BYTEA NOT NULL, cost DOUBLE PRECISION, REALM TEXT, BLOBS INTEGER"
    )
    assert MIGRATIONS[1] == tuple(postgres_ddl(s) for s in KEY_TABLES)
    assert all("BLOB" not in s and " REAL " not in s for s in MIGRATIONS[1])


def test_migrations_run_once(store: PostgresProviderStore, database: str) -> None:
    assert store.migrate() == 0
    assert [r[0] for r in _sql(database, "SELECT version FROM llmroute_migrations ORDER BY 1")] == [1, 2]


def test_a_write_elsewhere_is_notified(store: PostgresProviderStore, database: str) -> None:
    other = PostgresProviderStore(database, SECRET)
    try:
        time.sleep(0.3)  # both listening
        before = store.data_version()
        other.add(record("n", KEY_A))
        deadline = time.monotonic() + 3
        while store.data_version() == before:
            assert time.monotonic() < deadline, "no notification"
            time.sleep(0.01)
        assert [r.name for r in store.load().records] == ["n"]
    finally:
        other.close()


def test_unreachable_is_a_store_error_naming_no_password() -> None:
    with pytest.raises(StoreError) as info:
        PostgresProviderStore("postgresql://u:hunter2@127.0.0.1:1/db", SECRET, timeout=1.0)
    assert "hunter2" not in str(info.value) and "127.0.0.1:1" in str(info.value)


def test_cli_migrate_and_copy_from_sqlite(database: str, tmp_path: Path) -> None:
    (tmp_path / "store-secret").write_text(SECRET + "\n")
    sqlite_store = ProviderStore(tmp_path / "old.db", SECRET)
    sqlite_store.apply([record("a", KEY_A), record("b", KEY_B, models={"gpt": "gpt-4o"})])
    sqlite_store.close()
    (tmp_path / "llmroute.toml").write_text(
        '[store]\nbackend = "postgres"\ndsn = "env:TEST_PG_DSN"\nsecret = "file:store-secret"\n'
    )
    env = {**os.environ, "TEST_PG_DSN": database}
    migrate = subprocess.run(
        [*LLMROUTE, "store", "migrate"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "schema is up to date" in migrate.stdout
    copy = subprocess.run(
        [*LLMROUTE, "store", "copy", "--from", "old.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert copy.returncode == 0, copy.stderr
    assert "copied 2 provider(s)" in copy.stdout and "postgresql://" in copy.stdout
    store = PostgresProviderStore(database, SECRET)
    try:
        key = store.get("a").api_key
        assert key is not None and key.reveal() == KEY_A
        assert store.get("b").models == {"gpt": "gpt-4o"}
    finally:
        store.close()
    listed = subprocess.run(
        [*LLMROUTE, "providers", "list"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert listed.returncode == 0 and "a" in listed.stdout and KEY_A not in listed.stdout
    missing = subprocess.run(
        [*LLMROUTE, "store", "copy", "--from", "nope.db"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no such file" in missing.stderr


def test_virtual_keys_and_spend_on_postgres(store: PostgresProviderStore, database: str) -> None:
    from datetime import date, datetime, timezone

    from asgi_llmroute.keys.store import KeyStore, SpendRow

    keys = KeyStore(store)
    now = datetime(2026, 12, 2, tzinfo=timezone.utc)
    key, secret = keys.create({"name": "team-app", "team": "blue", "models": ["gpt*"]}, now)
    table = keys.table()
    assert table.keys[table.digest(secret)].name == "team-app"
    dump = repr([tuple(r) for r in _sql(database, "SELECT * FROM virtual_keys")])
    assert secret not in dump  # only a keyed digest is stored
    day = date(2026, 12, 2)
    for _ in range(2):
        keys.add_spend([SpendRow(key.id, "blue", "gpt-4o", day, 0.25, 1, {"input_tokens": 10, "output_tokens": 5})])
    [row] = keys.spend_report(key_id=key.id)
    assert row["cost_usd"] == pytest.approx(0.5) and row["requests"] == 2 and row["input_tokens"] == 20
    rotated, new_secret = keys.rotate(key.id, now)
    assert new_secret != secret and table.digest(new_secret) in keys.table().keys
    keys.revoke(key.id, now)
    assert keys.table().keys == {}
    keys.create({"name": "team-app"}, now)  # the name is free again once revoked
