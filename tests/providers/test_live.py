from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from asgi_llmroute.providers.live import LiveRouteTable, StoreConflictError
from asgi_llmroute.providers.routing import RouteTable
from asgi_llmroute.providers.store import ProviderStore
from asgi_llmroute.providers.types import Provider, Route
from tests.providers.support import KEY_A, KEY_B, SECRET, record

CONFIG_PROVIDER = Provider("config-openai", "openai", "https://api.openai.com/v1")


def _base() -> RouteTable:
    from asgi_llmroute.providers.types import Deployment

    return RouteTable([CONFIG_PROVIDER], [Route("gpt", (Deployment(CONFIG_PROVIDER, "gpt-4o"),))])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProviderStore]:
    store = ProviderStore(tmp_path / "providers.db", SECRET)
    yield store
    store.close()


def test_serves_config_and_store_routes(store: ProviderStore) -> None:
    store.add(record("stored", KEY_A, models={"claude": "claude-x", "shared": "s1"}))
    store.add(record("stored2", KEY_B, models={"shared": "s2"}))
    table = LiveRouteTable(_base(), store, refresh_interval=0)
    assert table.resolve("gpt") is not None and table.resolve("gpt").deployments[0].provider == CONFIG_PROVIDER  # type: ignore[union-attr]
    route = table.resolve("claude")
    assert route is not None
    deployment = route.deployments[0]
    assert deployment.model == "claude-x" and deployment.provider.api_key is not None
    assert deployment.provider.api_key.reveal() == KEY_A
    shared = table.resolve("shared")
    assert shared is not None and [d.provider.name for d in shared.deployments] == ["stored", "stored2"]
    assert table.resolve("stored/any-model") is not None  # provider/model routing covers stored providers
    assert table.resolve("config-openai/x") is not None
    assert table.model_names() == ["gpt", "claude", "shared"]
    assert set(table.routes) == {"gpt", "claude", "shared"}


def test_changes_from_another_connection_apply_on_the_next_request(store: ProviderStore) -> None:
    table = LiveRouteTable(_base(), store, refresh_interval=0)
    assert table.resolve("new") is None
    writer = ProviderStore(store.path, SECRET)
    writer.add(record("p", KEY_A, models={"new": "upstream"}))
    assert table.resolve("new") is not None
    writer.update("p", {"api_key": KEY_B})
    route = table.resolve("new")
    assert route is not None and route.deployments[0].provider.api_key is not None
    assert route.deployments[0].provider.api_key.reveal() == KEY_B
    writer.remove("p")
    assert table.resolve("new") is None
    writer.close()


def test_refresh_interval_bounds_the_checks(store: ProviderStore) -> None:
    now = [100.0]
    table = LiveRouteTable(_base(), store, refresh_interval=1.0, clock=lambda: now[0])
    other = ProviderStore(store.path, SECRET)
    other.add(record("p", KEY_A, models={"new": "upstream"}))
    other.close()
    assert table.resolve("new") is None  # not yet checked
    now[0] += 1.0
    assert table.resolve("new") is not None
    table.invalidate()


def test_a_name_in_both_places_is_an_error_at_start(store: ProviderStore) -> None:
    store.add(record("config-openai", KEY_A))
    with pytest.raises(StoreConflictError, match="'config-openai' is also a provider in the config file"):
        LiveRouteTable(_base(), store)


def test_a_model_in_both_places_is_an_error_at_start(store: ProviderStore) -> None:
    store.add(record("stored", KEY_A, models={"gpt": "other"}))
    with pytest.raises(StoreConflictError, match="serves model.* gpt also defined in the config file"):
        LiveRouteTable(_base(), store)


def test_a_clash_appearing_later_is_logged_and_the_config_wins(
    store: ProviderStore, caplog: pytest.LogCaptureFixture
) -> None:
    table = LiveRouteTable(_base(), store, refresh_interval=0)
    store.add(record("config-openai", KEY_A))
    store.add(record("stored", KEY_A, models={"gpt": "other", "ok": "fine"}))
    with caplog.at_level(logging.ERROR, logger="asgi_llmroute.providers"):
        route = table.resolve("gpt")
        table.resolve("gpt")
    assert route is not None and route.deployments[0].provider == CONFIG_PROVIDER
    assert table.resolve("ok") is not None
    assert table.providers["config-openai"] == CONFIG_PROVIDER
    assert len([r for r in caplog.records if "config-openai" in r.getMessage()]) == 1  # logged once


def test_unreadable_record_is_skipped_logged_once_and_others_serve(
    store: ProviderStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.add(record("good", KEY_A, models={"g": "g"}))
    store.add(record("bad", KEY_B, models={"b": "b"}))
    with sqlite3.connect(store.path, isolation_level=None) as conn:
        conn.execute("UPDATE providers SET api_key = substr(api_key, 1, 30) WHERE name = 'bad'")
    with caplog.at_level(logging.ERROR, logger="asgi_llmroute.providers"):
        table = LiveRouteTable(_base(), store, refresh_interval=0)
        store.add(record("other", KEY_A))  # a later change re-reads the store
        assert table.resolve("g") is not None
    assert table.resolve("b") is None
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "'bad'" in m]) == 1
    assert all(KEY_B not in m and SECRET not in m for m in messages)


def test_unreadable_store_keeps_the_last_good_table(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "providers.db"
    store = ProviderStore(path, SECRET)
    store.add(record("p", KEY_A, models={"m": "m"}))
    table = LiveRouteTable(_base(), store, refresh_interval=0)
    # Another process rotates the secret; ours is not told: the records cannot be read any more.
    other = ProviderStore(path, SECRET)
    other.rotate("a-completely-different-secret-0123456789")
    other.close()
    with caplog.at_level(logging.ERROR, logger="asgi_llmroute.providers"):
        assert table.resolve("m") is not None
        assert table.resolve("m") is not None
    assert len([r for r in caplog.records if "serving the last good providers" in r.getMessage()]) == 1
    store.close()


def test_an_unchanged_record_keeps_its_provider_across_refreshes(store: ProviderStore) -> None:
    """A store change rebuilds only what changed: the others keep their Provider (a token source's cached
    token, a limiter keyed by the provider) instead of starting over on every write."""
    store.add(record("kept", KEY_A, models={"k": "k"}))
    store.add(record("changed", KEY_A, models={"c": "c"}))
    table = LiveRouteTable(_base(), store, refresh_interval=0)
    kept, changed = table.providers["kept"], table.providers["changed"]
    writer = ProviderStore(store.path, SECRET)
    writer.update("changed", {"api_key": KEY_B})
    writer.add(record("added", KEY_B, models={"a": "a"}))
    assert table.resolve("a") is not None  # the refresh happened
    assert table.providers["kept"] is kept
    assert table.providers["changed"] is not changed
    assert table.providers["changed"].api_key is not None and table.providers["changed"].api_key.reveal() == KEY_B
    route = table.resolve("k")
    assert route is not None and route.deployments[0].provider is kept
    writer.close()


def test_a_record_whose_provider_cannot_be_made_is_skipped_and_others_serve(
    store: ProviderStore, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that cannot be made here (an extra the writing process had, say) is logged once and
    left out; the store change is not an error on the request that noticed it."""
    from asgi_llmroute.providers.kinds import KindError
    from asgi_llmroute.providers.records import ProviderRecord

    made = ProviderRecord.provider

    def provider(self: ProviderRecord, drop_params: bool = False) -> Provider:
        if self.name == "broken":
            raise KindError("provider 'broken' needs an extra: pip install 'asgi-llmroute[x]'")
        return made(self, drop_params)

    monkeypatch.setattr(ProviderRecord, "provider", provider)
    table = LiveRouteTable(_base(), store, refresh_interval=0)
    with caplog.at_level(logging.ERROR, logger="asgi_llmroute.providers"):
        store.add(record("broken", KEY_A, models={"b": "b", "shared": "s1"}))
        store.add(record("good", KEY_B, models={"g": "g", "shared": "s2"}))
        assert table.resolve("g") is not None
        assert table.resolve("b") is None and table.resolve("broken/x") is None
        shared = table.resolve("shared")
        assert shared is not None and [d.provider.name for d in shared.deployments] == ["good"]
        store.update("good", {"api_key": KEY_A})
        assert table.resolve("g") is not None
    messages = [r.getMessage() for r in caplog.records if "'broken'" in r.getMessage()]
    assert len(messages) == 1 and "needs an extra" in messages[0]
    assert all(KEY_A not in m for m in messages)
