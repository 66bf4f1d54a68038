"""The virtual-key admin API (ours and LiteLLM's shapes) in-process, on asyncio and on trio: each
bad request gets its status and a JSON error naming the field; keys created here authenticate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.stack import ADMIN_AUTH, BEARER, HI, stack

pytestmark = pytest.mark.anyio


async def _chat(gw: httpx.AsyncClient, secret: str, model: str = "gpt") -> httpx.Response:
    return await gw.post(
        "/v1/chat/completions", json={"model": model, "messages": HI}, headers={"authorization": f"Bearer {secret}"}
    )


async def test_key_lifecycle_create_use_update_rotate_revoke(tmp_path: Path) -> None:
    async with stack(tmp_path) as gw:
        created = await gw.post(
            "/api/keys",
            json={"name": "ci", "team": "eng", "models": ["gpt"], "budget": 5, "expires_at": "30d"},
            headers=ADMIN_AUTH,
        )
        assert created.status_code == 201, created.text
        secret, key = created.json()["secret"], created.json()["key"]
        assert key["name"] == "ci" and "secret" not in key and secret not in created.text.replace(secret, "", 1)
        assert key["spend"]["current_period_usd"] == 0
        assert (await _chat(gw, secret)).status_code == 200
        refused = await _chat(gw, secret, "claude")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"

        shown = await gw.get("/api/keys/ci", headers=ADMIN_AUTH)
        assert shown.status_code == 200 and shown.json()["id"] == key["id"] and "spend" in shown.json()
        listed = await gw.get("/api/keys?team=eng", headers=ADMIN_AUTH)
        assert [k["name"] for k in listed.json()["keys"]] == ["ci"]
        assert (await gw.get("/api/keys?team=other", headers=ADMIN_AUTH)).json() == {"keys": []}

        patched = await gw.patch("/api/keys/ci", json={"models": ["*"], "expires_at": "never"}, headers=ADMIN_AUTH)
        assert patched.status_code == 200 and patched.json()["models"] == ["*"]
        assert patched.json()["expires_at"] is None

        rotated = await gw.post(f"/api/keys/{key['id']}/rotate", headers=ADMIN_AUTH)
        assert rotated.status_code == 200
        new_secret = rotated.json()["secret"]
        assert new_secret != secret
        assert (await _chat(gw, secret)).status_code == 401
        assert (await _chat(gw, new_secret, "claude")).status_code == 200

        spend = await gw.get("/api/spend?team=eng&start=2000-01-01&end=2999-12-31", headers=ADMIN_AUTH)
        assert spend.status_code == 200 and set(spend.json()) == {"spend", "total_usd"}
        assert (await gw.get(f"/api/spend?key={key['id']}", headers=ADMIN_AUTH)).status_code == 200

        revoked = await gw.delete("/api/keys/ci", headers=ADMIN_AUTH)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        assert (await _chat(gw, new_secret)).status_code == 401
        assert (await gw.get("/api/keys", headers=ADMIN_AUTH)).json()["keys"] == []
        assert len((await gw.get("/api/keys?revoked=1", headers=ADMIN_AUTH)).json()["keys"]) == 1


BAD: list[tuple[str, str, Any, int, str | None]] = [
    # method, path, JSON body (or raw bytes), status, error param / code
    ("POST", "/api/keys", b"{nope", 400, "invalid_json"),
    ("POST", "/api/keys", [1, 2], 400, "invalid_json"),
    ("POST", "/api/keys", {"name": "k", "rpm": -1}, 422, "rpm"),
    ("POST", "/api/keys", {"name": "k", "expires_at": "someday"}, 422, "expires_at"),
    ("PUT", "/api/keys", {}, 405, None),
    ("GET", "/api/keys/missing", None, 404, "key_not_found"),
    ("PATCH", "/api/keys/missing", {"rpm": 5}, 404, "key_not_found"),
    ("PUT", "/api/keys/missing", {}, 405, None),
    ("GET", "/api/keys/missing/history", None, 404, "unknown_url"),
    ("GET", "/api/spend?start=yesterday", None, 400, "start"),
    ("GET", "/api/spend?key=missing", None, 404, "key_not_found"),
    ("GET", "/key/info", None, 400, "key"),
    ("GET", "/key/info?key=missing", None, 404, "key_not_found"),
    ("POST", "/key/update", {"rpm_limit": 5}, 400, "key"),
    ("POST", "/key/delete", {"keys": []}, 400, "keys"),
    ("POST", "/key/delete", {"keys": [3]}, 400, "keys"),
    ("POST", "/key/delete", {"key_aliases": ["missing"]}, 404, "key_not_found"),
    ("GET", "/key/list?page=0", None, 400, None),
    ("GET", "/key/list?size=ten", None, 400, None),
    ("POST", "/key/regenerate", {}, 400, "key"),
    ("POST", "/key/generate", {"duration": "soon"}, 422, "duration"),
    ("GET", "/key/generate", None, 404, "unknown_url"),
    ("GET", "/spend/logs?start_date=13/01/2025", None, 400, "start_date"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), BAD)
async def test_bad_admin_requests(
    tmp_path: Path, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    async with stack(tmp_path) as gw:
        kwargs: dict[str, Any] = (
            {"content": body} if isinstance(body, bytes) else {"json": body} if body is not None else {}
        )
        response = await gw.request(method, path, headers=ADMIN_AUTH, **kwargs)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["message"]
        if field is not None:
            assert field in (error["param"], error["code"])


async def test_only_admin_tokens_may_manage_keys(tmp_path: Path) -> None:
    async with stack(tmp_path) as gw:
        for headers in ({}, BEARER, {"authorization": "Bearer sk-not-an-admin-token-000000"}):
            response = await gw.post("/api/keys", json={"name": "x"}, headers=headers)
            assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
        assert (await gw.get("/api/keys", headers=ADMIN_AUTH)).json() == {"keys": []}


async def test_a_duplicate_name_is_a_conflict(tmp_path: Path) -> None:
    async with stack(tmp_path) as gw:
        assert (await gw.post("/api/keys", json={"name": "dup"}, headers=ADMIN_AUTH)).status_code == 201
        again = await gw.post("/api/keys", json={"name": "dup"}, headers=ADMIN_AUTH)
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


async def test_litellm_key_api(tmp_path: Path) -> None:
    async with stack(tmp_path) as gw:
        generated = await gw.post(
            "/key/generate",
            json={"key_alias": "tool", "models": [], "budget_duration": "1d", "max_budget": 3, "duration": "7d"},
            headers=ADMIN_AUTH,
        )
        assert generated.status_code == 200, generated.text
        body = generated.json()
        secret = body["key"]
        assert body["key_alias"] == "tool" and body["models"] == [] and body["budget_duration"] == "daily"
        assert body["expires"] is not None and body["blocked"] is False
        assert (await _chat(gw, secret, "claude")).status_code == 200  # [] allows every model

        info = await gw.get(f"/key/info?key={secret}", headers=ADMIN_AUTH)
        assert info.status_code == 200 and info.json()["info"]["token"] == body["token"]
        updated = await gw.post("/key/update", json={"key": secret, "rpm_limit": 7}, headers=ADMIN_AUTH)
        assert updated.status_code == 200 and updated.json()["rpm_limit"] == 7

        unnamed = await gw.post("/key/generate", json={"team_id": "t1"}, headers=ADMIN_AUTH)
        assert unnamed.json()["key_alias"].startswith("key-")
        listing = await gw.get("/key/list?size=1&page=2&return_full_object=true", headers=ADMIN_AUTH)
        assert listing.json()["total_count"] == 2 and listing.json()["total_pages"] == 2
        assert listing.json()["keys"][0]["token"]
        by_alias = await gw.get("/key/list?key_alias=tool", headers=ADMIN_AUTH)
        assert by_alias.json()["keys"] == [body["token"]]

        regenerated = await gw.post(f"/key/{body['token']}/regenerate", headers=ADMIN_AUTH)
        assert regenerated.status_code == 200 and regenerated.json()["key"] != secret
        again = await gw.post("/key/regenerate", json={"key": "tool"}, headers=ADMIN_AUTH)
        newest = again.json()["key"]
        assert (await _chat(gw, newest)).status_code == 200

        logs = await gw.get(f"/spend/logs?api_key={newest}&start_date=2000-01-01", headers=ADMIN_AUTH)
        assert logs.status_code == 200 and isinstance(logs.json(), list)

        deleted = await gw.post("/key/delete", json={"key_aliases": ["tool"]}, headers=ADMIN_AUTH)
        assert deleted.json() == {"deleted_keys": ["tool"]}
        assert (await _chat(gw, newest)).status_code == 401
