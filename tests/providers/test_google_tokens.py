"""Vertex AI access tokens under load, against a local OAuth2 token endpoint that verifies the signed JWT
and takes its time: the exchange never runs on the event loop, one exchange serves every request that
waits for it (a failed one too), and past the refresh point requests get the current token at once while
one refresh runs in the background, on asyncio and on trio."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from asgi_llmroute.providers.auth import AuthError
from asgi_llmroute.providers.google import GoogleTokenSource
from asgi_llmroute.secret import Secret
from tests.support.google_servers import TokenEndpoint, service_account
from tests.support.servers import serve

DELAY = 0.4


@pytest.fixture(scope="module")
def endpoint() -> Iterator[tuple[TokenEndpoint, dict[str, Any]]]:
    tokens = TokenEndpoint(delay=DELAY)
    with serve(tokens) as url:
        info, public_key = service_account(f"{url}/token")
        tokens.public_key, tokens.client_email = public_key, info["client_email"]
        yield tokens, info


def source_for(info: dict[str, Any]) -> GoogleTokenSource:
    source = GoogleTokenSource.for_key(Secret(json.dumps(info)))
    assert isinstance(source, GoogleTokenSource)
    return source


async def gather(source: GoogleTokenSource, n: int) -> list[str]:
    results: list[str] = []

    async def one() -> None:
        results.append(await source.token())

    async with anyio.create_task_group() as group:
        for _ in range(n):
            group.start_soon(one)
    return results


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_one_exchange_off_the_loop_then_refresh_ahead(endpoint: tuple[TokenEndpoint, Any], backend: str) -> None:
    tokens, info = endpoint
    source = source_for(info)
    before = len(tokens.issued)

    async def run() -> None:
        ticks = 0
        done = anyio.Event()

        async def ticker() -> None:  # the loop keeps running while the exchange takes DELAY seconds
            nonlocal ticks
            while not done.is_set():
                await anyio.sleep(0.01)
                ticks += 1

        async with anyio.create_task_group() as group:
            group.start_soon(ticker)
            first = await gather(source, 10)
            done.set()
        assert len(set(first)) == 1 and len(tokens.issued) == before + 1  # one exchange for ten requests
        assert ticks >= DELAY / 0.01 / 2
        source._refresh_at = 0.0  # the refresh point (five minutes before expiry) has passed
        again = await gather(source, 10)
        assert again == first  # the current token, still valid: nobody waited for the refresh's new one
        with anyio.fail_after(10):
            while len(tokens.issued) < before + 2:
                await anyio.sleep(0.02)
        await anyio.sleep(DELAY)
        assert len(tokens.issued) == before + 2  # one background refresh for the ten
        assert await source.token() == tokens.issued[-1]

    anyio.run(run, backend=backend)


def test_a_failed_exchange_is_shared_by_the_requests_that_waited(endpoint: tuple[TokenEndpoint, Any]) -> None:
    tokens, info = endpoint
    other, _ = service_account(info["token_uri"])  # signed with a key the endpoint does not know
    source = source_for({**other, "client_email": info["client_email"]})
    rejected = len(tokens.rejected)

    async def run() -> list[BaseException]:
        errors: list[BaseException] = []

        async def one() -> None:
            try:
                await source.token()
            except AuthError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one)
        return errors

    errors = anyio.run(run)
    assert len(errors) == 8 and len(tokens.rejected) == rejected + 1  # not eight exchanges in a row
    assert all("could not be refreshed" in str(e) for e in errors)
    with pytest.raises(AuthError):  # a later request tries again
        anyio.run(source.token)
    assert len(tokens.rejected) == rejected + 2


def test_invalidate_forgets_the_token(endpoint: tuple[TokenEndpoint, Any]) -> None:
    tokens, info = endpoint
    source = source_for(info)

    async def run() -> None:
        first = await source.token()
        source.invalidate()  # the upstream rejected it: not reused while a refresh runs
        second = await source.token()
        assert second != first and second == tokens.issued[-1]

    anyio.run(run)


def test_a_rejected_token_is_not_used_again(endpoint: tuple[TokenEndpoint, Any]) -> None:
    import openai

    from asgi_llmroute.providers import get_kind, make_provider
    from tests.providers.test_google import ROUTER_TOKEN, stack
    from tests.support.google_servers import GoogleUpstream

    tokens, info = endpoint
    upstream = GoogleUpstream(vertex=True, tokens=tokens)
    with serve(upstream) as vertex_url:
        provider = make_provider(
            "vtx",
            get_kind("vertex_ai"),
            base_url=vertex_url,
            api_key=Secret(json.dumps(info)),
            options=(("location", "us-central1"), ("project", "fixture-project")),
        )
        with (
            serve(stack(provider)) as gateway,
            openai.OpenAI(base_url=f"{gateway}/v1", api_key=ROUTER_TOKEN, max_retries=0) as client,
        ):

            def ask() -> str | None:
                done = client.chat.completions.create(
                    model="vtx/gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
                )
                return done.choices[0].message.content

            assert ask() == "echo: hi"
            revoked = upstream.requests[-1].headers["authorization"].removeprefix("Bearer ")
            tokens.issued.remove(revoked)  # revoked at Google: Vertex answers 401 to it from now on
            with pytest.raises(openai.APIStatusError) as info_401:
                ask()
            assert info_401.value.status_code == 401
            assert ask() == "echo: hi"  # the next request fetched a new token
            assert upstream.requests[-1].headers["authorization"] != f"Bearer {revoked}"


async def _metadata_server(scope: Any, receive: Any, send: Any) -> None:
    """Google Cloud's metadata server as google-auth's ADC reads it (every request says Metadata-Flavor)."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    flavor = dict(scope["headers"]).get(b"metadata-flavor") == b"Google"
    status, body = 200, b""
    if not flavor:
        status, body = 403, b"Missing Metadata-Flavor:Google header."
    elif path.endswith("/project/project-id"):
        body = b"fixture-project"
    elif path.endswith("/service-accounts/default/"):
        info = {"email": "gce@fixture-project.iam.gserviceaccount.com", "scopes": [], "aliases": ["default"]}
        body = json.dumps(info).encode()
    elif path.endswith("/service-accounts/default/token"):
        scopes = scope["query_string"].decode()
        assert "cloud-platform" in scopes
        body = json.dumps({"access_token": "ya29.metadata-1", "expires_in": 3599, "token_type": "Bearer"}).encode()
    elif path not in ("", "/"):
        status, body = 404, b"not found"
    headers = [(b"metadata-flavor", b"Google"), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_application_default_credentials_from_the_metadata_server(tmp_path: Any) -> None:
    """No key: google-auth's ADC finds the metadata server (here a local one) and its tokens are used."""
    import os
    import subprocess
    import sys

    code = (
        "import anyio; from asgi_llmroute.providers.google import GoogleTokenSource; "
        "print(anyio.run(GoogleTokenSource.for_key(None).token))"
    )
    with serve(_metadata_server) as url:
        env = {k: v for k, v in os.environ.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
        host = url.removeprefix("http://")
        env.update(GCE_METADATA_HOST=host, GCE_METADATA_IP=host, CLOUDSDK_CONFIG=str(tmp_path), HOME=str(tmp_path))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ya29.metadata-1", out.stderr[-2000:]


def test_application_default_credentials_are_looked_up_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Making a provider with no key does not run google-auth's ADC lookup (which may probe the metadata
    server over the network): the first token fetch does, in its worker thread; none found is an AuthError
    that names no secret, and the lookup is tried again at the next fetch."""
    import threading

    import google.auth
    import google.auth.exceptions

    calls: list[str] = []

    def default(scopes: Any = None, **kwargs: Any) -> Any:
        calls.append(threading.current_thread().name)
        raise google.auth.exceptions.DefaultCredentialsError("no ADC here")

    monkeypatch.setattr(google.auth, "default", default)
    source = GoogleTokenSource.for_key(None, "vertex")
    assert calls == []

    async def fetch() -> str:
        return await source.token()

    for _ in range(2):
        with pytest.raises(AuthError, match="no key and no Application Default Credentials"):
            anyio.run(fetch)
    assert len(calls) == 2 and threading.main_thread().name not in calls
