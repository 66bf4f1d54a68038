"""OpenAI / Anthropic requests -> Gemini generateContent bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llmroute.formats import TranslationError, TranslationOptions
from asgi_llmroute.formats.gemini import GeminiTranslator, mint_call_id, reduce_schema, split_call_id

PROVIDERS = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
OPTIONS = TranslationOptions(clock=lambda: 1700000000)


def load(rel: str) -> Any:
    return json.loads((PROVIDERS / rel).read_bytes())


def openai(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return GeminiTranslator("openai", OPTIONS, **kw).request(body)


def anthropic(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return GeminiTranslator("anthropic", OPTIONS, **kw).request(body)


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-flash", "messages": list(messages), **extra}


USER = {"role": "user", "content": "hi"}


def test_fixture_request_matches_expected_body() -> None:
    tr = GeminiTranslator("openai", OPTIONS)
    assert tr.request(load("requests/openai_chat_request.json")) == load(
        "requests/openai_chat_request.expected.gemini.json"
    )
    assert tr.model == "travel-assistant" and tr.streaming is True


def test_anthropic_equivalent_of_the_fixture() -> None:
    fixture = load("requests/openai_chat_request.json")
    png = fixture["messages"][1]["content"][1]["image_url"]["url"].split(",", 1)[1]
    body = {
        "model": "travel-assistant",
        "max_tokens": 1024,
        "temperature": 0.7,
        "stop_sequences": ["\n\nUser:"],
        "system": "You are a concise travel assistant.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": fixture["messages"][1]["content"][0]["text"]},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look that up."},
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"location": "Paris, France"}},
                    {"type": "tool_use", "id": "t2", "name": "get_time", "input": {"timezone": "Europe/Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "18°C, partly cloudy"},
                    {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "14:05"}]},
                    {"type": "text", "text": "Answer in one sentence."},
                ],
            },
        ],
        "tools": [
            {
                "name": t["function"]["name"],
                "description": t["function"]["description"],
                "input_schema": t["function"]["parameters"],
            }
            for t in fixture["tools"]
        ],
        "tool_choice": {"type": "auto"},
        "stream": True,
    }
    assert anthropic(body) == load("requests/openai_chat_request.expected.gemini.json")


def test_function_responses_follow_their_call_turn_in_call_order() -> None:
    calls = [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": '{"x": 1}'}},
    ]
    out = openai(
        chat(
            USER,
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "b", "content": "B"},
            {"role": "user", "content": "next"},
        )
    )
    assert out["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "f", "response": {"output": "no result was provided"}}},
            {"functionResponse": {"name": "g", "response": {"output": "B"}}},
        ],
    }
    assert out["contents"][3] == {"role": "user", "parts": [{"text": "next"}]}


def test_orphan_result_becomes_text_and_is_error_maps_to_error() -> None:
    out = anthropic(
        {
            "model": "gemini-2.5-flash",
            "max_tokens": 5,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t", "content": "boom", "is_error": True},
                        {"type": "tool_result", "tool_use_id": "zzz", "content": "stray"},
                    ],
                },
            ],
        }
    )
    assert out["contents"][2]["parts"] == [{"functionResponse": {"name": "f", "response": {"error": "boom"}}}]
    assert out["contents"][3]["parts"][0]["text"].endswith("stray")


def test_images_in_tool_results_go_after_the_responses() -> None:
    img = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}}
    out = anthropic(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "shot", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [img]}]},
            ],
        }
    )
    assert out["contents"][2]["parts"] == [{"functionResponse": {"name": "shot", "response": {"output": ""}}}]
    assert out["contents"][3]["parts"] == [{"inlineData": {"mimeType": "image/png", "data": "QUJD"}}]


def test_pdf_and_audio_become_inline_data() -> None:
    parts = [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERg=="}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]
    out = openai(chat({"role": "user", "content": parts}))
    assert out["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
    ]
    doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERg=="}}
    out = anthropic({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [doc]}]})
    assert out["contents"][0]["parts"] == [{"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            chat({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}),
            "messages[0].content[0].image_url.url",
        ),
        (chat(USER, n=2), "n"),
        (chat(USER, tools=[{"type": "custom", "custom": {"name": "x"}}]), "tools[0]"),
        (chat(USER, reasoning_effort="extreme"), "reasoning_effort"),
        (chat({"role": "wizard", "content": "x"}), "messages[0].role"),
        (
            chat(USER, response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
            "response_format.json_schema.schema",
        ),
    ],
)
def test_openai_refusals_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as info:
        openai(body)
    assert info.value.param == param


def test_anthropic_unknown_block_is_refused_with_its_field() -> None:
    body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "container_upload"}]}]}
    with pytest.raises(TranslationError) as info:
        anthropic(body)
    assert info.value.param == "messages[0].content[0].type"


def test_tool_choice_modes() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    for choice, expected in [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "f"}}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ]:
        out = openai(chat(USER, tools=tools, tool_choice=choice))
        assert out["toolConfig"] == {"functionCallingConfig": expected}
        assert out["tools"] == [{"functionDeclarations": [{"name": "f"}]}]
    ant_tools = [{"name": "f", "input_schema": {"type": "object"}}, {"type": "web_search_20250305", "name": "web"}]
    base = {"model": "m", "max_tokens": 1, "messages": [USER], "tools": ant_tools}
    assert anthropic({**base, "tool_choice": {"type": "any"}})["toolConfig"]["functionCallingConfig"] == {"mode": "ANY"}
    with pytest.raises(TranslationError) as info:
        anthropic({**base, "tool_choice": {"type": "tool", "name": "web"}})
    assert info.value.param == "tool_choice.name"


def test_tool_names_gemini_rejects_are_rewritten_and_restored() -> None:
    tr = GeminiTranslator("openai", OPTIONS)
    out = tr.request(chat(USER, tools=[{"type": "function", "function": {"name": "1st tool"}}]))
    name = out["tools"][0]["functionDeclarations"][0]["name"]
    assert name == "_1st_tool"
    assert tr.tool_names.client(name) == "1st tool"


def test_thinking_config_budget_and_levels() -> None:
    out = openai(chat(USER, reasoning_effort="high"))
    assert out["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 4096, "includeThoughts": True}
    out = openai(chat(USER, reasoning_effort="none"))
    assert out["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}
    out = openai({**chat(USER, reasoning_effort="low"), "model": "gemini-3-pro-preview"})
    assert out["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "LOW", "includeThoughts": True}
    base = {"model": "gemini-2.5-pro", "max_tokens": 9000, "messages": [USER]}
    out = anthropic({**base, "thinking": {"type": "enabled", "budget_tokens": 3000}})
    assert out["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 3000, "includeThoughts": True}
    out = anthropic({**base, "model": "gemini-3-flash", "thinking": {"type": "enabled", "budget_tokens": 3000}})
    assert out["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "MEDIUM", "includeThoughts": True}
    assert "thinkingConfig" not in anthropic({**base, "thinking": {"type": "disabled"}})["generationConfig"]


def test_generation_config_fields() -> None:
    out = openai(
        chat(
            USER,
            top_p=0.5,
            seed=7,
            presence_penalty=0.1,
            frequency_penalty=0.2,
            stop=list("abcdefg"),
            response_format={"type": "json_object"},
        )
    )
    assert out["generationConfig"] == {
        "topP": 0.5,
        "stopSequences": ["a", "b", "c", "d", "e"],
        "seed": 7,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "responseMimeType": "application/json",
    }
    out = anthropic({"model": "m", "max_tokens": 3, "top_k": 40, "messages": [USER]})
    assert out["generationConfig"] == {"topK": 40, "maxOutputTokens": 3}


def test_response_format_schema_with_ref_is_inlined() -> None:
    schema = {
        "type": "object",
        "$defs": {"Step": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
        "properties": {"steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}}},
        "required": ["steps"],
        "additionalProperties": False,
    }
    body = chat(USER, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    config = openai(body)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "items": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
            }
        },
        "required": ["steps"],
        "additionalProperties": False,
    }


def test_schema_reduction_rules() -> None:
    warnings: list[str] = []
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "default": "x"},
            "kind": {"const": "a"},
            "maybe": {"type": ["integer", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        },
    }
    assert reduce_schema(schema, "p", warnings) == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "kind": {"enum": ["a"]},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
    assert warnings == [
        "p.properties.name.minLength: not enforced by Gemini, removed",
        "p.properties.tags.uniqueItems: not enforced by Gemini, removed",
    ]


@pytest.mark.parametrize(
    ("schema", "param"),
    [
        (
            {"type": "object", "properties": {"a": {"not": {"type": "string"}}}},
            "tools[0].function.parameters.properties.a.not",
        ),
        (
            {"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"},
            "tools[0].function.parameters.properties.next.$ref",
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
            "tools[0].function.parameters.properties.a.$ref",
        ),
        ({"type": "object", "patternProperties": {"^x": {}}}, "tools[0].function.parameters.patternProperties"),
        (
            {"type": "object", "properties": {"a": {"enum": [True, False]}}},
            "tools[0].function.parameters.properties.a.enum",
        ),
        ({"allOf": [{"type": "object"}, {"required": ["a"]}]}, "tools[0].function.parameters.allOf"),
        ({"type": "object", "x-custom": 1}, "tools[0].function.parameters.x-custom"),
    ],
)
def test_schemas_gemini_cannot_express_are_refused(schema: dict[str, Any], param: str) -> None:
    body = chat(USER, tools=[{"type": "function", "function": {"name": "f", "parameters": schema}}])
    with pytest.raises(TranslationError) as info:
        openai(body)
    assert info.value.param == param
    assert "Gemini cannot express" in info.value.message or "does not resolve" in info.value.message


def test_thought_signatures_round_trip_through_call_ids() -> None:
    signature = "Zml4dHVyZS10aG91Z2h0LXNpZ25hdHVyZQ+/=="[:36]
    call_id = mint_call_id("call_", "resp-1", 0, signature)
    assert split_call_id(call_id) == (call_id.split("__ts_")[0], signature)
    assert all(c.isalnum() or c in "_-" for c in call_id)
    body = chat(
        USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {
                    "id": mint_call_id("call_", "resp-1", 1),
                    "type": "function",
                    "function": {"name": "f", "arguments": "{}"},
                },
            ],
        },
    )
    parts = openai(body)["contents"][1]["parts"]
    assert parts[0] == {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": signature}
    assert "thoughtSignature" not in parts[1]


def test_placeholder_signature_for_unsigned_history_on_gemini_3() -> None:
    call = {"id": "from-openai", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [USER, {"role": "assistant", "content": None, "tool_calls": [call]}]
    out = openai({"model": "gemini-3-pro-preview", "messages": messages})
    assert out["contents"][1]["parts"][0]["thoughtSignature"] == "skip_thought_signature_validator"
    assert (
        "thoughtSignature" not in openai({"model": "gemini-2.5-pro", "messages": messages})["contents"][1]["parts"][0]
    )


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=200), st.text(max_size=20), st.integers(0, 1000))
def test_any_signature_round_trips(signature: str, seed: str, index: int) -> None:
    call_id = mint_call_id("toolu_", seed, index, signature)
    assert all(c.isascii() and (c.isalnum() or c in "_-") for c in call_id)
    assert split_call_id(call_id)[1] == signature


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(_JSON, st.sampled_from(["openai", "anthropic"]))
def test_random_request_bodies_never_crash(messages: Any, client: str) -> None:
    body = {"model": "gemini-2.5-flash", "max_tokens": 5, "messages": messages}
    tr = GeminiTranslator(client, OPTIONS)  # type: ignore[arg-type]
    try:
        tr.request(body)
    except TranslationError:
        pass
