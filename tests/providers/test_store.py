from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from asgi_llmroute.providers.store import (
    ProviderStore,
    RecordConflict,
    RecordInvalid,
    RecordNotFound,
    StoreError,
    StoreSecretError,
)
from tests.conftest import ROOT
from tests.providers import workers
from tests.providers.support import KEY_A, KEY_B, OTHER_SECRET, SECRET, record, store_bytes


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProviderStore]:
    store = ProviderStore(tmp_path / "providers.db", SECRET)
    yield store
    store.close()


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _state(path: Path) -> list[tuple[object, ...]]:
    with _raw(path) as conn:
        return conn.execute("SELECT * FROM providers ORDER BY name").fetchall()


def test_add_get_update_remove(store: ProviderStore) -> None:
    store.add(record("a", KEY_A, models={"gpt": "gpt-4o"}, headers={"X-Team": "blue"}))
    got = store.get("a")
    assert got.api_key is not None and got.api_key.reveal() == KEY_A
    assert got.models == {"gpt": "gpt-4o"} and got.headers == {"x-team": "blue"}
    assert got.view()["api_key"] == "sk-...6789"

    updated = store.update("a", {"base_url": "https://other.example.com/v1"})
    assert updated.api_key is not None and updated.api_key.reveal() == KEY_A  # kept, re-encrypted for the new URL
    assert store.get("a").base_url == "https://other.example.com/v1"
    assert store.get("a").api_key == updated.api_key

    store.update("a", {"api_key": None})
    assert store.get("a").api_key is None

    store.remove("a")
    with pytest.raises(RecordNotFound, match="'a'"):
        store.get("a")
    with pytest.raises(RecordNotFound):
        store.remove("a")


def test_duplicate_name_is_a_conflict(store: ProviderStore) -> None:
    store.add(record("a", KEY_A))
    before = _state(store.path)
    with pytest.raises(RecordConflict, match="'a' is already in the store"):
        store.add(record("a", KEY_B))
    assert _state(store.path) == before


def test_invalid_update_changes_nothing(store: ProviderStore) -> None:
    store.add(record("a", KEY_A))
    before = _state(store.path)
    with pytest.raises(RecordInvalid, match="provider 'a': (.|\n)*unknown field"):
        store.update("a", {"colour": "red"})
    with pytest.raises(RecordInvalid, match="base_url"):
        store.update("a", {"base_url": "ftp://x"})
    assert _state(store.path) == before


def test_keys_are_not_in_the_file_and_the_file_is_private(store: ProviderStore) -> None:
    store.add(record("a", KEY_A))
    store.add(record("b", KEY_B))
    data = store_bytes(store.path)
    assert KEY_A.encode() not in data and KEY_B.encode() not in data
    assert SECRET.encode() not in data
    for path in store.path.parent.glob("providers.db*"):
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_reading_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    store = ProviderStore(tmp_path / "sub" / "providers.db", SECRET, create=False)
    assert store.load().records == []
    assert store.data_version() is None
    assert not (tmp_path / "sub").exists()


def test_wrong_secret_is_reported_and_changes_nothing(store: ProviderStore, tmp_path: Path) -> None:
    store.add(record("a", KEY_A))
    before = _state(store.path)
    other = ProviderStore(store.path, OTHER_SECRET)
    with pytest.raises(StoreSecretError, match="does not match this store") as info:
        other.load()
    assert OTHER_SECRET not in str(info.value) and SECRET not in str(info.value)
    with pytest.raises(StoreSecretError):
        other.add(record("b", KEY_B))
    other.close()
    assert _state(store.path) == before


def test_tampered_record_is_skipped_and_named(store: ProviderStore) -> None:
    store.add(record("a", KEY_A))
    store.add(record("b", KEY_B))
    with _raw(store.path) as conn:
        blob = bytearray(conn.execute("SELECT api_key FROM providers WHERE name = 'a'").fetchone()[0])
        blob[20] ^= 0xFF
        conn.execute("UPDATE providers SET api_key = ? WHERE name = 'a'", (bytes(blob),))
    snapshot = store.load()
    assert [r.name for r in snapshot.records] == ["b"]
    assert [e.name for e in snapshot.errors] == ["a"]
    assert "does not authenticate" in str(snapshot.errors[0])
    assert KEY_A not in str(snapshot.errors[0])


def test_truncated_record_is_named(store: ProviderStore) -> None:
    store.add(record("a", KEY_A))
    with _raw(store.path) as conn:
        conn.execute("UPDATE providers SET api_key = substr(api_key, 1, 10) WHERE name = 'a'")
    (error,) = store.load().errors
    assert error.name == "a" and "truncated" in error.problem


def test_key_copied_onto_another_record_fails(store: ProviderStore) -> None:
    store.add(record("a", KEY_A))
    store.add(record("b", KEY_B))
    with _raw(store.path) as conn:
        conn.execute("UPDATE providers SET api_key = (SELECT api_key FROM providers WHERE name = 'a') WHERE name = 'b'")
    snapshot = store.load()
    assert [r.name for r in snapshot.records] == ["a"]
    assert [e.name for e in snapshot.errors] == ["b"]


def test_record_pointed_at_another_host_fails(store: ProviderStore) -> None:
    store.add(record("a", KEY_A))
    with _raw(store.path) as conn:
        conn.execute("UPDATE providers SET base_url = 'https://attacker.example.com/v1' WHERE name = 'a'")
    assert [e.name for e in store.load().errors] == ["a"]


def test_malformed_record_is_named(store: ProviderStore) -> None:
    store.add(record("a", KEY_A))
    store.add(record("b", KEY_B))
    with _raw(store.path) as conn:
        conn.execute("UPDATE providers SET models = 'not json', api = 'cohere' WHERE name = 'a'")
    snapshot = store.load()
    assert [e.name for e in snapshot.errors] == ["a"] and "malformed" in snapshot.errors[0].problem
    assert [r.name for r in snapshot.records] == ["b"]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty-header"])
def test_corrupt_store_file_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "providers.db"
    store = ProviderStore(path, SECRET)
    for i in range(50):
        store.add(record(f"p{i}", KEY_A, models={f"m{i}": "x" * 200}))
    store.close()
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_bytes(b"\0" * 100 + data[100:])
    damaged = path.read_bytes()
    store = ProviderStore(path, SECRET)
    with pytest.raises(StoreError, match="providers.db") as info:
        store.load()
        store.add(record("new", KEY_B))
    assert "Traceback" not in str(info.value)
    store.close()
    assert path.read_bytes() == damaged  # a failed operation does not write


def test_rotate_reencrypts_everything(store: ProviderStore) -> None:
    store.add(record("a", KEY_A))
    store.add(record("b", KEY_B))
    store.add(record("nokey", None))
    assert store.rotate(OTHER_SECRET) == 2
    with pytest.raises(StoreSecretError):
        ProviderStore(store.path, SECRET).load()
    rotated = ProviderStore(store.path, OTHER_SECRET)
    assert {r.name: r.api_key.reveal() if r.api_key else None for r in rotated.load().records} == {
        "a": KEY_A,
        "b": KEY_B,
        "nokey": None,
    }
    rotated.close()


def test_rotate_is_all_or_nothing(store: ProviderStore) -> None:
    store.add(record("a", KEY_A))
    store.add(record("b", KEY_B))
    with _raw(store.path) as conn:
        conn.execute("UPDATE providers SET api_key = substr(api_key, 1, 40) WHERE name = 'b'")
    before = _state(store.path)
    with pytest.raises(StoreError, match="nothing was re-encrypted: provider 'b'"):
        store.rotate(OTHER_SECRET)
    assert _state(store.path) == before
    assert store.get("a").api_key is not None  # the old secret still reads it


def test_data_version_moves_on_commits_from_other_connections(store: ProviderStore, tmp_path: Path) -> None:
    store.add(record("a", KEY_A))
    first = store.data_version()
    assert store.data_version() == first
    other = ProviderStore(store.path, SECRET)
    other.add(record("b", KEY_B))
    other.close()
    assert store.data_version() != first
    second = store.data_version()
    store.add(record("c", KEY_B))  # our own writer is another connection, so this counts too
    assert store.data_version() != second


def test_concurrent_writers_in_several_processes(tmp_path: Path) -> None:
    path = tmp_path / "providers.db"
    ProviderStore(path, SECRET).close()
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=workers.write_many, args=(str(path), w, 12)) for w in range(4)]
    reader = ctx.Process(target=workers.read_many, args=(str(path), 1.5))
    for proc in [*writers, reader]:
        proc.start()
    for proc in [*writers, reader]:
        proc.join(60)
        assert proc.exitcode == 0
    store = ProviderStore(path, SECRET)
    snapshot = store.load()
    store.close()
    assert snapshot.errors == []
    names = {r.name for r in snapshot.records}
    assert names == {f"w{w}-{i}" for w in range(4) for i in range(12)} | {"shared"}
    keys = {r.name: r.api_key.reveal() for r in snapshot.records if r.api_key}
    assert keys["w3-11"] == "sk-worker-3-11-0123456789"
    assert keys["shared"].startswith("sk-shared-from-")
    with _raw(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_process_killed_mid_import_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "providers.db"
    store = ProviderStore(path, SECRET)
    store.add(record("before", KEY_A))
    store.close()
    before = _state(path)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.providers.workers", str(path), "200"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "half-written"
    finally:
        os.kill(child.pid, 9)  # our own child, mid-transaction
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -9
    assert _state(path) == before
    store = ProviderStore(path, SECRET)
    snapshot = store.load()
    assert [r.name for r in snapshot.records] == ["before"] and snapshot.errors == []
    store.add(record("after", KEY_B))  # and the store is writable again
    store.close()
    assert [row[0] for row in _state(path)] == ["after", "before"]
    with _raw(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_options_round_trip_and_reach_the_runtime_provider(store: ProviderStore) -> None:
    store.add(record("r", KEY_A, responses_api=True))
    got = store.get("r")
    assert got.responses_api is True and got.provider().responses_api is True
    assert got.fields()["responses_api"] is True
    store.update("r", {"responses_api": False})
    assert store.get("r").responses_api is False and "responses_api" not in store.get("r").fields()


def test_a_busy_answer_while_a_writer_connects_is_waited_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite may answer "database is locked" to a connection preparing to write without waiting on its busy
    handler (another process opening or closing the WAL at that moment, seen in the several-process test):
    the store retries until its busy timeout, then says the store is busy."""
    path = tmp_path / "providers.db"
    ProviderStore(path, SECRET).close()
    ensure = ProviderStore._ensure_schema
    failures = {"left": 3}

    def flaky(self: ProviderStore, conn: sqlite3.Connection) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        ensure(self, conn)

    monkeypatch.setattr(ProviderStore, "_ensure_schema", flaky)
    store = ProviderStore(path, SECRET)
    store.add(record("p", KEY_A))
    assert failures["left"] == 0 and store.get("p") is not None
    store.close()
    failures["left"] = 10**9
    stuck = ProviderStore(path, SECRET, busy_timeout=0.05)
    with pytest.raises(StoreError, match="busy"):
        stuck.add(record("q", KEY_A))
    stuck.close()
