"""Gemini request translation: every refusal names the client's field, and the less common but valid
shapes (legacy function calls, allowed_tools, documents as text, adaptive thinking) translate."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llmroute.formats import TranslationError, TranslationOptions
from asgi_llmroute.formats.gemini import GeminiTranslator, reduce_schema

from ._helpers import HOSTED_TOOL_CHOICE, assert_refused

OPTIONS = TranslationOptions(clock=lambda: 1700000000)
USER = {"role": "user", "content": "hi"}
PNG = "data:image/png;base64,iVBORw0KGgo="


def openai(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return GeminiTranslator("openai", OPTIONS, **kw).request(body)


def anthropic(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return GeminiTranslator("anthropic", OPTIONS, **kw).request(body)


def chat(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-flash", "messages": list(messages), **extra}


def msgs(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "gemini-2.5-flash", "max_tokens": 10, "messages": list(messages), **extra}


def user(*parts: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(parts)}


def fn_tool(name: str = "f") -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}


OPENAI_REFUSALS: list[tuple[Any, str | None, str]] = [
    ([], None, "JSON object"),
    (chat(), "messages", "non-empty"),
    ({"messages": "hi"}, "messages", "non-empty"),
    (chat("hi"), "messages[0]", "objects"),
    (chat({"role": "user", "content": 3}), "messages[0].content", "string or an array"),
    (chat(user("text")), "messages[0].content[0]", "objects"),
    (chat(user({"type": "text", "text": 3})), "messages[0].content[0]", "string 'text'"),
    (chat(user({"type": "refusal"})), "messages[0].content[0]", "string 'refusal'"),
    (
        chat({"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}, USER),
        "messages[0].content[0]",
        "system content parts must be text",
    ),
    (chat(user({"type": "image_url", "image_url": {}})), "messages[0].content[0].image_url.url", "string"),
    (
        chat(user({"type": "image_url", "image_url": "data:image/png,abc"})),
        "messages[0].content[0].image_url.url",
        "base64",
    ),
    (
        chat(user({"type": "image_url", "image_url": {"url": "data:;base64,abc"}})),
        "messages[0].content[0].image_url.url",
        "no media type",
    ),
    (chat(user({"type": "file", "file": {"file_id": "f1"}})), "messages[0].content[0].file", "file_id"),
    (
        chat(user({"type": "file", "file": {"file_data": "data:text/plain,hi"}})),
        "messages[0].content[0].file.file_data",
        "base64",
    ),
    (
        chat(user({"type": "input_audio", "input_audio": {"format": "ogg", "data": "x"}})),
        "messages[0].content[0].input_audio",
        "wav",
    ),
    (
        chat(user({"type": "input_audio", "input_audio": {"format": "wav", "data": ""}})),
        "messages[0].content[0].input_audio.data",
        "non-empty",
    ),
    (chat(user({"type": "video"})), "messages[0].content[0].type", "'video'"),
    (chat(USER, {"role": "assistant", "tool_calls": {}}), "messages[1].tool_calls", "array"),
    (chat(USER, {"role": "assistant", "tool_calls": ["x"]}), "messages[1].tool_calls[0]", "objects"),
    (
        chat(USER, {"role": "assistant", "tool_calls": [{"type": "custom", "id": "c", "custom": {}}]}),
        "messages[1].tool_calls[0].type",
        "only function",
    ),
    (
        chat(USER, {"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}),
        "messages[1].tool_calls[0].function.name",
        "function.name",
    ),
    (
        chat(USER, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}),
        "messages[1].tool_calls[0].id",
        "an id",
    ),
    (chat(USER, {"role": "tool", "content": "r"}), "messages[1].tool_call_id", "tool_call_id"),
    (chat({"role": "system", "content": "s"}), "messages", "at least one"),
    (chat(USER, tools={}), "tools", "array"),
    (chat(USER, tools=["f"]), "tools[0]", "objects"),
    (chat(USER, tools=[{"type": "function", "function": {"name": ""}}]), "tools[0].function.name", "function.name"),
    (chat(USER, tools=[fn_tool()], tool_choice="sometimes"), "tool_choice", "tool_choice"),
    (chat(USER, tools=[fn_tool()], tool_choice={"type": "function", "function": {}}), "tool_choice", "tool_choice"),
    (chat(USER, max_tokens=-1), "max_tokens", "non-negative"),
    (chat(USER, max_completion_tokens=True), "max_completion_tokens", "non-negative"),
    (chat(USER, stop=[1]), "stop", "strings"),
    (chat(USER, seed=1.5), "seed", "integer"),
    (chat(USER, temperature="hot"), "temperature", "number"),
    (chat(USER, frequency_penalty=float("nan")), "frequency_penalty", "number"),
    (chat(USER, response_format="json"), "response_format", "object"),
    (chat(USER, response_format={"type": "grammar"}), "response_format.type", "'grammar'"),
    (chat(USER, reasoning_effort=3), "reasoning_effort", "reasoning_effort"),
]


@pytest.mark.parametrize(("body", "param", "message"), OPENAI_REFUSALS)
def test_openai_refusals_name_the_field(body: Any, param: str | None, message: str) -> None:
    assert_refused(openai, body, param, message)


ANTHROPIC_REFUSALS: list[tuple[Any, str | None, str]] = [
    ("hi", None, "JSON object"),
    (msgs(), "messages", "non-empty"),
    (msgs(3), "messages[0]", "objects"),
    (msgs({"role": "system", "content": "s"}), "messages[0].role", "'system'"),
    (msgs({"role": "user", "content": 3}), "messages[0].content", "string or an array"),
    (msgs(user("x")), "messages[0].content[0]", "objects"),
    (msgs(user({"type": "tool_result", "tool_use_id": 1})), "messages[0].content[0].tool_use_id", "tool_use_id"),
    (
        msgs(user({"type": "tool_result", "tool_use_id": "t", "content": 5})),
        "messages[0].content[0].content",
        "string or an array",
    ),
    (
        msgs(user({"type": "tool_result", "tool_use_id": "t", "content": ["x"]})),
        "messages[0].content[0].content[0]",
        "objects",
    ),
    (msgs(user({"type": "text", "text": None})), "messages[0].content[0]", "string 'text'"),
    (msgs(user({"type": "image"})), "messages[0].content[0].source", "needs a 'source'"),
    (
        msgs(user({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}})),
        "messages[0].content[0].source.url",
        "by URL",
    ),
    (msgs(user({"type": "image", "source": {"type": "magic"}})), "messages[0].content[0].source.type", "'magic'"),
    (
        msgs(user({"type": "image", "source": {"type": "base64", "data": "AA=="}})),
        "messages[0].content[0].source",
        "media type",
    ),
    (
        msgs(user({"type": "document", "source": {"type": "file", "file_id": "f"}})),
        "messages[0].content[0].source",
        "Files API ids",
    ),
    (msgs(USER, {"role": "assistant", "content": 3}), "messages[1].content", "string or an array"),
    (msgs(USER, {"role": "assistant", "content": [1]}), "messages[1].content[0]", "objects"),
    (
        msgs(USER, {"role": "assistant", "content": [{"type": "tool_use", "name": "f"}]}),
        "messages[1].content[0]",
        "id and a name",
    ),
    (msgs(USER, {"role": "assistant", "content": [{"type": "image"}]}), "messages[1].content[0].type", "'image'"),
    (msgs({"role": "user", "content": ""}), "messages", "at least one"),
    (
        msgs(USER, system=[{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]),
        "system",
        "text",
    ),
    (msgs(USER, tools={}), "tools", "array"),
    (msgs(USER, tools=[{"description": "no name"}]), "tools[0].name", "name"),
    (msgs(USER, tool_choice="auto"), "tool_choice", "tool_choice"),
    (
        msgs(USER, **HOSTED_TOOL_CHOICE),
        "tool_choice.name",
        "hosted tool",
    ),
    (msgs(USER, top_k=1.5), "top_k", "integer"),
    (msgs(USER, max_tokens="10"), "max_tokens", "non-negative"),
    (msgs(USER, thinking="on"), "thinking", "object"),
    (msgs(USER, thinking={"type": "enabled", "budget_tokens": -5}), "thinking.budget_tokens", "non-negative"),
    (msgs(USER, thinking={"type": "sometimes"}), "thinking.type", "'sometimes'"),
    (
        msgs(USER, output_config={"format": {"type": "json_schema"}}),
        "output_config.format.json_schema.schema",
        "schema",
    ),
]


@pytest.mark.parametrize(("body", "param", "message"), ANTHROPIC_REFUSALS)
def test_anthropic_refusals_name_the_field(body: Any, param: str | None, message: str) -> None:
    assert_refused(anthropic, body, param, message)


def test_openai_assistant_shapes_legacy_function_call_and_refusal() -> None:
    out = openai(
        chat(
            {"role": "system", "content": [{"type": "text", "text": "be brief"}, {"type": "text", "text": ""}]},
            USER,
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "ok"}],
                "refusal": "no",
                "function_call": {"name": "lookup", "arguments": '{"q": 1}'},
            },
            {"role": "function", "name": "lookup", "content": [{"type": "text", "text": "found"}]},
            {"role": "tool", "tool_call_id": "nobody", "content": None},
        )
    )
    assert out["systemInstruction"] == {"role": "user", "parts": [{"text": "be brief"}]}
    model, responses, orphan = out["contents"][1:]
    assert model == {
        "role": "model",
        "parts": [{"text": "ok"}, {"text": "no"}, {"functionCall": {"name": "lookup", "args": {"q": 1}}}],
    }
    assert responses["parts"] == [{"functionResponse": {"name": "lookup", "response": {"output": "found"}}}]
    assert orphan == {"role": "user", "parts": [{"text": "Tool result (nobody): "}]}


def test_openai_media_shapes() -> None:
    out = openai(
        chat(
            user(
                {"type": "image_url", "image_url": PNG},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}},
                {"type": "input_audio", "input_audio": {"format": "mp3", "data": "SUQz"}},
                {"type": "text", "text": ""},
            )
        )
    )
    assert out["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
        {"inlineData": {"mimeType": "audio/mp3", "data": "SUQz"}},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [fn_tool("f")]}},
            {"mode": "ANY", "allowedFunctionNames": ["f"]},
        ),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [fn_tool("g"), "junk"]}},
            {"mode": "VALIDATED", "allowedFunctionNames": ["g"]},
        ),
        ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}}, {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "g"}}, {"mode": "ANY", "allowedFunctionNames": ["g"]}),
    ],
)
def test_openai_allowed_tools_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    out = openai(chat(USER, tools=[fn_tool("f"), fn_tool("g")], tool_choice=choice))
    assert out["toolConfig"] == {"functionCallingConfig": expected}


def test_openai_generation_config_and_dropped_fields() -> None:
    tr = GeminiTranslator("openai", OPTIONS)
    out = tr.request(
        chat(
            USER,
            stop=[f"s{i}" for i in range(7)],
            seed=7,
            presence_penalty=0.5,
            response_format={"type": "json_object"},
            reasoning_effort="none",
            logprobs=True,
            user="u1",
            parallel_tool_calls=False,  # False is the default: no warning
        )
    )
    config = out["generationConfig"]
    assert sorted(w.split(":")[0] for w in tr.warnings) == ["logprobs", "stop", "user"]
    assert config["stopSequences"] == ["s0", "s1", "s2", "s3", "s4"]
    assert config["seed"] == 7 and config["presencePenalty"] == 0.5
    assert config["responseMimeType"] == "application/json"
    assert config["thinkingConfig"] == {"thinkingBudget": 0}
    text_format = openai(chat(USER, response_format={"type": "text"}, stop="x"))
    assert text_format["generationConfig"] == {"stopSequences": ["x"]}


def test_anthropic_shapes_documents_thinking_and_hosted_tools() -> None:
    tr = GeminiTranslator("anthropic", OPTIONS)
    out = tr.request(
        msgs(
            user(
                {"type": "document", "source": {"type": "text", "data": "plain doc"}},
                {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "c1"}, "x"]}},
                {"type": "document", "source": {"type": "content", "content": "c2"}},
                {"type": "thinking", "thinking": "skipped"},
            ),
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {}},
                    {"type": "web_search_tool_result", "tool_use_id": "s1", "content": []},
                    {"type": "text", "text": ""},
                    {"type": "tool_use", "id": "c1", "name": "f", "input": "not a dict"},
                ],
            },
            user(
                {
                    "type": "tool_result",
                    "tool_use_id": "c1",
                    "is_error": True,
                    "content": [{"type": "text", "text": "bad"}],
                }
            ),
            system=[{"type": "text", "text": "sys"}],
            tools=[
                {"name": "f", "input_schema": {"type": "object"}},
                {"type": "web_search_20250305", "name": "web_search"},
            ],
            tool_choice={"type": "none"},
            top_k=4,
            thinking={"type": "adaptive"},
        )
    )
    assert out["contents"][0]["parts"] == [{"text": "plain doc"}, {"text": "c1"}, {"text": "c2"}]
    assert out["contents"][1] == {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}
    assert out["contents"][2]["parts"] == [{"functionResponse": {"name": "f", "response": {"error": "bad"}}}]
    assert out["systemInstruction"]["parts"] == [{"text": "sys"}]
    assert out["tools"] == [{"functionDeclarations": [{"name": "f"}]}]  # empty schema: no parameters
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert out["generationConfig"]["topK"] == 4
    assert out["generationConfig"]["thinkingConfig"] == {"thinkingBudget": -1, "includeThoughts": True}
    assert [w for w in tr.warnings if "web_search" in w] == [
        "tools[1]: hosted tool 'web_search_20250305' has no Gemini equivalent, dropped"
    ]


@pytest.mark.parametrize(
    ("thinking", "effort", "expected"),
    [
        ({"type": "adaptive"}, "low", {"thinkingLevel": "LOW", "includeThoughts": True}),
        ({"type": "adaptive"}, None, {"thinkingLevel": "HIGH", "includeThoughts": True}),
        ({"type": "enabled", "budget_tokens": 20000}, None, {"thinkingLevel": "HIGH", "includeThoughts": True}),
        ({"type": "enabled", "budget_tokens": 4000}, None, {"thinkingLevel": "MEDIUM", "includeThoughts": True}),
        ({"type": "disabled"}, None, None),
    ],
)
def test_anthropic_thinking_on_gemini_3(thinking: Any, effort: str | None, expected: Any) -> None:
    body = msgs(USER, thinking=thinking, model="gemini-3-pro-preview")
    if effort:
        body["output_config"] = {"effort": effort}
    out = anthropic(body)
    assert out.get("generationConfig", {}).get("thinkingConfig") == expected


@pytest.mark.parametrize("kind", ["auto", "any"])
def test_anthropic_tool_choice_modes(kind: str) -> None:
    out = anthropic(msgs(USER, tools=[{"name": "f"}], tool_choice={"type": kind}))
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": kind.upper()}}


# -- JSON Schema reduction -------------------------------------------------------------------------

SCHEMA_REFUSALS: list[tuple[Any, str, str]] = [
    ([], "p", "must be an object"),
    ({"properties": {"a": False}}, "p.properties.a", "'false' schema"),
    ({"properties": {"a": 3}}, "p.properties.a", "must be an object"),
    ({"properties": []}, "p.properties", "'properties' must be an object"),
    ({"prefixItems": {}}, "p.prefixItems", "must be an array"),
    ({"anyOf": []}, "p.anyOf", "non-empty array"),
    ({"allOf": [{"type": "string"}], "type": "string"}, "p.allOf", "overlapping"),
    ({"required": [1]}, "p.required", "array of strings"),
    ({"type": "text"}, "p.type", "unknown JSON Schema type"),
    ({"type": []}, "p.type", "'type' must be"),
    ({"enum": []}, "p.enum", "non-empty array"),
    ({"$ref": "#/$defs/missing"}, "p.$ref", "does not resolve"),
    ({"$defs": {"S": {"type": "string"}}, "$ref": "#/$defs/S", "type": "integer"}, "p.type", "next to a $ref"),
]


@pytest.mark.parametrize(("schema", "param", "message"), SCHEMA_REFUSALS)
def test_schema_refusals(schema: Any, param: str, message: str) -> None:
    with pytest.raises(TranslationError) as info:
        reduce_schema(schema, "p", [])
    assert info.value.param == param
    assert message in info.value.message


def test_schema_nesting_deeper_than_the_limit_is_refused() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(80):
        schema = {"type": "array", "items": schema}
    with pytest.raises(TranslationError) as info:
        reduce_schema(schema, "p", [])
    assert "too deep" in info.value.message
    assert info.value.param == "p" + ".items" * 65  # where the depth limit stopped it


# Each way the reducer recurses, wrapping a schema one level deeper (a $ref chain and $ref siblings too).
_NESTINGS: dict[str, Any] = {
    "properties": lambda s: {"type": "object", "properties": {"a": s}},
    "items": lambda s: {"type": "array", "items": s},
    "tuple items": lambda s: {"type": "array", "items": [s]},
    "prefixItems": lambda s: {"type": "array", "prefixItems": [s]},
    "additionalProperties": lambda s: {"type": "object", "additionalProperties": s},
    "anyOf": lambda s: {"anyOf": [s]},
    "oneOf": lambda s: {"oneOf": [s]},
    "allOf": lambda s: {"allOf": [s]},
    "$ref siblings": lambda s: {"$ref": "#/$defs/leaf", "items": s},
}


def _ref_chain(length: int) -> dict[str, Any]:
    defs = {f"d{i}": {"$ref": f"#/$defs/d{i + 1}"} for i in range(length)}
    defs[f"d{length}"] = {"type": "string"}
    return {"$defs": defs, "$ref": "#/$defs/d0"}


@pytest.mark.parametrize("nesting", [*_NESTINGS, "$ref chain"])
def test_schema_depth_is_bounded_by_the_limit_not_by_pythons_stack(nesting: str) -> None:
    # Accepted and refused schemas alike need far fewer Python frames than the default recursion limit
    # (1000): the depth limit answers first, so reduce_schema never meets a RecursionError.
    import sys

    from asgi_llmroute.formats.gemini.schema import MAX_DEPTH

    def build(depth: int) -> dict[str, Any]:
        if nesting == "$ref chain":
            return _ref_chain(depth)
        schema: dict[str, Any] = {"type": "string"}
        for _ in range(depth):
            schema = _NESTINGS[nesting](schema)
        schema.setdefault("$defs", {"leaf": {"type": "array"}})
        return schema

    def frames() -> int:
        depth, frame = 0, sys._getframe()
        while frame is not None:
            depth, frame = depth + 1, frame.f_back  # type: ignore[assignment]
        return depth

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(frames() + 300)
    try:
        deep = reduce_schema(build(MAX_DEPTH // 2 - 1), "p", [])  # $ref siblings take two levels a step
        with pytest.raises(TranslationError) as info:
            reduce_schema(build(MAX_DEPTH + 1), "p", [])
    finally:
        sys.setrecursionlimit(limit)
    assert isinstance(deep, dict)
    assert "too deep" in info.value.message


def test_schema_shapes_gemini_takes() -> None:
    schema = {
        "$defs": {"Name": {"type": "string", "description": "a name"}},
        "type": "object",
        "properties": {
            "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
            "tuple": {"type": "array", "prefixItems": [True]},
            "extra": {"type": "object", "additionalProperties": {"type": "number"}},
            "closed": {"type": "object", "additionalProperties": False},
            "either": {"oneOf": [{"type": "string"}], "anyOf": [{"type": "null"}]},
            "merged": {"allOf": [{"type": "string", "format": "date"}]},
            "name": {"$ref": "#/$defs/Name", "description": "the user's name"},
            "same": {"type": ["string", "string"]},
            "root": {"$ref": "#/$defs/Name", "title": "t"},
        },
        "required": ["pair"],
    }
    out = reduce_schema(schema, "p", [])
    props = out["properties"]
    assert props["pair"] == {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]}
    assert props["tuple"] == {"type": "array", "prefixItems": [{}]}
    assert props["extra"]["additionalProperties"] == {"type": "number"}
    assert props["closed"]["additionalProperties"] is False
    assert props["either"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert props["merged"] == {"type": "string", "format": "date"}
    assert props["name"] == {"type": "string", "description": "the user's name"}
    assert props["same"] == {"type": "string"}
    assert props["root"] == {"type": "string", "description": "a name", "title": "t"}
    assert out["required"] == ["pair"] and "$defs" not in out
