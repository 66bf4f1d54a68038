"""Provider kinds end to end: a hand-stacked gateway (resolution, translation, forwarder) in uvicorn,
local upstreams that check path, query, credentials and body the way each kind's provider does,
and the official openai/anthropic SDKs as clients."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from typing import Any

import anthropic
import httpx
import openai
import pytest
from starlette.types import ASGIApp

from asgi_llmroute import Forwarder, ProviderResolverMiddleware, RouteTable, TranslationMiddleware
from asgi_llmroute.providers import Provider, get_kind, kinds, make_provider
from asgi_llmroute.providers.auth import AuthError, RequestSigner, TokenSource
from asgi_llmroute.providers.kinds import CHAT, KindError, ProviderKind, check_options, find_kind
from asgi_llmroute.secret import Secret
from tests.support.provider_servers import KindUpstream, TokenEndpoint
from tests.support.servers import serve, with_forwarder_lifespan

GROQ_KEY = "gsk-groq-SECRET-0123456789"
AZURE_KEY = "azure-key-SECRET-0123456789"
CLIENT_SECRET = "entra-client-SECRET-0123456789"
TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "00000000-0000-0000-0000-0000000000c1"


def stack(*providers: Provider) -> ASGIApp:
    """The core path without auth: resolution -> translation -> forwarder (closed at lifespan shutdown)."""
    forwarder = Forwarder()
    app = ProviderResolverMiddleware(TranslationMiddleware(forwarder), routes=RouteTable(providers, ()))

    return with_forwarder_lifespan(app, forwarder)


class HmacSigner(RequestSigner):
    """A signer in the style of AWS SigV4: a MAC over method, URL and the exact body."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.threads: list[str] = []

    def sign(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Mapping[str, str]:
        self.threads.append(threading.current_thread().name)
        digest = hmac.new(self.secret, f"{method}\n{url}\n".encode() + body, hashlib.sha256).hexdigest()
        return {"x-signature": digest}


class Failing(TokenSource):
    async def fetch(self) -> tuple[str, float]:
        raise AuthError("the metadata server said no")


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, tuple[KindUpstream, str]]]:
    servers = {
        "groq": KindUpstream("/openai/v1", ("authorization", f"Bearer {GROQ_KEY}")),
        "ollama": KindUpstream("/v1", None, forbidden=("authorization",)),
        "azure": KindUpstream(
            "/openai/deployments/gpt4o-prod",
            ("api-key", AZURE_KEY),
            query={"api-version": "2024-10-21"},
            forbidden=("authorization",),
        ),
        "azure-v1": KindUpstream("/openai/v1", ("api-key", AZURE_KEY), forbidden=("authorization",)),
        "signed": KindUpstream("/v1", None),
    }
    with ExitStack() as running:
        yield {name: (upstream, running.enter_context(serve(upstream))) for name, upstream in servers.items()}


@pytest.fixture
def reset(upstreams: dict[str, tuple[KindUpstream, str]]) -> dict[str, KindUpstream]:
    for upstream, _ in upstreams.values():
        upstream.requests.clear()
        upstream.reply_status = None
    return {name: pair[0] for name, pair in upstreams.items()}


@pytest.fixture(scope="module")
def signer() -> HmacSigner:
    return HmacSigner(b"signing-key")


@pytest.fixture(scope="module")
def gateway(upstreams: dict[str, tuple[KindUpstream, str]], signer: HmacSigner) -> Iterator[str]:
    url = {name: pair[1] for name, pair in upstreams.items()}
    providers = [
        make_provider("groq", get_kind("groq"), base_url=f"{url['groq']}/openai/v1", api_key=Secret(GROQ_KEY)),
        make_provider(
            "groq-lenient",
            get_kind("groq"),
            base_url=f"{url['groq']}/openai/v1",
            api_key=Secret(GROQ_KEY),
            drop_params=True,
        ),
        make_provider("ollama", get_kind("ollama"), base_url=f"{url['ollama']}/v1"),
        make_provider("azure", get_kind("azure"), base_url=url["azure"], api_key=Secret(AZURE_KEY)),
        make_provider(
            "azure-v1",
            get_kind("azure"),
            base_url=url["azure-v1"],
            api_key=Secret(AZURE_KEY),
            options=(("api_version", "v1"),),
        ),
        Provider("signed", "openai", f"{url['signed']}/v1", auth=signer),
        Provider("failing", "openai", f"{url['signed']}/v1", auth=Failing()),
    ]
    with serve(stack(*providers)) as gateway_url:
        yield gateway_url


_clients: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def oa(gateway: str) -> openai.OpenAI:
    _clients.append(openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused-client-key", max_retries=0))
    return _clients[-1]  # type: ignore[return-value]


def ac(gateway: str) -> anthropic.Anthropic:
    _clients.append(anthropic.Anthropic(base_url=gateway, api_key="unused-client-key", max_retries=0))
    return _clients[-1]  # type: ignore[return-value]


# -- the registry ----------------------------------------------------------------------------------


def test_every_catalog_kind_is_registered_with_its_litellm_alias() -> None:
    names = {k.name for k in kinds()}
    expected = {"openai", "groq", "mistral", "deepseek", "together", "fireworks", "openrouter", "xai"}
    expected |= {"perplexity", "cerebras", "deepinfra", "nvidia", "ollama", "vllm", "lmstudio", "azure", "anthropic"}
    assert expected <= names
    for alias, name in {
        "hosted_vllm": "vllm",
        "together_ai": "together",
        "fireworks_ai": "fireworks",
        "nvidia_nim": "nvidia",
        "lm_studio": "lmstudio",
        "ollama_chat": "ollama",
    }.items():
        kind = find_kind(alias)
        assert kind is not None and kind.name == name
    for kind in kinds():
        assert kind.serves(CHAT)
        if kind.default_base_url is not None:
            local = "localhost" in kind.default_base_url
            assert kind.default_base_url.startswith("http://" if local else "https://"), kind.name
            assert (kind.key_env is None or not kind.key_required) if local else kind.key_env, kind.name


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(KindError, match=r"unknown provider kind 'grok' \(known: .*groq"):
        get_kind("grok")


def test_kind_options_are_checked() -> None:
    azure = get_kind("azure")
    with pytest.raises(KindError, match="unknown key.*region"):
        check_options(azure, {"region": "x"}, has_key=True)
    with pytest.raises(KindError, match="api_version"):
        check_options(azure, {"api_version": "2024/../x"}, has_key=True)
    with pytest.raises(KindError, match="needs client_id"):
        check_options(azure, {"auth": "entra", "tenant_id": TENANT}, has_key=True)
    with pytest.raises(KindError, match="unknown key"):
        check_options(get_kind("groq"), {"api_version": "1"}, has_key=True)
    assert check_options(azure, {"api_version": "v1"}, has_key=True) == {"api_version": "v1"}


def test_a_kind_without_a_default_base_url_needs_one() -> None:
    with pytest.raises(KindError, match="no default base_url"):
        make_provider("az", get_kind("azure"), api_key=Secret("k"))


def test_url_shapes() -> None:
    groq = make_provider("g", get_kind("groq"))
    assert groq.base_url == "https://api.groq.com/openai/v1"
    assert groq.kind.endpoint(groq)("/v1/chat/completions", "m") == "https://api.groq.com/openai/v1/chat/completions"
    anth = Provider("a", "anthropic", "https://api.anthropic.com")
    assert anth.kind.endpoint(anth)("/v1/messages", "m") == "https://api.anthropic.com/v1/messages"
    az = make_provider("az", get_kind("azure"), base_url="https://r.openai.azure.com/openai/", api_key=Secret("k"))
    url = az.kind.endpoint(az)
    assert url("/v1/embeddings", "emb/1") == (
        "https://r.openai.azure.com/openai/deployments/emb%2F1/embeddings?api-version=2024-10-21"
    )
    assert url("/v1/responses", "d") == "https://r.openai.azure.com/openai/responses?api-version=2024-10-21"
    v1 = make_provider("v", get_kind("azure"), base_url="https://r.openai.azure.com/openai/v1", api_key=Secret("k"))
    assert v1.kind.endpoint(v1)("/v1/chat/completions", "d") == "https://r.openai.azure.com/openai/v1/chat/completions"


def test_a_new_kind_is_one_registration() -> None:
    kind = ProviderKind("example-kind", "openai", default_base_url="https://llm.example/v1", key_env="EXAMPLE_KEY")
    from asgi_llmroute.providers import register_kind

    register_kind(kind)
    assert get_kind("example-kind") is kind
    assert make_provider("x", kind).base_url == "https://llm.example/v1"


# -- end to end ----------------------------------------------------------------------------------


def test_groq_with_the_openai_sdk(gateway: str, reset: dict[str, KindUpstream]) -> None:
    answer = oa(gateway).chat.completions.create(
        model="groq/llama-3.3-70b-versatile", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "hello from the kind"
    seen = reset["groq"].last
    assert seen.path == "/openai/v1/chat/completions" and seen.headers["authorization"] == f"Bearer {GROQ_KEY}"
    assert seen.json()["model"] == "llama-3.3-70b-versatile"


def test_groq_stream_with_tool_calls(gateway: str, reset: dict[str, KindUpstream]) -> None:
    tools: Any = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    stream = oa(gateway).chat.completions.create(
        model="groq/llama", messages=[{"role": "user", "content": "hi"}], tools=tools, stream=True
    )
    calls = [c.choices[0].delta.tool_calls for c in stream if c.choices and c.choices[0].delta.tool_calls]
    assert calls[0] is not None and calls[0][0].function is not None and calls[0][0].function.name == "lookup"


def test_anthropic_sdk_reaches_a_catalog_kind_through_translation(gateway: str, reset: dict[str, KindUpstream]) -> None:
    client = ac(gateway)
    message = client.messages.create(model="groq/llama", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].type == "text" and message.content[0].text == "hello from the kind"
    seen = reset["groq"].last
    assert seen.path == "/openai/v1/chat/completions" and "anthropic-version" not in seen.headers
    tools: Any = [{"name": "lookup", "description": "d", "input_schema": {"type": "object"}}]
    with client.messages.stream(
        model="groq/llama",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
        tools=tools,
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[-1].type == "tool_use"


def test_a_refused_parameter_is_a_400_naming_it(gateway: str, reset: dict[str, KindUpstream]) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oa(gateway).chat.completions.create(
            model="groq/llama", messages=[{"role": "user", "content": "hi"}], logprobs=True
        )
    assert (
        info.value.param == "logprobs" and "kind 'groq'" in info.value.message and "drop_params" in info.value.message
    )
    assert reset["groq"].requests == []


def test_drop_params_drops_with_a_warning_header(gateway: str, reset: dict[str, KindUpstream]) -> None:
    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={
            "model": "groq-lenient/llama",
            "messages": [{"role": "user", "content": "hi"}],
            "logit_bias": {"1": 2},
            "logprobs": True,
        },
    )
    assert response.status_code == 200
    assert response.headers["x-llmroute-warning"] == "dropped logit_bias, logprobs: not accepted by kind 'groq'"
    assert "logit_bias" not in reset["groq"].last.json() and "logprobs" not in reset["groq"].last.json()


def test_an_operation_the_kind_lacks_is_a_400_in_the_clients_format(
    gateway: str, reset: dict[str, KindUpstream]
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        oa(gateway).embeddings.create(model="groq/some-embedder", input="x")
    assert "groq/some-embedder" in info.value.message and "kind 'groq'" in info.value.message
    assert "embeddings" in info.value.message and reset["groq"].requests == []


def test_local_kind_sends_no_credentials(gateway: str, reset: dict[str, KindUpstream]) -> None:
    answer = oa(gateway).chat.completions.create(model="ollama/llama3.2", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "hello from the kind"
    assert "authorization" not in reset["ollama"].last.headers
    embedding = oa(gateway).embeddings.create(model="ollama/nomic-embed-text", input="x")
    assert embedding.data[0].embedding == [0.5] and reset["ollama"].last.path == "/v1/embeddings"


def test_azure_deployment_url_matches_the_official_azure_client(
    gateway: str, reset: dict[str, KindUpstream], upstreams: dict[str, tuple[KindUpstream, str]]
) -> None:
    answer = oa(gateway).chat.completions.create(model="azure/gpt4o-prod", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "hello from the kind"
    ours = reset["azure"].last
    direct = openai.AzureOpenAI(
        azure_endpoint=upstreams["azure"][1], api_key=AZURE_KEY, api_version="2024-10-21", max_retries=0
    )
    _clients.append(direct)
    direct.chat.completions.create(model="gpt4o-prod", messages=[{"role": "user", "content": "hi"}])
    reference = reset["azure"].last
    assert (ours.path, ours.query) == (reference.path, reference.query)
    assert ours.path == "/openai/deployments/gpt4o-prod/chat/completions" and ours.query == "api-version=2024-10-21"
    assert ours.headers["api-key"] == AZURE_KEY and "authorization" not in ours.headers
    stream = oa(gateway).chat.completions.create(
        model="azure/gpt4o-prod", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).strip() == "hello from the kind"


def test_azure_v1_api(gateway: str, reset: dict[str, KindUpstream]) -> None:
    answer = oa(gateway).chat.completions.create(
        model="azure-v1/gpt4o-prod", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "hello from the kind"
    seen = reset["azure-v1"].last
    assert (seen.path, seen.query) == ("/openai/v1/chat/completions", "") and seen.json()["model"] == "gpt4o-prod"


def test_a_signer_signs_the_final_request_off_the_event_loop(
    gateway: str, reset: dict[str, KindUpstream], signer: HmacSigner
) -> None:
    client = ac(gateway)
    client.messages.create(model="signed/m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    seen = reset["signed"].last
    url = f"http://127.0.0.1:{seen.headers['host'].split(':')[1]}{seen.path}"
    expected = hmac.new(b"signing-key", f"POST\n{url}\n".encode() + seen.body, hashlib.sha256).hexdigest()
    assert seen.headers["x-signature"] == expected  # over the translated body, as sent
    assert signer.threads and signer.threads[-1] != "MainThread"


def test_an_authenticator_failure_is_a_502_naming_the_provider(gateway: str, reset: dict[str, KindUpstream]) -> None:
    response = httpx.post(f"{gateway}/v1/chat/completions", json={"model": "failing/m", "messages": []})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_auth" and "'failing'" in error["message"] and "said no" in error["message"]
    assert reset["signed"].requests == []


# -- Entra ID ---------------------------------------------------------------------------------------


def test_entra_client_credentials_are_exchanged_once_and_cached() -> None:
    endpoint = TokenEndpoint(TENANT, CLIENT_ID, CLIENT_SECRET)
    upstream = KindUpstream("/openai/deployments/d", None, query={"api-version": "2024-10-21"}, forbidden=("api-key",))
    with serve(endpoint) as authority, serve(upstream) as azure_url:
        options = (("authority_host", authority), ("client_id", CLIENT_ID), ("tenant_id", TENANT))
        provider = make_provider(
            "az", get_kind("azure"), base_url=azure_url, api_key=Secret(CLIENT_SECRET), options=options
        )
        assert provider.auth is not None
        with serve(stack(provider)) as gateway:
            for _ in range(3):
                upstream.auth = None
                answer = oa(gateway).chat.completions.create(model="az/d", messages=[{"role": "user", "content": "hi"}])
                assert answer.choices[0].message.content == "hello from the kind"
            assert len(endpoint.issued) == 1
            assert {r.headers["authorization"] for r in upstream.requests} == {f"Bearer {endpoint.issued[0]}"}
            assert all(CLIENT_SECRET not in str(r.headers) for r in upstream.requests)


def test_entra_token_is_refreshed_before_it_expires() -> None:
    endpoint = TokenEndpoint(TENANT, CLIENT_ID, CLIENT_SECRET, lifetime=0)
    upstream = KindUpstream("/openai/deployments/d", None)
    with serve(endpoint) as authority, serve(upstream) as azure_url:
        options = (("authority_host", authority), ("client_id", CLIENT_ID), ("tenant_id", TENANT))
        provider = make_provider(
            "az", get_kind("azure"), base_url=azure_url, api_key=Secret(CLIENT_SECRET), options=options
        )
        with serve(stack(provider)) as gateway:
            for _ in range(2):
                oa(gateway).chat.completions.create(model="az/d", messages=[{"role": "user", "content": "hi"}])
    assert len(endpoint.issued) == 2


def test_entra_failure_is_a_502_without_the_secret() -> None:
    endpoint = TokenEndpoint(TENANT, CLIENT_ID, "another-secret")
    upstream = KindUpstream("/openai/deployments/d", None)
    with serve(endpoint) as authority, serve(upstream) as azure_url:
        options = (("authority_host", authority), ("client_id", CLIENT_ID), ("tenant_id", TENANT))
        provider = make_provider(
            "az", get_kind("azure"), base_url=azure_url, api_key=Secret(CLIENT_SECRET), options=options
        )
        with serve(stack(provider)) as gateway:
            client = ac(gateway)
            with pytest.raises(anthropic.InternalServerError) as info:
                client.messages.create(model="az/d", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502 and "answered 401 (invalid_client)" in str(info.value)
    assert CLIENT_SECRET not in str(info.value.body) and upstream.requests == []
