"""Virtual keys end to end: ``llmroute serve`` with a store, a fake upstream that reports usage, the SDKs.

Prices are set in config so that every expected spend is exact: model ``m`` costs $2 per million input
tokens and $10 per million output tokens, and every reply uses 1000 input and 500 output tokens:
$0.007 a request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from starlette.types import Send

from tests.support.cli import Served, llmroute_serve
from tests.support.servers import Recorded, Upstream, serve

ADMIN = "sk-admin-keys-test-0123456789abcdef"
SECRET = "store-secret-for-keys-tests-0123456789abcdef"
COST = 1000 * 2.0 / 1e6 + 500 * 10.0 / 1e6  # 0.007


async def _reply(request: Recorded, send: Send) -> None:
    body = request.json()
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    if body.get("stream"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"]}
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": usage})
        for chunk in chunks:
            await send(
                {"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(), "more_body": True}
            )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
        return
    reply = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": usage,
    }
    data = json.dumps(reply).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})


def _config(tmp_path: Path, upstream: str) -> Path:
    (tmp_path / "store-secret").write_text(SECRET + "\n")
    (tmp_path / "store-secret").chmod(0o600)
    path = tmp_path / "llmroute.toml"
    path.write_text(
        f"""
[server]
data_dir = "data"

[admin]
tokens = ["{ADMIN}"]

[store]
secret = "file:store-secret"

[keys]
refresh = 0.2
flush = 0.1

[[teams]]
name = "blue"
budget = 0.02
budget_period = "daily"

[prices.m]
input = 2.0
output = 10.0

[[providers]]
name = "up"
api = "openai"
base_url = "{upstream}/v1"

[[models]]
name = "m"
provider = "up"
model = "m"

[[models]]
name = "other"
provider = "up"
model = "other"
"""
    )
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def gateway(folder: Path) -> Iterator[Served]:
    with serve(Upstream(reply=_reply)) as upstream:
        args = ["--config", str(_config(folder, upstream)), "--workers", "2"]
        with llmroute_serve(args, cwd=folder) as served:
            served.wait_for("Application startup complete", count=2)
            yield served


def _admin(gateway: Served, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN}"}
    return httpx.request(method, f"{gateway.url}{path}", headers=headers, timeout=10, **kwargs)


def _create(gateway: Served, **fields: Any) -> tuple[dict[str, Any], str]:
    response = _admin(gateway, "POST", "/api/keys", json=fields)
    assert response.status_code == 201, response.text
    return response.json()["key"], response.json()["secret"]


def _chat(gateway: Served, secret: str, *, model: str = "m", stream: bool = False) -> Any:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0)
    messages: Any = [{"role": "user", "content": "Hi"}]
    if stream:
        return "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model=model, messages=messages, stream=True)
            if c.choices
        )
    return client.chat.completions.create(model=model, messages=messages).choices[0].message.content


def _wait(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _spend(gateway: Served, key_id: str) -> float:
    return float(_admin(gateway, "GET", f"/api/keys/{key_id}").json()["spend"]["current_period_usd"])


def test_a_created_key_works_with_the_sdks_and_its_spend_is_the_priced_usage(gateway: Served) -> None:
    key, secret = _create(gateway, name="app-one")
    assert secret.startswith("sk-llmroute-vk-")
    assert key["prefix"] == secret[:21] + "..."
    assert _chat(gateway, secret) == "Hi"
    assert _chat(gateway, secret, stream=True) == "Hi"
    messages = anthropic.Anthropic(base_url=gateway.url, api_key=secret, max_retries=0).messages
    reply = messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "Hi"}])
    assert reply.content[0].text == "Hi"  # type: ignore[union-attr]
    _wait(lambda: abs(_spend(gateway, key["id"]) - 3 * COST) < 1e-9, "spend is 3 priced requests")
    rows = _admin(gateway, "GET", "/api/spend", params={"key": key["id"]}).json()
    assert rows["spend"][0]["requests"] == 3 and rows["spend"][0]["input_tokens"] == 3000
    assert abs(rows["total_usd"] - 3 * COST) < 1e-9
    # Each worker exports what it priced itself (docs/observability.md): some scrape shows the key.
    _wait(lambda: 'llmroute_spend_usd_total{key="app-one"' in _admin(gateway, "GET", "/metrics").text, "metric")


def test_the_secret_is_shown_once_and_never_stored(gateway: Served, folder: Path) -> None:
    key, secret = _create(gateway, name="secretive")
    assert _chat(gateway, secret) == "Hi"
    shown = _admin(gateway, "GET", f"/api/keys/{key['id']}").text + _admin(gateway, "GET", "/api/keys").text
    assert secret not in shown and secret[21:] not in shown
    files = list((folder / "data").iterdir())
    assert any(f.name == "providers.db" for f in files)
    for file in files:
        assert secret.encode() not in file.read_bytes() and secret[21:].encode() not in file.read_bytes()
    assert secret not in gateway.output


def test_over_budget_is_refused_before_the_upstream_and_says_when_it_resets(gateway: Served) -> None:
    key, secret = _create(gateway, name="small", budget=0.01, budget_period="daily")
    _chat(gateway, secret)
    _chat(gateway, secret)  # 0.014 > 0.01: allowed (it was under budget when it started)
    _wait(lambda: _spend(gateway, key["id"]) >= 0.01, "spend recorded")
    # Refused on both workers (each re-reads the spend totals after at most 2 x refresh).
    _wait(lambda: all(_refused(gateway, secret) for _ in range(6)), "the key is refused once over budget")
    with pytest.raises(openai.BadRequestError) as raised:
        _chat(gateway, secret)
    error = raised.value.body
    assert isinstance(error, dict) and error["code"] == "budget_exceeded"
    assert "key 'small'" in error["message"] and "resets on" in error["message"]
    with pytest.raises(anthropic.BadRequestError) as raised_anthropic:
        anthropic.Anthropic(base_url=gateway.url, api_key=secret, max_retries=0).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert "Budget exceeded" in str(raised_anthropic.value)


def _refused(gateway: Served, secret: str) -> bool:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {secret}"},
        json={"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
    )
    return response.status_code == 400


def test_a_team_budget_covers_all_its_keys(gateway: Served) -> None:
    _, first = _create(gateway, name="blue-1", team="blue")
    _, second = _create(gateway, name="blue-2", team="blue")
    for _ in range(2):
        _chat(gateway, first)
    _chat(gateway, second)  # 0.021 > 0.02
    _wait(lambda: all(_refused(gateway, k) for k in (first, second) * 3), "team over budget")
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {first}"},
        json={"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert "team 'blue'" in response.json()["error"]["message"]


def test_revoked_keys_stop_on_every_worker_and_rotation_retires_the_old_secret(gateway: Served) -> None:
    key, secret = _create(gateway, name="short-lived")
    assert _chat(gateway, secret) == "Hi"
    assert _admin(gateway, "DELETE", f"/api/keys/{key['id']}").json()["revoked_at"] is not None

    def all_refused() -> bool:
        codes = [
            httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {secret}"}).status_code
            for _ in range(8)
        ]
        return set(codes) == {401}

    _wait(all_refused, "revoked on both workers", timeout=5)
    key, old = _create(gateway, name="rotating")
    rotated = _admin(gateway, "POST", f"/api/keys/{key['id']}/rotate").json()
    new = rotated["secret"]
    assert new != old and rotated["key"]["prefix"] != key["prefix"]
    _wait(lambda: httpx.get(f"{gateway.url}/v1/models", headers={"x-api-key": old}).status_code == 401, "old refused")
    assert _chat(gateway, new) == "Hi"


def test_model_allow_list_limits_and_expiry(gateway: Served) -> None:
    _, secret = _create(gateway, name="only-m", models=["m"], rpm=2)
    with pytest.raises(openai.PermissionDeniedError):
        _chat(gateway, secret, model="other")
    listed = httpx.get(f"{gateway.url}/v1/models", headers={"authorization": f"Bearer {secret}"}).json()
    assert [m["id"] for m in listed["data"]] == ["m"]
    response = _admin(gateway, "POST", "/api/keys", json={"name": "past", "expires_at": "2020-01-01T00:00:00Z"})
    assert response.status_code == 422 and "expires_at" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"name": "neg", "budget": -1}, 422, "budget"),
        ({"name": "nan", "budget": "lots"}, 422, "budget"),
        ({"name": "period", "budget": 1, "budget_period": "fortnightly"}, 422, "budget_period"),
        ({"name": "models", "models": []}, 422, "models"),
        ({"name": "x", "colour": "red"}, 422, "colour"),
        ({"name": "bad\nname"}, 422, "name"),
        ({"name": "rpm", "rpm": 0}, 422, "rpm"),
    ],
)
def test_bad_key_fields_are_refused_naming_the_field(
    gateway: Served, fields: dict[str, Any], status: int, field: str
) -> None:
    response = _admin(gateway, "POST", "/api/keys", json=fields)
    assert response.status_code == status, response.text
    assert field in response.json()["error"]["message"]
    names = [k["name"] for k in _admin(gateway, "GET", "/api/keys").json()["keys"]]
    assert fields["name"] not in names  # nothing half-written


def test_duplicate_names_conflict_and_bodies_must_be_json(gateway: Served) -> None:
    _create(gateway, name="twin")
    assert _admin(gateway, "POST", "/api/keys", json={"name": "twin"}).status_code == 409
    assert _admin(gateway, "POST", "/api/keys", content=b"{not json").status_code == 400
    assert _admin(gateway, "POST", "/api/keys", content=b"[" * 100_000).status_code == 400
    assert httpx.post(f"{gateway.url}/api/keys", json={"name": "anon"}).status_code == 401


def test_litellm_key_endpoints_take_and_give_litellm_shapes(gateway: Served) -> None:
    generated = _admin(
        gateway,
        "POST",
        "/key/generate",
        json={
            "key_alias": "ll-app",
            "models": ["m"],
            "max_budget": 5.0,
            "budget_duration": "30d",
            "duration": "7d",
            "team_id": "green",
            "metadata": {"env": "prod"},
            "tpm_limit": 1000,
            "rpm_limit": 10,
            "max_parallel_requests": 3,
            "user_id": "u1",
        },
    )
    assert generated.status_code == 200, generated.text
    body = generated.json()
    assert body["key"].startswith("sk-llmroute-vk-")
    assert body["key_alias"] == "ll-app" and body["models"] == ["m"] and body["max_budget"] == 5.0
    assert body["budget_duration"] == "30d" and body["team_id"] == "green" and body["metadata"] == {"env": "prod"}
    assert body["tpm_limit"] == 1000 and body["rpm_limit"] == 10 and body["max_parallel_requests"] == 3
    assert body["expires"] is not None and body["token"].startswith("vk_") and body["key_name"].endswith("...")
    assert body["spend"] == 0.0
    secret, token = body["key"], body["token"]
    assert _chat(gateway, secret) == "Hi"

    info = _admin(gateway, "GET", "/key/info", params={"key": secret}).json()
    assert info["key"] == secret and info["info"]["key_alias"] == "ll-app" and "token" in info["info"]
    assert secret not in json.dumps(info["info"])

    updated = _admin(gateway, "POST", "/key/update", json={"key": token, "max_budget": 9.0, "models": []}).json()
    assert updated["max_budget"] == 9.0 and updated["models"] == []

    listed = _admin(gateway, "GET", "/key/list", params={"key_alias": "ll-app"}).json()
    assert listed["keys"] == [token] and listed["total_count"] == 1 and listed["current_page"] == 1
    full = _admin(gateway, "GET", "/key/list", params={"return_full_object": "true", "size": 100}).json()
    assert any(k["key_alias"] == "ll-app" for k in full["keys"])

    _wait(lambda: _admin(gateway, "GET", "/spend/logs", params={"api_key": token}).json() != [], "spend logged")
    logs = _admin(gateway, "GET", "/spend/logs", params={"api_key": token}).json()
    assert logs[0]["api_key"] == token and logs[0]["model"] == "m" and abs(logs[0]["spend"] - COST) < 1e-9

    regenerated = _admin(gateway, "POST", f"/key/{token}/regenerate").json()
    assert regenerated["key"] != secret and regenerated["token"] == token
    deleted = _admin(gateway, "POST", "/key/delete", json={"keys": [token]}).json()
    assert deleted == {"deleted_keys": [token]}
    assert _admin(gateway, "GET", "/key/info", params={"key": "vk_nope"}).status_code == 404
