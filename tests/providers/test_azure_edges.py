"""Azure OpenAI at its edges: settings mistakes are start-up errors naming the option, and the Entra
ID token endpoint's failures are AuthErrors that say what happened and never echo a secret."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from asgi_llmroute import ConfigError, parse_config
from asgi_llmroute.assemble import provider_records
from asgi_llmroute.providers.auth import AuthError
from asgi_llmroute.providers.azure import EntraTokenSource
from asgi_llmroute.secret import Secret
from tests.support.cli import free_port
from tests.support.raw import Conn, raw_server

SECRET = "entra-client-SECRET-0123456789"


def records(**options: Any) -> Any:
    provider = {"name": "az", "kind": "azure", "base_url": "https://r.openai.azure.com", "api_key": "k", **options}
    config = parse_config(
        {"tokens": [{"name": "t", "key": "sk-router-azure-0123456789abcdef"}], "providers": [provider]},
        source="t.toml",
    )
    return provider_records(config)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api_version": "2024 10"}, "is not an Azure API version"),
        ({"auth": "cookie"}, "auth: must be one of"),
        ({"auth": "entra", "tenant_id": "t"}, "needs client_id"),
        ({"tenant_id": "bad tenant!", "client_id": "c"}, "tenant_id: must be a tenant id"),
        ({"authority_host": "login.example"}, "authority_host: must be an http"),
    ],
)
def test_settings_mistakes_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        records(**options)


def test_bearer_auth_sends_the_key_as_a_bearer_token() -> None:
    (record,) = records(auth="bearer")
    assert record.kind.credentials(record) == [("authorization", "Bearer k")]


def answer(status: int, body: bytes) -> Any:
    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send(
            b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status, len(body), body)
        )

    return handler


def source(url: str) -> EntraTokenSource:
    return EntraTokenSource("tenant", "client", Secret(SECRET), authority_host=url, timeout=5)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, b'{"error": "invalid_client", "error_description": "AADSTS7000215"}', r"answered 400 \(invalid_client\)"),
        (500, b"<html>", "answered 500"),
        (200, b"[1]", "answered 200"),
        (200, b'{"token_type": "Bearer"}', "returned no access_token"),
    ],
)
async def test_token_endpoint_failures(status: int, body: bytes, message: str) -> None:
    with raw_server(answer(status, body)) as server, pytest.raises(AuthError, match=message) as info:
        await source(server.url).fetch()
    assert SECRET not in str(info.value)


@pytest.mark.anyio
async def test_an_unreachable_token_endpoint() -> None:
    entra = source(f"http://127.0.0.1:{free_port()}")
    assert repr(entra).startswith("EntraTokenSource('http://127.0.0.1:")
    with anyio.fail_after(10), pytest.raises(AuthError, match="could not be reached"):
        await entra.fetch()


@pytest.mark.anyio
async def test_a_token_with_an_unreadable_lifetime_lasts_an_hour() -> None:
    with raw_server(answer(200, b'{"access_token": "tok", "expires_in": "soon"}')) as server:
        token, seconds = await source(server.url).fetch()
    assert (token, seconds) == ("tok", 3600.0)
    request = server.requests[0]
    assert request.startswith(b"POST /tenant/oauth2/v2.0/token ")
    assert b"grant_type=client_credentials" in request and b"client_id=client" in request
