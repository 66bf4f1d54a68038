"""Virtual keys without a server: budget periods, the manager's clock, the store, rotation of the store secret."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from asgi_llmroute import build_gateway, load_config
from asgi_llmroute.keys.manager import KeyManager, TeamBudget
from asgi_llmroute.keys.model import KeyInvalid, budget_window, parse_expiry
from asgi_llmroute.keys.pricing import ModelPrice, PriceTable
from asgi_llmroute.keys.store import KeyNotFound, KeyStore
from asgi_llmroute.providers.store import ProviderStore
from tests.keys.test_keys_e2e import ADMIN, _config, _reply
from tests.providers.support import SECRET, write_config
from tests.support.servers import Upstream, serve

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
USAGE = {"input_tokens": 1000, "output_tokens": 500}
PRICES = PriceTable({"m": ModelPrice(input=2.0, output=10.0)}, use_catalog=False)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore(ProviderStore(tmp_path / "providers.db", SECRET))


@pytest.mark.parametrize(
    ("period", "today", "start", "reset"),
    [
        ("daily", date(2026, 12, 2), date(2026, 12, 2), date(2026, 12, 3)),
        ("weekly", date(2026, 12, 2), date(2026, 11, 30), date(2026, 12, 7)),  # Monday to Monday
        ("monthly", date(2026, 12, 31), date(2026, 12, 1), date(2027, 1, 1)),
        ("monthly", date(2027, 2, 28), date(2027, 2, 1), date(2027, 3, 1)),
        ("30d", date(2026, 12, 31), date(2026, 12, 31), date(2027, 1, 30)),  # created 2026-12-01
        (None, date(2027, 5, 1), date(2026, 12, 1), None),
    ],
)
def test_budget_windows(period: str | None, today: date, start: date, reset: date | None) -> None:
    assert budget_window(period, date(2026, 12, 1), today) == (start, reset)


def test_expiry_takes_durations_and_times() -> None:
    assert parse_expiry("30d", NOW) == NOW + timedelta(days=30)
    assert parse_expiry("2027-01-01T00:00:00Z", NOW) == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert parse_expiry("permanent", NOW) is None
    with pytest.raises(ValueError, match="duration"):
        parse_expiry("soon", NOW)


def test_a_budget_blocks_until_the_period_rolls(keys: KeyStore) -> None:
    clock = Clock(NOW)
    key, secret = keys.create({"name": "k", "budget": 0.01, "budget_period": "daily"}, NOW)
    manager = KeyManager(keys, PRICES, clock=clock)
    principal = manager.principal(secret)
    assert principal is not None and principal.key_id == key.id
    manager.record(principal, "m", USAGE)
    manager.record(principal, "m", USAGE)
    assert manager.refusal(principal) is None  # not flushed yet: spend lags by one flush
    manager.flush()
    refusal = manager.refusal(principal)
    assert refusal is not None and refusal.status == 400 and "resets on 2026-12-03" in refusal.message
    clock.now = NOW + timedelta(days=1)
    assert manager.refusal(principal) is None  # a new day: a new budget
    assert manager.spent(key, clock.now)[0] == 0.0
    assert abs(manager.spent(key, NOW)[0] - 0.014) < 1e-12


def test_team_budgets_add_up_their_keys(keys: KeyStore) -> None:
    _, first = keys.create({"name": "a", "team": "t"}, NOW)
    _, second = keys.create({"name": "b", "team": "t"}, NOW)
    manager = KeyManager(keys, PRICES, clock=Clock(NOW), teams={"t": TeamBudget(0.01, "monthly")})
    p1, p2 = manager.principal(first), manager.principal(second)
    assert p1 is not None and p2 is not None
    manager.record(p1, "m", USAGE)
    manager.flush()
    assert manager.refusal(p2) is None
    manager.record(p2, "m", USAGE)
    manager.flush()
    refusal = manager.refusal(p1)
    assert refusal is not None and "team 't'" in refusal.message and "2027-01-01" in refusal.message


def test_expired_revoked_and_unknown_secrets_are_not_principals(keys: KeyStore) -> None:
    clock = Clock(NOW)
    _, expiring = keys.create({"name": "e", "expires_at": NOW + timedelta(hours=1)}, NOW)
    key, revoked = keys.create({"name": "r"}, NOW)
    manager = KeyManager(keys, clock=clock)
    assert manager.principal(expiring) is not None
    clock.now = NOW + timedelta(hours=2)
    assert manager.principal(expiring) is None
    keys.revoke(key.id, NOW)
    manager.invalidate()
    assert manager.principal(revoked) is None
    assert manager.principal("sk-llmroute-vk-nothing-like-it") is None
    assert manager.principal("not-a-virtual-key") is None


def test_a_change_by_another_process_is_seen_without_invalidate(keys: KeyStore, tmp_path: Path) -> None:
    manager = KeyManager(keys, clock=Clock(NOW), refresh=0.05)
    _, secret = keys.create({"name": "x"}, NOW)
    assert manager.principal(secret) is not None
    other = KeyStore(ProviderStore(tmp_path / "providers.db", SECRET))
    other.revoke("x", NOW)
    deadline = datetime.now() + timedelta(seconds=5)
    while manager.principal(secret) is not None:
        assert datetime.now() < deadline
        manager.flush()  # what maintenance does after a request; an idle lookup re-reads by itself


def test_updates_and_rotation(keys: KeyStore) -> None:
    key, secret = keys.create({"name": "u", "models": ["gpt-*"]}, NOW)
    updated = keys.update("u", {"models": ["claude*"], "rpm": 5}, NOW)
    assert updated.models == ("claude*",) and updated.rpm == 5
    with pytest.raises(KeyInvalid, match="rpm"):
        keys.update("u", {"rpm": -1}, NOW)
    rotated, new = keys.rotate(key.id, NOW)
    manager = KeyManager(keys)
    assert manager.principal(secret) is None and manager.principal(new) is not None
    assert rotated.prefix != key.prefix
    with pytest.raises(KeyNotFound):
        keys.get("nobody")


def test_rotating_the_store_secret_keeps_every_key(tmp_path: Path) -> None:
    store = ProviderStore(tmp_path / "providers.db", SECRET)
    keys = KeyStore(store)
    _, secret = keys.create({"name": "survivor"}, NOW)
    new_secret = "a-new-store-secret-0123456789abcdefABCDEF"
    store.rotate(new_secret)
    store.close()
    reopened = KeyStore(ProviderStore(tmp_path / "providers.db", new_secret))
    assert KeyManager(reopened).principal(secret) is not None


def test_the_cli_creates_lists_shows_and_revokes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def llmroute(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "asgi_llmroute.cli", "keys", *args, "--config", str(config)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )

    created = llmroute("create", "cli-key", "--budget", "5", "--budget-period", "monthly", "--quiet")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("sk-llmroute-vk-")
    listed = llmroute("list")
    assert "cli-key" in listed.stdout and secret not in listed.stdout and "$0.0000/$5.00 monthly" in listed.stdout
    shown = llmroute("show", "cli-key", "--json")
    assert '"budget": 5.0' in shown.stdout and secret not in shown.stdout
    bad = llmroute("create", "neg", "--budget", "-3")
    assert bad.returncode == 1 and "llmroute: error: budget" in bad.stderr
    assert llmroute("revoke", "cli-key").returncode == 0
    assert "cli-key" not in llmroute("list").stdout
    assert "cli-key" in llmroute("list", "--revoked").stdout
    assert "total $0.000000" in llmroute("spend").stdout


def test_a_keys_rpm_and_models_apply_in_the_gateway(tmp_path: Path) -> None:
    with serve(Upstream(reply=_reply)) as upstream:
        gateway = build_gateway(load_config(_config(tmp_path, upstream)))
        with TestClient(gateway) as client:
            admin = {"authorization": f"Bearer {ADMIN}"}
            created = client.post("/api/keys", json={"name": "lim", "rpm": 2, "models": ["m"]}, headers=admin)
            headers = {"authorization": f"Bearer {created.json()['secret']}"}
            body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
            refused = client.post("/v1/chat/completions", json={**body, "model": "other"}, headers=headers)
            assert refused.status_code == 403
            codes = [client.post("/v1/chat/completions", json=body, headers=headers).status_code for _ in range(3)]
            assert codes == [200, 200, 429]
