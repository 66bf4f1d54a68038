"""Vertex AI in express mode (``kind = "vertex_ai"``, ``auth = "api-key"``): an API key instead of OAuth2,
URLs without project or location on ``aiplatform.googleapis.com``, against a local Vertex-shaped server
that accepts the key only in ``x-goog-api-key`` on the express paths; driven by the openai, anthropic and
google-genai SDKs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from asgi_llmroute.providers import get_kind, make_provider
from asgi_llmroute.providers.kinds import KindError, check_options
from asgi_llmroute.secret import Secret
from tests.providers.test_google import ROUTER_TOKEN, stack
from tests.support.google_servers import GoogleUpstream
from tests.support.servers import serve

EXPRESS_KEY = "AIza-express-SECRET-0123456789"


@pytest.fixture(scope="module")
def vertex() -> Iterator[tuple[GoogleUpstream, str]]:
    upstream = GoogleUpstream(vertex=True, express_key=EXPRESS_KEY)
    with serve(upstream) as url:
        yield upstream, url


def express(name: str, url: str, key: str = EXPRESS_KEY, **options: str) -> Any:
    return make_provider(
        name,
        get_kind("vertex_ai"),
        base_url=url,
        api_key=Secret(key),
        options=tuple(sorted({"auth": "api-key", **options}.items())),
    )


@pytest.fixture(scope="module")
def gateway(vertex: tuple[GoogleUpstream, str]) -> Iterator[str]:
    _, url = vertex
    providers = [express("vx", url), express("vx-beta", url, api_version="v1beta1"), express("vx-bad", url, "nope")]
    with serve(stack(*providers)) as gateway_url:
        yield gateway_url


def test_openai_and_anthropic_clients_on_express_mode(gateway: str, vertex: tuple[GoogleUpstream, str]) -> None:
    upstream, _ = vertex
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=ROUTER_TOKEN, max_retries=0) as client:
        done = client.chat.completions.create(model="vx/gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}])
        assert done.choices[0].message.content == "echo: hi"
        sent = upstream.requests[-1]
        assert sent.path == "/v1/publishers/google/models/gemini-2.5-flash:generateContent"
        assert sent.headers["x-goog-api-key"] == EXPRESS_KEY and "authorization" not in sent.headers
        assert sent.query == ""  # never ?key=: keys in URLs end up in access logs
        chunks = client.chat.completions.create(
            model="vx-beta/gemini-2.5-flash", messages=[{"role": "user", "content": "yo"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: yo"
        sent = upstream.requests[-1]
        assert sent.path == "/v1beta1/publishers/google/models/gemini-2.5-flash:streamGenerateContent"
        assert sent.query == "alt=sse"
        with pytest.raises(openai.BadRequestError, match="rejected the gateway's credentials"):
            client.chat.completions.create(model="vx-bad/gemini-2.5-flash", messages=[{"role": "user", "content": "x"}])
    with anthropic.Anthropic(base_url=gateway, api_key=ROUTER_TOKEN, max_retries=0) as ac:
        message = ac.messages.create(
            model="vx/gemini-2.5-flash", max_tokens=20, messages=[{"role": "user", "content": "hello"}]
        )
        assert message.content[0].type == "text" and message.content[0].text == "echo: hello"
    assert all(ROUTER_TOKEN not in json.dumps(r.headers) for r in upstream.requests)


def test_google_genai_relay_on_express_mode(gateway: str, vertex: tuple[GoogleUpstream, str]) -> None:
    from google import genai
    from google.genai import types

    upstream, _ = vertex
    options = types.HttpOptions(
        base_url=gateway, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)
    )
    client: Any = genai.Client(api_key=ROUTER_TOKEN, http_options=options)
    assert client.models.generate_content(model="vx/gemini-2.5-flash", contents="g").text == "echo: g"
    sent = upstream.requests[-1]
    assert sent.path == "/v1/publishers/google/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == EXPRESS_KEY and ROUTER_TOKEN not in sent.query


def test_express_mode_settings() -> None:
    kind = get_kind("vertex_ai")
    assert check_options(kind, {"auth": "api-key"}, has_key=True) == {"auth": "api-key"}
    check_options(kind, {"auth": "oauth", "project": "p", "location": "us-central1"}, has_key=False)
    with pytest.raises(KindError, match="auth"):
        check_options(kind, {"auth": "key"}, has_key=True)
    with pytest.raises(KindError, match="express mode"):
        check_options(kind, {"auth": "api-key", "project": "p"}, has_key=True)
    with pytest.raises(KindError, match="express mode"):
        check_options(kind, {"auth": "api-key", "location": "us-central1"}, has_key=True)
    with pytest.raises(KindError, match='auth = "api-key"'):
        check_options(kind, {"location": "us-central1"}, has_key=True)  # the hint for express-mode keys
    with pytest.raises(KindError, match="auth"):
        check_options(get_kind("vertex_anthropic"), {"auth": "api-key"}, has_key=True)  # rawPredict: OAuth only
    assert kind.default_key_env({"auth": "api-key"}) == "GOOGLE_API_KEY"  # google-genai's variable
    assert kind.default_key_env({"project": "p", "location": "global"}) == "GOOGLE_APPLICATION_CREDENTIALS"
    with pytest.raises(KindError, match="API key"):
        make_provider("vx", kind, options=(("auth", "api-key"),))
    with pytest.raises(KindError, match="not a credentials JSON") as info:
        make_provider("vx", kind, api_key=Secret('{"private_key": "SECRET"}'), options=(("auth", "api-key"),))
    assert "SECRET" not in str(info.value)
    provider = make_provider("vx", kind, api_key=Secret(EXPRESS_KEY), options=(("auth", "api-key"),))
    assert provider.auth is None
    assert provider.kind.endpoint(provider)(":generateContent", "models/gemini-2.5-pro") == (
        "https://aiplatform.googleapis.com/v1/publishers/google/models/gemini-2.5-pro:generateContent"
    )
    assert provider.kind.credentials(provider) == [("x-goog-api-key", EXPRESS_KEY)]
