"""The admin API and the store-backed gateway, through real servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgi_llmroute import build_gateway
from asgi_llmroute.config import ConfigError, GatewayConfig
from asgi_llmroute.providers.store import ProviderStore
from tests.providers.support import ADMIN_TOKEN, KEY_A, KEY_B, ROUTER_TOKEN, SECRET, record, store_config
from tests.support.servers import Upstream, serve

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ROUTER = {"Authorization": f"Bearer {ROUTER_TOKEN}"}


class Client:
    """An httpx client that keeps every response body, to check that no key is ever in one."""

    def __init__(self, url: str) -> None:
        self._client = httpx.Client(base_url=url, timeout=10)
        self.bodies: list[str] = []

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._client.request(method, path, **kwargs)
        self.bodies.append(response.text)
        return response

    def close(self) -> None:
        self._client.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    upstream = Upstream()
    with serve(upstream) as url:
        yield upstream, url


@pytest.fixture
def config(tmp_path: Path, upstream: tuple[Upstream, str]) -> GatewayConfig:
    upstream[0].requests.clear()
    return store_config(
        tmp_path,
        providers=[
            {"name": "config-openai", "api": "openai", "base_url": f"{upstream[1]}/v1", "api_key": "sk-cfg-0123456789"}
        ],
        models=[{"name": "gpt-config", "provider": "config-openai", "model": "gpt-4o"}],
    )


@pytest.fixture
def client(config: GatewayConfig) -> Iterator[Client]:
    with serve(build_gateway(config)) as url:
        client = Client(url)
        yield client
        client.close()
        for body in client.bodies:
            assert KEY_A not in body and KEY_B not in body and SECRET not in body


def _provider(upstream_url: str, key: str = KEY_A, **extra: Any) -> dict[str, Any]:
    return {"name": "stored", "api": "openai", "base_url": f"{upstream_url}/v1", "api_key": key, **extra}


def _chat(client: Client, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return client.request("POST", "/v1/chat/completions", headers=ROUTER, json=body)


ROUTES = [
    ("GET", "/api/providers"),
    ("POST", "/api/providers"),
    ("POST", "/api/providers/import?format=json"),
    ("GET", "/api/providers/stored"),
    ("PATCH", "/api/providers/stored"),
    ("DELETE", "/api/providers/stored"),
]


def test_router_tokens_are_not_admin_tokens(client: Client) -> None:
    for method, path in ROUTES:
        for headers in ({}, ROUTER, {"x-api-key": ROUTER_TOKEN}, {"Authorization": "Bearer nope"}):
            response = client.request(method, path, headers=headers, content=b"{}")
            assert response.status_code == 401, (method, path, headers)
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
            assert response.headers["www-authenticate"] == "Bearer"
    assert client.request("GET", "/api/providers", headers=ADMIN).status_code == 200
    assert client.request("GET", "/api/providers", headers={"x-api-key": ADMIN_TOKEN}).status_code == 200
    # ... and the admin token is not a router token.
    response = client.request("POST", "/v1/chat/completions", headers=ADMIN, json={"model": "gpt-config"})
    assert response.status_code == 401


def test_add_show_update_remove_take_effect_on_the_next_request(client: Client, upstream: tuple[Upstream, str]) -> None:
    recorder, url = upstream
    assert _chat(client, "gpt-stored").status_code == 404

    response = client.request(
        "POST", "/api/providers", headers=ADMIN, json=_provider(url, models={"gpt-stored": "up-1"})
    )
    assert response.status_code == 201
    assert response.json()["api_key"] == "sk-...6789"
    assert _chat(client, "gpt-stored").status_code == 200
    assert recorder.last.headers["authorization"] == f"Bearer {KEY_A}"
    assert recorder.last.json()["model"] == "up-1"

    listed = client.request("GET", "/api/providers", headers=ADMIN).json()
    assert [p["name"] for p in listed["data"]] == ["stored"] and listed["data"][0]["api_key"] == "sk-...6789"
    shown = client.request("GET", "/api/providers/stored", headers=ADMIN).json()
    assert shown["models"] == {"gpt-stored": "up-1"} and shown["api_key"] == "sk-...6789"

    models = client.request("GET", "/v1/models", headers=ROUTER).json()
    assert {m["id"]: m["owned_by"] for m in models["data"]} == {"gpt-config": "config-openai", "gpt-stored": "stored"}

    patched = client.request("PATCH", "/api/providers/stored", headers=ADMIN, json={"api_key": KEY_B + "x"})
    assert patched.status_code == 200 and patched.json()["api_key"] == "sk-...789x"
    assert _chat(client, "gpt-stored").status_code == 200
    assert recorder.last.headers["authorization"] == f"Bearer {KEY_B}x"

    assert client.request("DELETE", "/api/providers/stored", headers=ADMIN).json() == {
        "name": "stored",
        "deleted": True,
    }
    assert _chat(client, "gpt-stored").status_code == 404
    assert client.request("GET", "/api/providers/stored", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/api/providers/missing", None, 404, "provider_not_found"),
        ("DELETE", "/api/providers/missing", None, 404, "provider_not_found"),
        ("PATCH", "/api/providers/missing", {"timeout": 3}, 404, "provider_not_found"),
        ("POST", "/api/providers", b"{not json", 400, "invalid_json"),
        (
            "POST",
            "/api/providers",
            {"name": "x", "api": "openai", "base_url": "https://x/v1", "colour": 1},
            422,
            "invalid_provider",
        ),
        (
            "POST",
            "/api/providers",
            {"name": "x", "api": "cohere", "base_url": "https://x.example/v1"},
            422,
            "invalid_provider",
        ),
        (
            "POST",
            "/api/providers",
            {"name": "config-openai", "api": "openai", "base_url": "https://x.example/v1"},
            409,
            "conflict",
        ),
        (
            "POST",
            "/api/providers",
            {"name": "x", "api": "openai", "base_url": "https://x.example/v1", "models": ["gpt-config"]},
            409,
            "conflict",
        ),
        (
            "POST",
            "/api/providers",
            {"name": "x", "api": "openai", "base_url": "https://x.example/v1", "api_key": "env:HOME"},
            422,
            None,
        ),
        ("POST", "/api/providers", [], 422, None),
        ("PUT", "/api/providers", None, 405, None),
        ("POST", "/api/providers/stored", None, 405, None),
        ("GET", "/api/providers/a/b", None, 404, "unknown_url"),
    ],
)
def test_errors(client: Client, method: str, path: str, body: Any, status: int, code: str | None) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    response = client.request(method, path, headers=ADMIN, content=content)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    assert "Traceback" not in response.text


def test_conflicts_and_invalid_updates(client: Client, upstream: tuple[Upstream, str]) -> None:
    assert client.request("POST", "/api/providers", headers=ADMIN, json=_provider(upstream[1])).status_code == 201
    duplicate = client.request("POST", "/api/providers", headers=ADMIN, json=_provider(upstream[1], KEY_B))
    assert duplicate.status_code == 409 and "'stored' is already in the store" in duplicate.json()["error"]["message"]
    bad = client.request("PATCH", "/api/providers/stored", headers=ADMIN, json={"base_url": "nope"})
    assert bad.status_code == 422 and "base_url" in bad.json()["error"]["message"]
    rename = client.request("PATCH", "/api/providers/stored", headers=ADMIN, json={"name": "other"})
    assert rename.status_code == 422
    assert client.request("GET", "/api/providers/stored", headers=ADMIN).json()["api_key"] == "sk-...6789"


def test_import_dry_run_then_for_real(client: Client, upstream: tuple[Upstream, str]) -> None:
    good = [_provider(upstream[1], models=["m1"]), {**_provider(upstream[1], KEY_B), "name": "second"}]
    bad = [
        *good,
        {"name": "broken", "api": "openai"},
        {"name": "typo", "api": "openai", "base_url": "https://x/v1", "x": 1},
    ]

    dry = client.request("POST", "/api/providers/import?format=json&dry_run=1", headers=ADMIN, json=good)
    assert dry.status_code == 200
    assert dry.json()["applied"] is False and [p["name"] for p in dry.json()["add"]] == ["stored", "second"]
    assert client.request("GET", "/api/providers", headers=ADMIN).json()["data"] == []

    failed = client.request("POST", "/api/providers/import", headers=ADMIN, json=bad)  # format from content-type
    assert failed.status_code == 422
    message = failed.json()["error"]["message"]
    assert "providers[2] 'broken'" in message and "providers[3] 'typo'" in message and "x: unknown field" in message
    assert client.request("GET", "/api/providers", headers=ADMIN).json()["data"] == []

    partial = client.request("POST", "/api/providers/import?skip_invalid=true", headers=ADMIN, json=bad)
    assert partial.status_code == 200 and partial.json()["applied"] is True and len(partial.json()["errors"]) == 2
    assert _chat(client, "m1").status_code == 200

    again = client.request("POST", "/api/providers/import?format=json", headers=ADMIN, json=good)
    assert again.json()["unchanged"] == ["stored", "second"]


def test_import_over_the_api_does_not_read_the_servers_environment(client: Client) -> None:
    text = "model_list:\n  - model_name: x\n    litellm_params: {model: openai/gpt-4o, api_key: os.environ/HOME}\n"
    response = client.request(
        "POST", "/api/providers/import", headers={**ADMIN, "content-type": "application/yaml"}, content=text
    )
    assert response.status_code == 422 and "not resolved" in response.json()["error"]["message"]
    response = client.request("POST", "/api/providers/import", headers=ADMIN, content=b"x")
    assert response.status_code == 400 and response.json()["error"]["param"] == "format"
    response = client.request("POST", "/api/providers/import?format=env", headers=ADMIN, content=b"not a line")
    assert response.status_code == 422 and "line 1" in response.json()["error"]["message"]


def test_unreadable_record_is_skipped_while_the_others_serve(
    config: GatewayConfig, upstream: tuple[Upstream, str]
) -> None:
    path = config.store_path()
    assert path is not None
    store = ProviderStore(path, SECRET)
    store.add(record("good", KEY_A, base_url=f"{upstream[1]}/v1", models={"g": "g"}))
    store.add(record("bad", KEY_B, base_url=f"{upstream[1]}/v1", models={"b": "b"}))
    store.close()
    import sqlite3

    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("UPDATE providers SET api_key = substr(api_key, 1, 20) WHERE name = 'bad'")
    with serve(build_gateway(config)) as url:
        client = Client(url)
        assert _chat(client, "g").status_code == 200
        assert _chat(client, "b").status_code == 404
        listed = client.request("GET", "/api/providers", headers=ADMIN).json()
        assert [p["name"] for p in listed["data"]] == ["good"]
        assert listed["unreadable"] == [{"name": "bad", "error": "the encrypted key is truncated"}]
        shown = client.request("GET", "/api/providers/bad", headers=ADMIN)
        assert shown.status_code == 422 and shown.json()["error"]["code"] == "provider_unreadable"
        fixed = client.request("PATCH", "/api/providers/bad", headers=ADMIN, json={"api_key": KEY_B})
        assert fixed.status_code == 200
        assert _chat(client, "b").status_code == 200
        client.close()


def test_a_name_in_the_config_and_the_store_fails_at_start(config: GatewayConfig) -> None:
    path = config.store_path()
    assert path is not None
    store = ProviderStore(path, SECRET)
    store.add(record("config-openai", KEY_A))
    store.close()
    with pytest.raises(ConfigError, match="'config-openai' is also a provider in the config file"):
        build_gateway(config)


def test_wrong_secret_fails_at_start(tmp_path: Path) -> None:
    config = store_config(tmp_path)
    store = ProviderStore(config.store_path() or "", "a-different-secret-0123456789abcdef")
    store.add(record("x", KEY_A))
    store.close()
    with pytest.raises(ConfigError, match="does not match this store"):
        build_gateway(config)


def test_no_store_no_files_and_the_admin_api_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = store_config(tmp_path).model_copy(update={"store": None})
    with serve(build_gateway(config)) as url:
        client = Client(url)
        response = client.request("GET", "/api/providers", headers=ADMIN)
        assert response.status_code == 404 and response.json()["error"]["code"] == "no_store"
        client.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store-secret"]


def test_admin_api_disabled_without_admin_tokens(tmp_path: Path) -> None:
    config = store_config(tmp_path, admin={"tokens": []})
    with serve(build_gateway(config)) as url:
        client = Client(url)
        response = client.request("GET", "/api/providers", headers=ROUTER)
        assert response.status_code == 401 and "no admin tokens" in response.json()["error"]["message"]
        client.close()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"base_url": "https://api.example.com/v1\r\nx-injected: 1"}, "base_url"),
        ({"base_url": "https://api.example.com/v1\n"}, "base_url"),
        ({"base_url": "https://user:pass@api.example.com/v1"}, "base_url"),
        ({"base_url": "https://api.example.com/v1?x=1"}, "base_url"),
        ({"base_url": "https://api.example.com:99999/v1"}, "base_url"),
        ({"base_url": "https:///v1"}, "base_url"),
        ({"base_url": "https://api.exa mple.com/v1"}, "base_url"),
        ({"headers": {"x-team": "a\r\nx-injected: 1"}}, "headers"),
        ({"headers": {"x-team\n": "a"}}, "headers"),
        ({"headers": {"x-team": "a\x85b"}}, "headers"),
        ({"api_key": "sk-abc\r\ndef"}, "api_key"),
        ({"models": {"m\r\n": "gpt-4o"}}, "models"),
        ({"models": {"m": "gpt-4o\x00"}}, "models"),
    ],
)
def test_header_and_url_bound_fields_are_validated_on_every_write(
    client: Client, upstream: tuple[Upstream, str], changes: dict[str, Any], field: str
) -> None:
    body = {**_provider(upstream[1]), **changes}
    created = client.request("POST", "/api/providers", headers=ADMIN, json=body)
    assert created.status_code == 422, created.text
    error = created.json()["error"]
    assert error["param"] == field and field in error["message"]
    # The same through an update of a good record, and through an import.
    assert client.request("POST", "/api/providers", headers=ADMIN, json=_provider(upstream[1])).status_code == 201
    patched = client.request("PATCH", "/api/providers/stored", headers=ADMIN, json=changes)
    assert patched.status_code == 422, patched.text
    assert field in patched.json()["error"]["message"] and patched.json()["error"]["param"] == field
    imported = client.request("POST", "/api/providers/import?format=json", headers=ADMIN, json=[body])
    assert imported.status_code == 422 and field in imported.json()["error"]["message"]
    assert _chat(client, "m1").status_code in (200, 404)  # the stored record still serves (or has no such model)
    assert client.request("GET", "/api/providers/stored", headers=ADMIN).json()["base_url"] == f"{upstream[1]}/v1"


@pytest.mark.parametrize("reference", ["env:HOME", "file:/etc/hostname", "os.environ/HOME"])
def test_references_are_refused_on_every_admin_write_path(
    client: Client, upstream: tuple[Upstream, str], reference: str
) -> None:
    body = {**_provider(upstream[1]), "api_key": reference}
    assert client.request("POST", "/api/providers", headers=ADMIN, json=body).status_code == 422
    imported = client.request("POST", "/api/providers/import?format=json", headers=ADMIN, json=[body])
    assert imported.status_code == 422 and "not resolved" in imported.json()["error"]["message"]
    toml = f'[[providers]]\nname = "stored"\napi = "openai"\nbase_url = "{upstream[1]}/v1"\napi_key = "{reference}"\n'
    imported = client.request("POST", "/api/providers/import?format=toml", headers=ADMIN, content=toml)
    assert imported.status_code == 422 and "not resolved" in imported.json()["error"]["message"]
    litellm = (
        "model_list:\n  - model_name: x\n"
        f"    litellm_params: {{model: openai/gpt-4o, api_base: '{upstream[1]}/v1', api_key: '{reference}'}}\n"
    )
    imported = client.request(
        "POST", "/api/providers/import", headers={**ADMIN, "content-type": "application/yaml"}, content=litellm
    )
    assert imported.status_code == 422 and "not resolved" in imported.json()["error"]["message"]
    env = f"OPENAI_API_KEY={reference}\nOPENAI_BASE_URL={upstream[1]}/v1\n"
    imported = client.request("POST", "/api/providers/import?format=env", headers=ADMIN, content=env)
    assert imported.status_code == 422 and "not resolved" in imported.json()["error"]["message"]
    assert client.request("GET", "/api/providers", headers=ADMIN).json()["data"] == []
