"""Gemini API and Vertex AI end to end: the gateway in uvicorn, local Gemini- and Vertex-shaped
upstreams and a local OAuth2 token endpoint that verifies the service account's signed JWT, driven
by the official openai and anthropic SDKs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from starlette.types import ASGIApp

from asgi_llmroute import (
    CredentialStripMiddleware,
    Forwarder,
    ProviderResolverMiddleware,
    RouteTable,
    TokenAuthMiddleware,
    TokenEntry,
    TokenTable,
    TranslationMiddleware,
)
from asgi_llmroute.formats.gemini import split_call_id
from asgi_llmroute.providers import Provider, get_kind, make_provider
from asgi_llmroute.providers.google import GoogleTokenSource, vertex_host
from asgi_llmroute.providers.google_media import media_uris
from asgi_llmroute.providers.kinds import KindError, check_options
from asgi_llmroute.secret import Secret
from tests.support.google_servers import (
    SIGNATURE,
    GoogleUpstream,
    TokenEndpoint,
    VertexClaudeUpstream,
    service_account,
)
from tests.support.servers import serve, with_forwarder_lifespan

GEMINI_KEY = "AIza-gemini-SECRET-0123456789"
PROVIDERS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "providers"
ROUTER_TOKEN = "router-token-for-google-tests"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a place",
            "parameters": {
                "type": "object",
                "$defs": {"Place": {"type": "string", "description": "City"}},
                "properties": {"location": {"$ref": "#/$defs/Place"}},
                "required": ["location"],
            },
        },
    }
]


def stack(*providers: Provider) -> ASGIApp:
    forwarder = Forwarder()
    app: ASGIApp = TranslationMiddleware(forwarder)
    app = CredentialStripMiddleware(app)
    app = ProviderResolverMiddleware(app, routes=RouteTable(providers, ()))
    app = TokenAuthMiddleware(app, tokens=TokenTable([TokenEntry.from_key("tests", ROUTER_TOKEN)]))

    return with_forwarder_lifespan(app, forwarder)


class Servers:
    def __init__(self, running: ExitStack) -> None:
        self.gemini = GoogleUpstream(api_key=GEMINI_KEY)
        self.tokens = TokenEndpoint()
        self.vertex = GoogleUpstream(vertex=True, tokens=self.tokens)
        self.claude = VertexClaudeUpstream(tokens=self.tokens)
        self.claude_url = running.enter_context(serve(self.claude))
        self.gemini_url = running.enter_context(serve(self.gemini))
        self.vertex_url = running.enter_context(serve(self.vertex))
        self.token_url = running.enter_context(serve(self.tokens))
        self.service_account, public_key = service_account(f"{self.token_url}/token")
        self.tokens.public_key = public_key
        self.tokens.client_email = self.service_account["client_email"]


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with ExitStack() as running:
        yield Servers(running)


@pytest.fixture(scope="module")
def gateway(servers: Servers) -> Iterator[str]:
    vertex_options = (("location", "us-central1"), ("project", "fixture-project"))
    providers = [
        make_provider("gem", get_kind("gemini"), base_url=f"{servers.gemini_url}/v1beta", api_key=Secret(GEMINI_KEY)),
        make_provider("bad-key", get_kind("gemini"), base_url=f"{servers.gemini_url}/v1beta", api_key=Secret("nope")),
        make_provider(
            "vtx",
            get_kind("vertex_ai"),
            base_url=servers.vertex_url,
            api_key=Secret(json.dumps(servers.service_account)),
            options=vertex_options,
        ),
        make_provider(
            "vtx-gcs",
            get_kind("vertex_ai"),
            base_url=servers.vertex_url,
            api_key=Secret(json.dumps(servers.service_account)),
            options=(*vertex_options, ("gcs_buckets", "media-bucket")),
        ),
        make_provider(
            "claude",
            get_kind("vertex_anthropic"),
            base_url=servers.claude_url,
            api_key=Secret(json.dumps(servers.service_account)),
            options=vertex_options,
        ),
    ]
    with serve(stack(*providers)) as url:
        yield url


_clients: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def oa(gateway: str) -> openai.OpenAI:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=ROUTER_TOKEN, max_retries=0)
    _clients.append(client)
    return client


def ac(gateway: str) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=gateway, api_key=ROUTER_TOKEN, max_retries=0)
    _clients.append(client)
    return client


MODELS = ["gem/gemini-2.5-flash", "vtx/gemini-2.5-flash"]


@pytest.mark.parametrize("model", MODELS)
def test_openai_text_and_stream(gateway: str, servers: Servers, model: str) -> None:
    client = oa(gateway)
    done = client.chat.completions.create(
        model=model, messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    )
    assert done.choices[0].message.content == "echo: hello [be brief]"
    assert done.usage is not None and done.usage.prompt_tokens == 11 and done.usage.completion_tokens == 7
    upstream = servers.vertex if model.startswith("vtx") else servers.gemini
    sent = upstream.requests[-1]
    assert sent.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert ROUTER_TOKEN not in json.dumps(sent.headers)
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "streamed"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: streamed"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 18
    assert upstream.requests[-1].path.endswith(":streamGenerateContent") and upstream.requests[-1].query == "alt=sse"


@pytest.mark.parametrize("model", MODELS)
def test_openai_tool_round_trip_keeps_the_thought_signature(gateway: str, servers: Servers, model: str) -> None:
    client = oa(gateway)
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = client.chat.completions.create(model=model, messages=messages, tools=TOOLS, reasoning_effort="low")
    call = (first.choices[0].message.tool_calls or [])[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (first.choices[0].message.model_extra or {}).get("reasoning_content") == "I should call the tool."
    assert split_call_id(call.id)[1] == SIGNATURE
    upstream = servers.vertex if model.startswith("vtx") else servers.gemini
    declaration = upstream.requests[-1].json()["tools"][0]["functionDeclarations"][0]
    assert declaration["parametersJsonSchema"]["properties"]["location"] == {"type": "string", "description": "City"}
    messages += [first.choices[0].message.model_dump(exclude_none=True)]
    messages += [{"role": "tool", "tool_call_id": call.id, "content": "18°C"}]
    second = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "The weather: 18°C."


def test_anthropic_stream_tool_round_trip(gateway: str, servers: Servers) -> None:
    client = ac(gateway)
    tools: Any = [{"name": "get_weather", "input_schema": TOOLS[0]["function"]["parameters"]}]
    messages: list[Any] = [{"role": "user", "content": "weather?"}]
    with client.messages.stream(
        model="vtx/gemini-2.5-flash",
        max_tokens=200,
        messages=messages,
        tools=tools,
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "tool_use"]
    assert message.stop_reason == "tool_use"
    tool_use = message.content[1]
    assert tool_use.type == "tool_use" and tool_use.input == {"location": "Paris"}
    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in message.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny"}]},
    ]
    answer = client.messages.create(model="vtx/gemini-2.5-flash", max_tokens=200, messages=messages, tools=tools)
    assert answer.content[0].type == "text" and answer.content[0].text == "The weather: sunny."


def test_images_and_pdfs_are_sent_inline(gateway: str) -> None:
    done = oa(gateway).chat.completions.create(
        model="gem/gemini-2.5-flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {
                        "type": "file",
                        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
                    },
                ],
            }
        ],
    )
    assert done.choices[0].message.content == "I received image/png, application/pdf"
    answer = ac(gateway).messages.create(
        model="gem/gemini-2.5-flash",
        max_tokens=10,
        messages=[
            {
                "role": "user",
                "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}],
            }
        ],
    )
    assert answer.content[0].type == "text" and answer.content[0].text == "I received image/png"


def test_response_format_schema_with_ref(gateway: str) -> None:
    schema = {
        "type": "object",
        "$defs": {"City": {"type": "string"}},
        "properties": {"city": {"$ref": "#/$defs/City"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    done = oa(gateway).chat.completions.create(
        model="gem/gemini-2.5-flash",
        messages=[{"role": "user", "content": "where?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "where", "schema": schema, "strict": True}},
    )
    assert json.loads(done.choices[0].message.content or "") == {
        "city": "Paris",
        "schema_keys": ["additionalProperties", "properties", "required", "type"],
    }


def test_bad_input_is_a_400_in_the_clients_format(gateway: str) -> None:
    bad_tool: Any = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "not": {}}}}]
    with pytest.raises(openai.BadRequestError) as info:
        oa(gateway).chat.completions.create(
            model="gem/gemini-2.5-flash", messages=[{"role": "user", "content": "x"}], tools=bad_tool
        )
    assert info.value.param == "tools[0].function.parameters.not"
    with pytest.raises(anthropic.BadRequestError) as ainfo:
        ac(gateway).messages.create(
            model="gem/gemini-2.5-flash",
            max_tokens=5,
            messages=[
                {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "gs://x/y.png"}}]}
            ],
        )
    assert "inline" in ainfo.value.message and ainfo.value.body["type"] == "error"  # type: ignore[index]


def test_media_by_uri(gateway: str, servers: Servers) -> None:
    def image(model: str, url: str) -> str | None:
        content: Any = [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": url}}]
        done = oa(gateway).chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
        return done.choices[0].message.content

    # The Gemini API fetches HTTPS URLs (its Files API's have no extension: no mimeType then).
    assert image("gem/gemini-2.5-flash", "https://example.com/cat.png") == (
        "I received image/png at https://example.com/cat.png"
    )
    files_uri = "https://generativelanguage.googleapis.com/v1beta/files/abc123"
    assert image("gem/gemini-2.5-flash", files_uri) == f"I received ? at {files_uri}"
    # Vertex reads gs:// URIs with the gateway's credentials: only from the buckets the provider lists.
    assert image("vtx-gcs/gemini-2.5-flash", "gs://media-bucket/cat.jpg") == (
        "I received image/jpeg at gs://media-bucket/cat.jpg"
    )
    assert servers.vertex.requests[-1].json()["contents"][0]["parts"][1] == {
        "fileData": {"mimeType": "image/jpeg", "fileUri": "gs://media-bucket/cat.jpg"}
    }
    refused = [
        ("gem/gemini-2.5-flash", "gs://media-bucket/cat.png", "does not read gs://"),
        ("vtx/gemini-2.5-flash", "gs://media-bucket/cat.png", "not a Cloud Storage bucket this gateway reads"),
        ("vtx-gcs/gemini-2.5-flash", "gs://secrets/key.png", "gs://secrets is not a Cloud Storage bucket"),
        ("vtx/gemini-2.5-flash", "https://example.com/render?id=3", "needs the media type"),
    ]
    for model, url, match in refused:
        with pytest.raises(openai.BadRequestError, match=match) as info:
            image(model, url)
        assert info.value.param == "messages[0].content[1].image_url.url"
    answer = ac(gateway).messages.create(
        model="vtx-gcs/gemini-2.5-flash",
        max_tokens=10,
        messages=[
            {
                "role": "user",
                "content": [{"type": "document", "source": {"type": "url", "url": "https://example.com/report"}}],
            }
        ],
    )
    assert answer.content[0].type == "text"
    assert answer.content[0].text == "I received application/pdf at https://example.com/report"


def test_throttling_carries_retry_after(gateway: str) -> None:
    client = oa(gateway)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gem/gemini-throttled", messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers["retry-after"] == "37"
    assert info.value.code == "RESOURCE_EXHAUSTED"
    with pytest.raises(anthropic.RateLimitError):
        ac(gateway).messages.create(
            model="vtx/gemini-throttled", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


def test_rejected_key_and_cut_stream(gateway: str) -> None:
    with pytest.raises(openai.BadRequestError, match="rejected the gateway's credentials"):
        oa(gateway).chat.completions.create(
            model="bad-key/gemini-2.5-flash", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.APIError, match="without a finishReason"):
        list(
            oa(gateway).chat.completions.create(
                model="gem/gemini-cut", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
    with (
        pytest.raises(anthropic.APIError, match="without a finishReason"),
        ac(gateway).messages.stream(
            model="vtx/gemini-cut", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        ) as s,
    ):
        s.get_final_message()


def test_one_token_exchange_for_concurrent_requests(servers: Servers) -> None:
    tokens = TokenEndpoint(public_key=servers.tokens.public_key, client_email=servers.tokens.client_email)
    servers.vertex.tokens = tokens
    info = {**servers.service_account}
    with ExitStack() as running:
        token_url = running.enter_context(serve(tokens))
        info["token_uri"] = f"{token_url}/token"
        provider = make_provider(
            "vtx2",
            get_kind("vertex_ai"),
            base_url=servers.vertex_url,
            api_key=Secret(json.dumps(info)),
            options=(("location", "us-central1"), ("project", "fixture-project")),
        )
        gateway = running.enter_context(serve(stack(provider)))
        errors: list[BaseException] = []

        def ask() -> None:
            try:
                done = oa(gateway).chat.completions.create(
                    model="vtx2/gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
                )
                assert done.choices[0].message.content == "echo: hi"
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors and len(tokens.issued) == 1 and not tokens.rejected
    servers.vertex.tokens = servers.tokens


def test_token_source_refreshes_off_the_event_loop(servers: Servers) -> None:
    import anyio

    source = GoogleTokenSource.for_key(Secret(json.dumps(servers.service_account)))
    threads: list[str] = []
    original = source.fetch_blocking

    def recording() -> tuple[str, float]:
        threads.append(threading.current_thread().name)
        return original()

    source.fetch_blocking = recording  # type: ignore[method-assign]
    token = anyio.run(source.token)
    assert token in servers.tokens.issued
    assert threads and threads[0] != threading.main_thread().name
    assert anyio.run(source.token) == token and len(threads) == 1  # cached


def test_static_token_and_bad_keys() -> None:
    source = GoogleTokenSource.for_key(Secret("ya29.static"))
    import anyio

    assert anyio.run(source.token) == "ya29.static"
    with pytest.raises(KindError, match="not valid JSON"):
        GoogleTokenSource.for_key(Secret("{not json"))
    with pytest.raises(KindError, match="not usable"):
        GoogleTokenSource.for_key(Secret(json.dumps({"type": "service_account", "client_email": "x"})))


def test_vertex_options_and_hosts() -> None:
    kind = get_kind("vertex_ai")
    with pytest.raises(KindError, match="need project"):
        check_options(kind, {"location": "us-central1"}, has_key=True)
    with pytest.raises(KindError, match="location"):
        check_options(kind, {"project": "p", "location": "us/../x"}, has_key=True)
    place = {"project": "p", "location": "us-central1"}
    with pytest.raises(KindError, match="gcs_buckets: 'Bad_Bucket!'"):
        check_options(kind, {**place, "gcs_buckets": "media-bucket, Bad_Bucket!"}, has_key=True)
    for buckets, allowed in (("*", None), ("a-bucket, b.bucket", frozenset({"a-bucket", "b.bucket"}))):
        check_options(kind, {**place, "gcs_buckets": buckets}, has_key=True)
        vertex = make_provider("v", kind, api_key=Secret("ya29.x"), options=(*place.items(), ("gcs_buckets", buckets)))
        assert media_uris(vertex).buckets == allowed and media_uris(vertex) is media_uris(vertex)
    assert vertex_host("global") == "https://aiplatform.googleapis.com"
    assert vertex_host("eu") == "https://aiplatform.eu.rep.googleapis.com"
    assert vertex_host("europe-west4") == "https://europe-west4-aiplatform.googleapis.com"
    provider = make_provider(
        "v", kind, api_key=Secret("ya29.x"), options=(("location", "europe-west4"), ("project", "my-proj"))
    )
    url = provider.kind.endpoint(provider)(":generateContent", "gemini-2.5-pro")
    assert url == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-proj/locations/europe-west4"
        "/publishers/google/models/gemini-2.5-pro:generateContent"
    )
    gemini = make_provider("g", get_kind("gemini"), api_key=Secret("k"))
    assert gemini.kind.endpoint(gemini)(":streamGenerateContent?alt=sse", "models/gemini-2.5-flash") == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )


# -- google-genai clients on the Gemini-API route ------------------------------------------------------


def genai_client(gateway: str, key: str = ROUTER_TOKEN) -> Any:
    from google import genai
    from google.genai import types

    options = types.HttpOptions(
        base_url=gateway, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key=key, http_options=options)


@pytest.mark.parametrize("model", MODELS)
def test_google_genai_relay(gateway: str, servers: Servers, model: str) -> None:
    from google.genai import types

    client = genai_client(gateway)
    done = client.models.generate_content(
        model=model, contents="hello", config=types.GenerateContentConfig(system_instruction="be brief")
    )
    assert done.text == "echo: hello [be brief]"
    assert done.usage_metadata is not None and done.usage_metadata.total_token_count == 18
    upstream = servers.vertex if model.startswith("vtx") else servers.gemini
    sent = upstream.requests[-1]
    assert sent.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert ROUTER_TOKEN not in json.dumps(sent.headers) and ROUTER_TOKEN not in sent.query
    text = "".join(
        chunk.text or "" for chunk in client.models.generate_content_stream(model=model, contents="streamed")
    )
    assert text == "echo: streamed"
    assert upstream.requests[-1].query == "alt=sse"


@pytest.mark.parametrize("model", MODELS)
def test_google_genai_count_tokens(gateway: str, servers: Servers, model: str) -> None:
    client = genai_client(gateway)
    counted = client.models.count_tokens(model=model, contents="three words here")
    assert counted.total_tokens == 103
    upstream = servers.vertex if model.startswith("vtx") else servers.gemini
    assert upstream.requests[-1].path.endswith("/models/gemini-2.5-flash:countTokens")
    assert ROUTER_TOKEN not in json.dumps(upstream.requests[-1].headers)


def test_google_genai_errors_are_google_errors(gateway: str) -> None:
    from google.genai import errors

    wrong, client = genai_client(gateway, key="wrong-token"), genai_client(gateway)
    with pytest.raises(errors.ClientError) as info:
        wrong.models.generate_content(model="gem/gemini-2.5-flash", contents="x")
    assert info.value.code == 401 and info.value.status == "UNAUTHENTICATED"
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model="gem/gemini-throttled", contents="x")
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model="nowhere/gemini-2.5-flash", contents="x")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"


def test_key_file_path_is_read(servers: Servers, tmp_path: Any) -> None:
    import anyio

    path = tmp_path / "sa.json"
    path.write_text(json.dumps(servers.service_account))
    source = GoogleTokenSource.for_key(Secret(str(path)))
    assert anyio.run(source.token) in servers.tokens.issued


# -- Claude on Vertex ----------------------------------------------------------------------------------


def test_vertex_claude_for_anthropic_clients(gateway: str, servers: Servers) -> None:
    client = ac(gateway)
    message = client.messages.create(
        model="claude/claude-sonnet-4-5@20250929", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.id == "msg_vrtx_fixture_text_01" and message.content[0].type == "text"
    sent = servers.claude.requests[-1]
    assert sent.path.endswith("/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict")
    assert "anthropic-version" not in sent.headers and sent.json()["anthropic_version"] == "vertex-2023-10-16"
    with client.messages.stream(
        model="claude/claude-sonnet-4-5@20250929", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text.startswith("Paris")
    assert servers.claude.requests[-1].path.endswith(":streamRawPredict")
    with (
        pytest.raises(anthropic.APIError, match="before message_stop"),
        client.messages.stream(
            model="claude/claude-cut", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        ) as s,
    ):
        s.get_final_message()
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(
            model="claude/claude-throttled", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_vertex_claude_for_openai_clients(gateway: str, servers: Servers) -> None:
    client = oa(gateway)
    done = client.chat.completions.create(
        model="claude/claude-sonnet-4-5@20250929", messages=[{"role": "user", "content": "hi"}]
    )
    assert (done.choices[0].message.content or "").startswith("Paris")
    assert "model" not in servers.claude.requests[-1].json()
    chunks = list(
        client.chat.completions.create(
            model="claude/claude-sonnet-4-5@20250929",
            messages=[{"role": "user", "content": "w?"}],
            tools=TOOLS,
            stream=True,
        )
    )
    names = [
        c.choices[0].delta.tool_calls[0].function.name
        for c in chunks
        if c.choices
        and c.choices[0].delta.tool_calls
        and c.choices[0].delta.tool_calls[0].function
        and c.choices[0].delta.tool_calls[0].function.name
    ]
    assert names and chunks[-1].choices[0].finish_reason == "tool_calls"
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="claude/claude-throttled", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "RESOURCE_EXHAUSTED"


def test_refresh_ahead_of_expiry_does_not_make_requests_wait(servers: Servers) -> None:
    import anyio

    source = GoogleTokenSource.for_key(Secret(json.dumps(servers.service_account)))
    assert isinstance(source, GoogleTokenSource)

    async def run() -> None:
        first = await source.token()
        source._refresh_at = 0.0  # the refresh point (5 minutes before expiry) has passed
        assert await source.token() == first  # still valid: answered at once
        assert source._background is not None
        await source._background  # while one refresh ran in the background
        second = await source.token()
        assert second != first and second in servers.tokens.issued

    anyio.run(run)


def test_retry_delay_header_on_relayed_google_errors() -> None:
    import anyio

    from asgi_llmroute.middleware._rewrite import google_retry_after_header

    throttled = (PROVIDERS_DIR / "gemini" / "error_429_resource_exhausted.json").read_bytes()

    def relay(status: int, chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None) -> list[Any]:
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def go() -> None:
            wrapped = google_retry_after_header(send)
            await wrapped({"type": "http.response.start", "status": status, "headers": headers or []})
            for i, chunk in enumerate(chunks):
                await wrapped({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})

        anyio.run(go)
        return sent

    half = len(throttled) // 2
    start, body = relay(429, [throttled[:half], throttled[half:]])  # the body in two reads, held, one out
    assert (b"retry-after", b"37") in start["headers"] and body["body"] == throttled and not body["more_body"]
    start, _ = relay(503, [throttled], [(b"retry-after", b"5")])  # the upstream's own header wins
    assert start["headers"] == [(b"retry-after", b"5")]
    for status, chunks in ((200, [throttled]), (429, [b"not json"]), (429, [b" " * 70000, throttled])):
        sent = relay(status, chunks)
        assert not any(k == b"retry-after" for k, _ in sent[0]["headers"])
        assert b"".join(m["body"] for m in sent[1:]) == b"".join(chunks)


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_count_tokens_on_gemini_is_googles_count(gateway: str, servers: Servers, model: str) -> None:
    """Claude Code's count_tokens on a Gemini model: Google's :countTokens (system and tools counted),
    in the shape each API takes, answered as Anthropic's ``input_tokens`` (not the gateway's estimate)."""
    client = ac(gateway)
    tools: Any = [{"name": "lookup", "description": "d", "input_schema": {"type": "object", "properties": {}}}]
    messages: Any = [{"role": "user", "content": "three words here"}]
    counted = client.messages.count_tokens(model=model, messages=messages, system="be brief", tools=tools)
    assert counted.input_tokens == 100 + 3 + 2 + 1  # the fake counts words, system words and tools
    upstream = servers.vertex if model.startswith("vtx") else servers.gemini
    sent = upstream.requests[-1]
    assert sent.path.endswith("/models/gemini-2.5-flash:countTokens") and sent.query == ""
    body = sent.json()
    if model.startswith("vtx"):
        assert set(body) == {"contents", "systemInstruction", "tools"}
    else:
        assert set(body) == {"generateContentRequest"}
        assert body["generateContentRequest"]["model"] == "models/gemini-2.5-flash"
    assert ROUTER_TOKEN not in json.dumps(sent.headers)
    with pytest.raises(anthropic.BadRequestError) as info:  # Google's 400 API_KEY_INVALID, in Anthropic's shape
        client.messages.count_tokens(model="bad-key/gemini-2.5-flash", messages=messages)
    assert "rejected the gateway's credentials" in info.value.body["error"]["message"]  # type: ignore[index]


def test_vertex_claude_count_tokens(gateway: str, servers: Servers) -> None:
    client = ac(gateway)
    messages: Any = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    counted = client.messages.count_tokens(model="claude/claude-sonnet-4-5@20250929", messages=messages, system="s")
    assert counted.input_tokens == 1002  # Vertex's count, not the gateway's estimate
    sent = servers.claude.requests[-1]
    assert (
        sent.path
        == "/v1/projects/fixture-project/locations/us-central1/publishers/anthropic/models/count-tokens:rawPredict"
    )
    assert sent.json()["model"] == "claude-sonnet-4-5@20250929" and sent.json()["system"] == "s"
    assert sent.headers["authorization"].removeprefix("Bearer ") in servers.tokens.issued
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.count_tokens(model="claude/claude-throttled", messages=messages)
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
