"""Bad input to the admin APIs (providers, virtual keys, LiteLLM's key endpoints): each gets its status
and a JSON error in OpenAI's shape, nothing is written, and nothing reaches the log as a traceback."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import ADMIN, ADMIN_AUTH, TOKEN, stack

pytestmark = pytest.mark.anyio

PROVIDER = {"name": "x", "api": "openai", "base_url": "http://h.example/v1"}

BAD: list[tuple[str, str, Any, int, str | None]] = [
    # The providers API.
    ("POST", "/api/providers", b"{not json", 400, "invalid_json"),
    ("POST", "/api/providers", b"\xff\xfe", 400, "invalid_json"),
    ("POST", "/api/providers", [], 422, None),
    ("POST", "/api/providers", {**PROVIDER, "name": "x\r\nInjected: 1"}, 422, "name"),
    ("POST", "/api/providers", {**PROVIDER, "base_url": "file:///etc/passwd"}, 422, "base_url"),
    ("POST", "/api/providers", {**PROVIDER, "headers": {"X-A": "b\r\nc: d"}}, 422, "headers"),
    ("POST", "/api/providers", {**PROVIDER, "timeout": -1}, 422, "timeout"),
    (
        "POST",
        "/api/providers",
        b'{"name": "x", "api": "openai", "base_url": "http://h/v1", "timeout": 1e400}',
        422,
        "timeout",
    ),
    (
        "POST",
        "/api/providers",
        b'{"name": "x", "api": "openai", "base_url": "http://h/v1", "cooldown": NaN}',
        422,
        "cooldown",
    ),
    (
        "POST",
        "/api/providers",
        b'{"name": "x", "api": "openai", "base_url": "http://h/v1", "idle_timeout": -Infinity}',
        422,
        "idle_timeout",
    ),
    ("POST", "/api/providers", {**PROVIDER, "name": "n" * 5000}, 422, "name"),
    ("GET", "/api/providers/%00", None, 404, "provider_not_found"),
    ("PATCH", "/api/providers/nope", {}, 404, "provider_not_found"),
    ("PUT", "/api/providers/x", b"\xff", 405, None),
    ("POST", "/api/providers/import", b"\xff\xfe", 400, "format"),
    # Our keys API.
    ("POST", "/api/keys", b"{not json", 400, "invalid_json"),
    ("POST", "/api/keys", b"\xff", 400, "invalid_json"),
    ("POST", "/api/keys", {"name": 5}, 422, "name"),
    ("POST", "/api/keys", {"name": "k\u0000"}, 422, "name"),
    ("POST", "/api/keys", b'{"name": "k", "budget": 1e400}', 422, "budget"),
    ("POST", "/api/keys", b'{"name": "k", "budget": NaN}', 422, "budget"),
    ("POST", "/api/keys", {"name": "k", "expires_at": "9999-99-99"}, 422, "expires_at"),
    ("POST", "/api/keys", {"name": "k", "budget_period": "99999999999999999999d"}, 422, "budget_period"),
    ("POST", "/api/keys", {"name": "k", "rpm": True}, 422, "rpm"),
    ("POST", "/api/keys", {"name": "k", "tpm": 1.5}, 422, "tpm"),
    ("POST", "/api/keys", {"name": "k", "max_in_flight": "4"}, 422, "max_in_flight"),
    ("GET", "/api/spend?start=notadate", None, 400, "start"),
    # LiteLLM's key endpoints.
    ("POST", "/key/generate", b"\xff", 400, "invalid_json"),
    ("POST", "/key/generate", {"max_budget": "x"}, 422, "budget"),
    ("POST", "/key/generate", {"rpm_limit": False}, 422, "rpm"),
    ("POST", "/key/delete", {"keys": 5}, 400, "keys"),
    ("POST", "/key/delete", {"keys": "sk-one"}, 400, "keys"),
    ("POST", "/key/delete", {"key_aliases": {"a": 1}}, 400, "keys"),
    ("GET", "/key/info?key=%00", None, 404, "key_not_found"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), BAD)
async def test_bad_admin_input_is_a_json_error_and_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    caplog.set_level(logging.DEBUG)
    async with stack(tmp_path) as gw:
        kwargs: dict[str, Any] = (
            {"content": body} if isinstance(body, bytes) else {"json": body} if body is not None else {}
        )
        response = await gw.request(method, path, headers=ADMIN_AUTH, **kwargs)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        error = response.json()["error"]
        assert error["message"] and error["type"] == "invalid_request_error"
        if field is not None:
            assert field in (error["param"], error["code"]), error
        assert (await gw.get("/api/keys", headers=ADMIN_AUTH)).json() == {"keys": []}  # nothing written
        listed = (await gw.get("/api/providers", headers=ADMIN_AUTH)).json()
        assert listed["data"] == []
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records), logged
    assert ADMIN not in caplog.text + response.text and TOKEN not in caplog.text + response.text


async def test_an_infinite_timeout_in_a_config_file_is_refused_too() -> None:
    from asgi_llmroute.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"providers\[0\]\.timeout: Input should be a finite number"):
        parse_config({"providers": [{**PROVIDER, "timeout": float("inf")}]}, source="t")
    with pytest.raises(ConfigError, match=r"routing\.max_wait: Input should be a finite number"):
        parse_config({"routing": {"max_wait": float("inf")}}, source="t")
