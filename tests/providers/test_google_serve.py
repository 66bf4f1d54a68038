"""``llmroute serve`` with ``kind = "gemini"`` and ``kind = "vertex_ai"`` providers in its TOML config,
a local Gemini API, a local Vertex AI and a local OAuth2 token endpoint (which verifies the
throwaway service account's signed JWT), driven by the openai, anthropic and google-genai SDKs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import anthropic
import openai
import pytest

from tests.support.cli import Served, llmroute_serve
from tests.support.google_servers import GoogleUpstream, TokenEndpoint, service_account
from tests.support.servers import serve

TOKEN = "sk-router-google-serve-0123456789"
GEMINI_KEY = "AIza-serve-SECRET-0123456789"
EXPRESS_KEY = "AIza-express-serve-SECRET-0123456789"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, GoogleUpstream, GoogleUpstream]]:
    tmp = tmp_path_factory.mktemp("google-serve")
    gemini, tokens = GoogleUpstream(api_key=GEMINI_KEY), TokenEndpoint()
    vertex = GoogleUpstream(vertex=True, tokens=tokens, express_key=EXPRESS_KEY)
    with ExitStack() as running:
        gemini_url, vertex_url = running.enter_context(serve(gemini)), running.enter_context(serve(vertex))
        token_url = running.enter_context(serve(tokens))
        info, public_key = service_account(f"{token_url}/token")
        tokens.public_key, tokens.client_email = public_key, info["client_email"]
        key_file = tmp / "service-account.json"
        key_file.write_text(json.dumps(info))
        key_file.chmod(0o600)
        (tmp / "llmroute.toml").write_text(
            f"""
[[tokens]]
name = "tests"
key = "{TOKEN}"

[[providers]]
name = "gem"
kind = "gemini"
base_url = "{gemini_url}/v1beta"
api_key = "env:TEST_GEMINI_KEY"

[[providers]]
name = "vtx"
kind = "vertex_ai"
base_url = "{vertex_url}"
project = "fixture-project"
location = "us-central1"
api_key = "file:{key_file}"

[[providers]]
name = "vx"
kind = "vertex_ai"
auth = "api-key"      # express mode; the key from GOOGLE_API_KEY
base_url = "{vertex_url}"
"""
        )
        env = {**os.environ, "TEST_GEMINI_KEY": GEMINI_KEY, "GOOGLE_API_KEY": EXPRESS_KEY}
        with llmroute_serve(["--config", str(tmp / "llmroute.toml")], cwd=tmp, env=env) as server:
            yield server, gemini, vertex
        assert (
            GEMINI_KEY not in server.output
            and EXPRESS_KEY not in server.output
            and info["private_key"][40:80] not in server.output
        )


def test_three_sdks_through_llmroute_serve(served: tuple[Served, GoogleUpstream, GoogleUpstream]) -> None:
    from google import genai
    from google.genai import errors, types

    server, gemini, vertex = served
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0) as oa:
        done = oa.chat.completions.create(model="gem/gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}])
        assert done.choices[0].message.content == "echo: hi"
        chunks = list(
            oa.chat.completions.create(
                model="vtx/gemini-2.5-flash", messages=[{"role": "user", "content": "yo"}], stream=True
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: yo"
        done = oa.chat.completions.create(model="vx/gemini-2.5-flash", messages=[{"role": "user", "content": "ex"}])
        assert done.choices[0].message.content == "echo: ex"
        assert vertex.requests[-1].path == "/v1/publishers/google/models/gemini-2.5-flash:generateContent"
        with pytest.raises(openai.RateLimitError) as info:
            oa.chat.completions.create(model="gem/gemini-throttled", messages=[{"role": "user", "content": "x"}])
        assert info.value.response.headers.get("retry-after") == "37"
        response = oa.responses.create(model="gem/gemini-2.5-flash", input="via responses")
        assert response.output_text == "echo: via responses"
    with anthropic.Anthropic(base_url=server.url, api_key=TOKEN, max_retries=0) as ac:
        message = ac.messages.create(
            model="vtx/gemini-2.5-flash", max_tokens=20, messages=[{"role": "user", "content": "hello"}]
        )
        assert message.content[0].type == "text" and message.content[0].text == "echo: hello"
    options = types.HttpOptions(
        base_url=server.url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)
    )
    client: Any = genai.Client(api_key=TOKEN, http_options=options)
    assert client.models.generate_content(model="gem/gemini-2.5-flash", contents="g").text == "echo: g"
    streamed = client.models.generate_content_stream(model="vtx/gemini-2.5-flash", contents="s")
    assert "".join(chunk.text or "" for chunk in streamed) == "echo: s"
    with pytest.raises(errors.ClientError) as gerr:
        client.models.generate_content(model="nope/gemini-2.5-flash", contents="x")
    assert gerr.value.code == 404
    # Relayed as it is, Google's 429 gets its body's RetryInfo delay as Retry-After: the retry layer
    # sees 37 s (over its 30 s limit) and does not hammer the upstream; the client gets the header.
    before = sum(1 for r in gemini.requests if "gemini-throttled" in r.path)
    with pytest.raises(errors.ClientError) as gerr:
        client.models.generate_content(model="gem/gemini-throttled", contents="x")
    assert gerr.value.code == 429 and gerr.value.status == "RESOURCE_EXHAUSTED"
    assert gerr.value.response.headers["retry-after"] == "37"
    assert gerr.value.response.headers["x-llmroute-attempts"] == "1"
    assert sum(1 for r in gemini.requests if "gemini-throttled" in r.path) == before + 1
    for upstream in (gemini, vertex):
        assert all(TOKEN not in json.dumps(r.headers) and TOKEN not in r.query for r in upstream.requests)


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PARAMETERS: Any = {
    "type": "object",
    "$defs": {"Place": {"type": "string", "description": "City"}},
    "properties": {"location": {"$ref": "#/$defs/Place"}},
    "required": ["location"],
}


def test_tools_media_schemas_and_errors_through_llmroute_serve(
    served: tuple[Served, GoogleUpstream, GoogleUpstream],
) -> None:
    from google import genai
    from google.genai import types

    server, gemini, vertex = served
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": PARAMETERS}}]
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0) as oa:
        messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
        first = oa.chat.completions.create(model="vtx/gemini-2.5-flash", messages=messages, tools=tools)
        call: Any = (first.choices[0].message.tool_calls or [])[0]
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"location": "Paris"}
        declaration = vertex.requests[-1].json()["tools"][0]["functionDeclarations"][0]
        assert "$ref" not in json.dumps(declaration)  # the schema's $ref inlined for Gemini
        messages += [first.choices[0].message.model_dump(exclude_none=True)]
        messages += [{"role": "tool", "tool_call_id": call.id, "content": "18°C"}]
        second = oa.chat.completions.create(model="vtx/gemini-2.5-flash", messages=messages, tools=tools)
        assert second.choices[0].message.content == "The weather: 18°C."
        schema: Any = {
            "type": "object",
            "$defs": {"C": {"type": "string"}},
            "properties": {"city": {"$ref": "#/$defs/C"}},
        }
        done = oa.chat.completions.create(
            model="gem/gemini-2.5-flash",
            messages=[{"role": "user", "content": "where?"}],
            response_format={"type": "json_schema", "json_schema": {"name": "where", "schema": schema}},
        )
        assert json.loads(done.choices[0].message.content or "")["city"] == "Paris"
        with pytest.raises(openai.APIError, match="without a finishReason"):
            list(
                oa.chat.completions.create(
                    model="gem/gemini-cut", messages=[{"role": "user", "content": "x"}], stream=True
                )
            )
    with anthropic.Anthropic(base_url=server.url, api_key=TOKEN, max_retries=0) as ac:
        image: Any = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
        by_url: Any = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.webp"}}
        message = ac.messages.create(
            model="gem/gemini-2.5-flash", max_tokens=20, messages=[{"role": "user", "content": [image, by_url]}]
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == "I received image/png, image/webp at https://example.com/cat.webp"
        with pytest.raises(anthropic.RateLimitError) as info:
            ac.messages.create(model="vtx/gemini-throttled", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
        assert info.value.response.headers["retry-after"] == "37"
        with pytest.raises(anthropic.BadRequestError) as bad:
            ac.messages.create(
                model="vtx/gemini-2.5-flash",
                max_tokens=5,
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "url", "url": "gs://private/key.png"}}],
                    }
                ],
            )
        assert "gs://private" in bad.value.message
    options = types.HttpOptions(
        base_url=server.url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)
    )
    client: Any = genai.Client(api_key=TOKEN, http_options=options)
    plain = {"type": "object", "properties": {"location": {"type": "string"}}}  # relayed as it is: no $ref
    declaration = types.FunctionDeclaration(name="get_weather", parameters_json_schema=plain)
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declaration])])
    answer = client.models.generate_content(model="gem/gemini-2.5-flash", contents="weather?", config=config)
    assert answer.function_calls and answer.function_calls[0].args == {"location": "Paris"}
