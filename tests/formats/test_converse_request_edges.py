"""Anthropic Messages -> Bedrock Converse requests: each refusal names the client's field; media,
tool results, cache points, hosted tools and model-specific fields translate as Converse wants."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from asgi_llmroute.formats import TranslationOptions, UpstreamProtocolError
from asgi_llmroute.formats.bedrock import BedrockTranslator

from ._helpers import assert_refused

OPTIONS = TranslationOptions(clock=lambda: 1700000000)
CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
USER = {"role": "user", "content": "hi"}
PNG = {"type": "base64", "media_type": "image/PNG", "data": "iVBORw0KGgo="}


def converse(body: Any, model: str = CLAUDE, **kw: Any) -> tuple[dict[str, Any], BedrockTranslator]:
    tr = BedrockTranslator("anthropic", "converse", model, OPTIONS, **kw)
    return tr.request(body), tr


def msgs(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 10, "messages": list(messages), **extra}


def user(*blocks: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def result(content: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": "c1", "content": content, **extra}


REFUSALS: list[tuple[Any, str | None, str]] = [
    ([], None, "JSON object"),
    (msgs(), "messages", "non-empty"),
    (msgs("x"), "messages[0].role", "role"),
    (msgs({"role": "system", "content": "x"}), "messages[0].role", "role"),
    (msgs({"role": "user", "content": 1}), "messages[0].content", "string or an array"),
    (msgs(user("x")), "messages[0].content[0]", "objects"),
    (msgs(user({"type": "text", "text": 1})), "messages[0].content[0]", "string 'text'"),
    (msgs(user({"type": "image"})), "messages[0].content[0]", "needs a source"),
    (
        msgs(user({"type": "image", "source": {"type": "base64", "data": "x"}})),
        "messages[0].content[0]",
        "media_type and data",
    ),
    (
        msgs(user({"type": "image", "source": {"type": "url", "url": "https://x"}})),
        "messages[0].content[0]",
        "not supported by Bedrock",
    ),
    (
        msgs(user({"type": "image", "source": {"type": "file", "file_id": "f"}})),
        "messages[0].content[0]",
        "source type 'file'",
    ),
    (
        msgs(user({"type": "image", "source": {"type": "text", "data": "x"}})),
        "messages[0].content[0]",
        "source type 'text'",
    ),
    (
        msgs(user({"type": "image", "source": {**PNG, "media_type": "image/bmp"}})),
        "messages[0].content[0]",
        "image/bmp",
    ),
    (msgs(user({"type": "document", "source": {"type": "text"}})), "messages[0].content[0]", "needs data"),
    (
        msgs(user({"type": "document", "source": {"type": "base64", "media_type": "application/zip", "data": "x"}})),
        "messages[0].content[0]",
        "application/zip",
    ),
    (
        msgs(USER, {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": ""}]}),
        "messages[1].content[0]",
        "id and a name",
    ),
    (msgs(user({"type": "container_upload"})), "messages[0].content[0]", "'container_upload'"),
    (msgs(user({"type": "tool_result", "content": "x"})), "messages[0].content[0]", "tool_use_id"),
    (msgs(user(result(["x"]))), "messages[0].content[0].content[0]", "blocks"),
    (msgs(user(result([{"type": "search_result"}]))), "messages[0].content[0].content[0]", "'search_result'"),
    (msgs(user(result(7))), "messages[0].content[0]", "string or an array"),
    (msgs({"role": "user", "content": " "}), "messages", "at least one"),
    (msgs(USER, system=7), "system", "string or an array"),
    (msgs(USER, system=[{"type": "image"}]), "system[0]", "text"),
    (msgs(USER, tools={}), "tools", "array"),
    (msgs(USER, tools=[1]), "tools[0]", "objects"),
    (msgs(USER, tools=[{"input_schema": {}}]), "tools[0].name", "name"),
    (msgs(USER, tools=[{"name": "f"}], tool_choice="auto"), "tool_choice", "object"),
    (msgs(USER, tools=[{"name": "f"}], tool_choice={"type": "tool"}), "tool_choice.name", "needs a name"),
    (msgs(USER, tools=[{"name": "f"}], tool_choice={"type": "maybe"}), "tool_choice", "'maybe'"),
    (
        msgs(
            USER,
            tools=[{"name": "f"}, {"type": "web_search_20250305", "name": "web_search"}],
            tool_choice={"type": "tool", "name": "web_search"},
        ),
        "tool_choice.name",
        "hosted tool 'web_search'",
    ),
]


@pytest.mark.parametrize(("body", "param", "message"), REFUSALS)
def test_refusals_name_the_field(body: Any, param: str | None, message: str) -> None:
    assert_refused(converse, body, param, message)


def test_media_documents_and_tool_results() -> None:
    out, _ = converse(
        msgs(
            user(
                {"type": "image", "source": PNG, "cache_control": {"type": "ephemeral"}},
                {"type": "document", "title": "Q3 report: final!  (v2)", "source": {"type": "text", "data": "hello"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
                {"type": "text", "text": "  "},
            ),
            {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "f", "input": None}]},
            user(
                {"type": "text", "text": "and"},
                result(
                    [
                        {"type": "text", "text": ""},
                        {"type": "image", "source": PNG},
                        {"type": "document", "source": {"type": "text", "data": "d"}},
                    ],
                    is_error=True,
                ),
                {"type": "tool_result", "tool_use_id": "c2"},
            ),
        )
    )
    first = out["messages"][0]["content"]
    assert first[0] == {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
    assert first[1] == {"cachePoint": {"type": "default"}}
    assert first[2]["document"]["name"] == "Q3 report final (v2) 1"  # single spaces only
    assert first[2]["document"]["format"] == "txt"
    assert base64.b64decode(first[2]["document"]["source"]["bytes"]) == b"hello"
    assert first[3]["document"]["name"] == "document 2" and first[3]["document"]["format"] == "pdf"
    assert out["messages"][1]["content"] == [{"toolUse": {"toolUseId": "c1", "name": "f", "input": {}}}]
    last = out["messages"][2]["content"]
    # tool results go first in their turn, as Converse requires
    assert [next(iter(b)) for b in last] == ["toolResult", "toolResult", "text"]
    error = last[0]["toolResult"]
    assert error["status"] == "error" and [next(iter(p)) for p in error["content"]] == ["image", "document"]
    assert last[1]["toolResult"] == {"toolUseId": "c2", "content": [{"text": ""}]}
    # a tool used in history but not offered is declared, with an empty schema
    assert out["toolConfig"]["tools"][0]["toolSpec"]["name"] == "f"


def test_thinking_history_hosted_blocks_and_cache_points() -> None:
    out, tr = converse(
        msgs(
            USER,
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "thinking", "thinking": None},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "redacted_thinking", "data": ""},
                    {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
                    {"type": "text", "text": "answer"},
                ],
            },
            {"role": "assistant", "content": "more"},
            system=[
                {"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": " "},
            ],
            tools=[
                {"name": "f", "description": "does f", "strict": True, "cache_control": {"type": "ephemeral"}},
                {"type": "web_search_20250305", "name": "web_search"},
            ],
            tool_choice={"type": "none"},
        )
    )
    assistant = out["messages"][1]
    assert assistant["role"] == "assistant"  # the two assistant turns are merged into one
    assert assistant["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "hm", "signature": "sig"}}},
        {"reasoningContent": {"reasoningText": {"text": ""}}},
        {"reasoningContent": {"redactedContent": "opaque"}},
        {"text": "answer"},
        {"text": "more"},
    ]
    assert out["system"] == [{"text": "sys"}, {"cachePoint": {"type": "default"}}]
    assert out["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "f",
                    "description": "does f",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                    "strict": True,
                }
            },
            {"cachePoint": {"type": "default"}},
        ]
    }
    assert any("server_tool_use" in w for w in tr.warnings)
    assert any("web_search_20250305" in w for w in tr.warnings)
    assert any("tool_choice none" in w for w in tr.warnings)


def test_conversation_that_opens_with_the_assistant_gets_a_placeholder_user_turn() -> None:
    out, _ = converse(msgs({"role": "assistant", "content": "I start"}, USER, system="be kind"))
    assert out["messages"][0] == {"role": "user", "content": [{"text": "."}]}
    assert out["system"] == [{"text": "be kind"}]


@pytest.mark.parametrize(("choice", "expected"), [({"type": "auto"}, {"auto": {}}), ({"type": "any"}, {"any": {}})])
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    out, _ = converse(msgs(USER, tools=[{"name": "f"}], tool_choice=choice))
    assert out["toolConfig"]["toolChoice"] == expected


def test_claude_only_fields_go_to_additional_fields_on_claude() -> None:
    body = msgs(
        USER,
        thinking={"type": "enabled", "budget_tokens": 1024},
        top_k=5,
        output_config={"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}},
        temperature=3,
        top_p=-1,
        stop_sequences=["x", "", 3],
        additionalModelRequestFields={"top_k": 9},
    )
    out, tr = converse(body, betas=["b1"])
    assert out["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "top_k": 9,  # what the client set explicitly wins
        "output_config": {"effort": "low"},
        "anthropic_beta": ["b1"],
    }
    assert out["inferenceConfig"] == {"maxTokens": 10, "temperature": 1, "topP": 0, "stopSequences": ["x"]}
    assert out["outputConfig"]["textFormat"]["structure"]["jsonSchema"] == {
        "schema": '{"type":"object"}',
        "name": "response",
    }
    assert tr.context.thinking_requested is True


def test_claude_only_fields_are_dropped_with_a_warning_elsewhere() -> None:
    out, tr = converse(
        msgs(USER, thinking={"type": "adaptive"}, top_k=5, output_config={"effort": "low"}), NOVA, betas=["b1"]
    )
    assert "additionalModelRequestFields" not in out
    assert any(w.startswith("thinking dropped") for w in tr.warnings)
    assert any(w.startswith("top_k dropped") for w in tr.warnings)


# -- responses and errors ------------------------------------------------------------------------


def answer(content: Any, stop: str = "end_turn", **extra: Any) -> bytes:
    body = {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop, **extra}
    return json.dumps(body).encode()


def responded(client: str, body: bytes) -> dict[str, Any]:
    tr = BedrockTranslator(client, "converse", CLAUDE, OPTIONS)  # type: ignore[arg-type]
    request: dict[str, Any] = {"model": "m", "messages": [USER]}
    if client == "anthropic":
        request["max_tokens"] = 10
    tr.request(request)
    result: dict[str, Any] = json.loads(tr.response(body))
    return result


@pytest.mark.parametrize("client", ["anthropic", "openai"])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{oops", "invalid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"output": {}}', "no output message"),
        (answer(["text"]), "not an object"),
        (answer([{"toolUse": {"name": "f"}}]), "lacks toolUseId"),
        (answer([], "malformed_model_output"), "malformed_model_output"),
    ],
)
def test_malformed_converse_answers_are_protocol_errors(client: str, body: bytes, message: str) -> None:
    with pytest.raises(UpstreamProtocolError, match=message):
        responded(client, body)


def test_converse_answer_blocks() -> None:
    body = answer(
        [
            {"reasoningContent": {"reasoningText": {"text": "hm", "signature": "sig"}}},
            {"reasoningContent": {"redactedContent": "opaque"}},
            {"reasoningContent": "junk"},
            {"citationsContent": {"content": [{"text": "cited "}, {"text": "text"}, "x"]}},
            {"citationsContent": {}},
            {"image": {"format": "png"}},
            {"text": 5},
            {"toolUse": {"toolUseId": "t1", "name": "f", "input": "not a dict"}},
        ],
        "tool_use",
        usage={"inputTokens": 4, "outputTokens": 2, "cacheReadInputTokens": 1, "cacheWriteInputTokens": True},
        additionalModelResponseFields={"stop_sequence": "END"},
    )
    message = responded("anthropic", body)
    assert message["content"] == [
        {"type": "thinking", "thinking": "hm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "cited text"},
        {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use" and message["stop_sequence"] == "END"
    assert message["usage"] == {
        "input_tokens": 4,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1,
        "output_tokens": 2,
    }


def test_a_malformed_stop_with_content_returns_the_partial_answer() -> None:
    tr = BedrockTranslator("anthropic", "converse", CLAUDE, OPTIONS)
    tr.request(msgs(USER))
    message = json.loads(tr.response(answer([{"text": "partial"}], "malformed_tool_use")))
    assert message["stop_reason"] == "end_turn" and message["content"] == [{"type": "text", "text": "partial"}]
    assert any("partial answer" in w for w in tr.warnings)


@pytest.mark.parametrize(
    ("status", "body", "error_type", "anthropic_type", "message", "code"),
    [
        (
            429,
            b'{"message": "slow down"}',
            "ThrottlingException",
            "rate_limit_error",
            "slow down",
            "ThrottlingException",
        ),
        (
            400,
            b'{"Message": "bad", "__type": "com.amazon#ValidationException"}',
            None,
            "invalid_request_error",
            "bad",
            "ValidationException",
        ),
        (424, b'{"error": {"message": "model said no"}}', None, "api_error", "model said no", None),
        (418, b"", None, "invalid_request_error", "upstream returned HTTP 418", None),
        (500, b"<html>", None, "api_error", "upstream returned HTTP 500", None),
        (503, b'{"code": "ServiceUnavailableException"}', None, "overloaded_error", "upstream returned HTTP 503", None),
    ],
)
def test_bedrock_errors_in_each_client_format(
    status: int, body: bytes, error_type: str | None, anthropic_type: str, message: str, code: str | None
) -> None:
    anthropic_tr = BedrockTranslator("anthropic", "converse", CLAUDE, OPTIONS)
    anthropic_tr.error_type = error_type
    out = json.loads(anthropic_tr.error(status, body))
    assert out["type"] == "error" and out["error"] == {"type": anthropic_type, "message": message}
    openai_tr = BedrockTranslator("openai", "converse", CLAUDE, OPTIONS)
    openai_tr.error_type = error_type
    error = json.loads(openai_tr.error(status, body))["error"]
    assert error["message"] == message and error["code"] == code
