"""The key manager when its store cannot be reached (PostgreSQL lost): it keeps serving the keys it last
read, keeps the spend in memory, logs one line (no traceback) when the store is lost and one when it is back."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from asgi_llmroute.errors import GatewayError
from asgi_llmroute.keys.manager import KeyManager
from asgi_llmroute.keys.store import KeyStore
from asgi_llmroute.providers.store import ProviderStore, StoreError
from tests.keys.test_keys_store import NOW, PRICES, USAGE, Clock
from tests.providers.support import SECRET

pytestmark = pytest.mark.anyio

LOST = "postgresql://postgres:***@127.0.0.1/db: PostgreSQL is unavailable: connection refused"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Outage:
    """Makes the key store's reads and writes fail as the PostgreSQL store's do when it is lost."""

    def __init__(self, keys: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._keys = keys
        self._monkeypatch = monkeypatch

    def start(self) -> None:
        def fail(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            raise StoreError(LOST)

        for name in ("table", "daily_spend", "add_spend"):
            self._monkeypatch.setattr(self._keys, name, fail)

    def end(self) -> None:
        self._monkeypatch.undo()


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(ProviderStore(tmp_path / "providers.db", SECRET))


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "asgi_llmroute.keys"]


async def test_known_keys_keep_working_and_spend_waits_for_the_store(
    keys: KeyStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key, secret = keys.create({"name": "k", "budget": 1.0}, NOW)
    manager = KeyManager(keys, PRICES, clock=Clock(NOW), refresh=60, flush=0)
    principal = manager.principal(secret)
    assert principal is not None
    outage = Outage(keys, monkeypatch)
    outage.start()
    caplog.set_level(logging.INFO, logger="asgi_llmroute.keys")
    manager.invalidate()  # the table is due for a re-read: it cannot be, the last one serves
    assert manager.principal(secret) == principal
    calls = outage.calls
    for _ in range(20):  # the store is tried again in 2 x refresh, not by every lookup
        assert manager.principal(secret) == principal
    assert outage.calls == calls
    manager.record(principal, "m", USAGE)
    for _ in range(3):
        manager._last_maintenance = 0.0
        await manager.maintain()
    assert manager.refusal(principal) is None
    lines = _lines(caplog)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.ERROR and lines[0].exc_info is None
    assert "key store is unavailable" in lines[0].getMessage() and LOST in lines[0].getMessage()

    outage.end()
    manager._last_maintenance = 0.0
    await manager.maintain()
    assert abs(manager.spent(key, NOW)[0] - 0.007) < 1e-12  # the spend kept in memory is written
    lines = _lines(caplog)
    assert len(lines) == 2 and "reachable again" in lines[1].getMessage() and lines[1].exc_info is None


def test_the_flushing_thread_logs_one_line(
    keys: KeyStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, secret = keys.create({"name": "k"}, NOW)
    manager = KeyManager(keys, PRICES, clock=Clock(NOW), refresh=60, flush=0.01)
    principal = manager.principal(secret)
    assert principal is not None
    outage = Outage(keys, monkeypatch)
    outage.start()
    caplog.set_level(logging.INFO, logger="asgi_llmroute.keys")
    manager.record(principal, "m", USAGE)  # starts the thread, which fails to write every 10 ms
    for _ in range(500):
        if outage.calls >= 5:
            break
        manager._stop.wait(0.01)
    manager._stop.set()
    assert manager._flusher is not None
    manager._flusher.join(5)
    assert outage.calls >= 5
    lines = _lines(caplog)
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in lines]
    assert len(manager._pending) == 1  # kept for the next try
    manager.close()  # on shutdown, with the store still lost: one more line, no traceback
    lines = _lines(caplog)
    assert len(lines) == 2 and lines[1].exc_info is None and "on shutdown" in lines[1].getMessage()


def test_a_process_that_never_read_the_keys_answers_503(keys: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _, secret = keys.create({"name": "k"}, NOW)
    manager = KeyManager(keys, PRICES, clock=Clock(NOW), refresh=60)
    outage = Outage(keys, monkeypatch)
    outage.start()
    with pytest.raises(GatewayError) as raised:
        manager.principal(secret)
    assert raised.value.status == 503 and raised.value.code == "store_unavailable"
    assert "127.0.0.1" not in raised.value.message and secret not in raised.value.message
    calls = outage.calls
    with pytest.raises(GatewayError):
        manager.principal(secret)
    assert outage.calls == calls  # not tried again by every request
    outage.end()
    manager._loaded -= 121  # 2 x refresh later
    assert manager.principal(secret) is not None
