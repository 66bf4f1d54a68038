"""Functions run in child processes by the store tests (importable, for the spawn start method)."""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

from asgi_llmroute.providers.records import ProviderRecord
from asgi_llmroute.providers.store import ProviderStore
from tests.providers.support import SECRET, record


def write_many(path: str, worker: int, count: int) -> None:
    """Add ``count`` records and update a shared one, each in its own transaction."""
    store = ProviderStore(path, SECRET, busy_timeout=60.0)  # a loaded machine may starve the lock holder
    for i in range(count):
        store.add(record(f"w{worker}-{i}", f"sk-worker-{worker}-{i}-0123456789"))
        store.apply([record("shared", f"sk-shared-from-{worker}-{i}-0123456789", models={"m": f"w{worker}"})])
    store.close()


def read_many(path: str, seconds: float) -> None:
    """Load the store over and over; any unreadable record or error fails the process."""
    store = ProviderStore(path, SECRET)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        snapshot = store.load()
        if snapshot.errors:
            raise SystemExit(f"unreadable records: {snapshot.errors}")
    store.close()


def import_and_hang(path: str, count: int) -> None:
    """Start a ``count``-record import, say so on stdout after half of it, then hang until killed."""
    store = ProviderStore(path, SECRET)
    original = ProviderStore._put
    written = 0

    def slow_put(self: ProviderStore, conn: sqlite3.Connection, rec: ProviderRecord, *, replace: bool) -> None:
        nonlocal written
        original(self, conn, rec, replace=replace)
        written += 1
        if written == count // 2:
            print("half-written", flush=True)
            time.sleep(60)

    ProviderStore._put = slow_put  # type: ignore[method-assign,assignment]
    store.apply([record(f"import-{i}", f"sk-import-{i}-0123456789abcdef") for i in range(count)])


if __name__ == "__main__":
    import_and_hang(sys.argv[1], int(sys.argv[2]))
    Path(sys.argv[1]).touch()
