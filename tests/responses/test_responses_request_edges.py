"""Responses requests a chat upstream cannot take are refused naming the field; the rarer valid
shapes (assistant refusals, files, allowed_tools, text formats, namespaces) translate."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llmroute.formats import ResponsesTranslator
from tests.formats._helpers import assert_refused


def chat(body: Any) -> dict[str, Any]:
    return ResponsesTranslator().request(body)


def req(**body: Any) -> dict[str, Any]:
    return {"model": "m", "input": "hi", **body}


def msg(content: Any, role: str = "user") -> dict[str, Any]:
    return {"type": "message", "role": role, "content": content}


REFUSALS: list[tuple[Any, str | None, str]] = [
    ([], None, "JSON object"),
    (req(instructions=3), "instructions", "string"),
    (req(input=[]), "input", "at least one message"),
    (req(input=5), "input", "string or an array"),
    (req(input=["hi"]), "input[0]", "objects"),
    (req(input=[msg("x", role="wizard")]), "input[0].role", "'wizard'"),
    (req(input=[msg(5)]), "input[0].content", "string or an array"),
    (req(input=[msg(5, role="assistant")]), "input[0].content", "string or an array"),
    (req(input=[msg([{"type": "output_audio"}], role="assistant")]), "input[0].content[0]", "'output_audio'"),
    (req(input=[msg(["x"])]), "input[0].content[0]", "objects"),
    (req(input=[msg([{"type": "input_text", "text": 1}])]), "input[0].content[0]", "string 'text'"),
    (req(input=[msg([{"type": "input_image", "file_id": "f"}])]), "input[0].content[0]", "image_url"),
    (req(input=[msg([{"type": "input_file", "file_url": "https://x"}])]), "input[0].content[0]", "file_url"),
    (req(input=[msg([{"type": "input_file", "filename": "a.pdf"}])]), "input[0].content[0]", "file_data or file_id"),
    (req(input=[msg([{"type": "input_audio"}])]), "input[0].content[0]", "'input_audio'"),
    (req(input=[{"type": "function_call", "name": "f"}]), "input[0].call_id", "call_id"),
    (req(input=[{"type": "function_call", "call_id": "c"}]), "input[0].name", "'name'"),
    (req(input=[{"type": "function_call_output", "output": "x"}]), "input[0].call_id", "call_id"),
    (
        req(input=[{"type": "function_call_output", "call_id": "c", "output": 3}]),
        "input[0].output",
        "string or an array",
    ),
    (req(input=[{"type": "computer_call"}]), "input[0].type", "'computer_call'"),
    (req(tools={}), "tools", "array"),
    (req(tools=["f"]), "tools[0]", "objects"),
    (req(tools=[{"type": "namespace", "name": "ns"}]), "tools[0]", "namespace tools need"),
    (req(tools=[{"type": "function"}]), "tools[0].name", "'name'"),
    (
        req(tool_choice={"type": "allowed_tools", "tools": [{"type": "web_search"}]}),
        "tool_choice.tools",
        "function tools",
    ),
    (req(tool_choice={"type": "web_search"}), "tool_choice", "'web_search'"),
    (req(tool_choice="sometimes"), "tool_choice", "unsupported"),
    (req(max_output_tokens=-1), "max_output_tokens", "non-negative"),
    (req(text={"format": {"type": "grammar"}}), "text.format", "'grammar'"),
]


@pytest.mark.parametrize(("body", "param", "message"), REFUSALS)
def test_refusals_name_the_field(body: Any, param: str | None, message: str) -> None:
    assert_refused(chat, body, param, message)


def test_assistant_refusals_files_and_tool_outputs() -> None:
    out = chat(
        req(
            instructions="",
            input=[
                msg(
                    [
                        {"type": "input_text", "text": "look"},
                        {"type": "input_image", "image_url": "data:x", "detail": "low"},
                    ]
                ),
                msg([{"type": "refusal", "refusal": "no"}], role="assistant"),
                msg([{"type": "input_file", "file_id": "file-1", "filename": "a.pdf"}]),
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": None},
                {"type": "function_call_output", "call_id": "c1", "output": [{"type": "output_text", "text": "ok"}]},
            ],
        )
    )
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user", "assistant", "tool"]
    assert out["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": "data:x", "detail": "low"}}
    assert out["messages"][1] == {"role": "assistant", "content": None, "refusal": "no"}
    assert out["messages"][2]["content"] == [{"type": "file", "file": {"file_id": "file-1", "filename": "a.pdf"}}]
    assert out["messages"][3]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert out["messages"][4] == {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "ok"}]}


def test_tool_choice_allowed_tools_and_text_options() -> None:
    tools = [{"type": "function", "name": "f"}, {"type": "function", "name": "g"}]
    out = chat(
        req(
            tools=tools,
            parallel_tool_calls=False,
            tool_choice={"type": "allowed_tools", "mode": "weird", "tools": [{"type": "function", "name": "g"}]},
            text={"format": {"type": "json_object"}, "verbosity": "low"},
        )
    )
    assert out["tool_choice"] == {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "g"}}]},
    }
    assert out["parallel_tool_calls"] is False
    assert out["response_format"] == {"type": "json_object"} and out["verbosity"] == "low"
    named = chat(req(text={"format": {"type": "json_schema", "schema": {"type": "object"}, "strict": True}}))
    assert named["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": {"type": "object"}, "strict": True},
    }
    assert "response_format" not in chat(req(text={"format": {"type": "text"}}))
    assert "parallel_tool_calls" not in chat(req(parallel_tool_calls=True))  # no tools: nothing to say


def test_namespace_drops_non_function_members_with_a_warning() -> None:
    tr = ResponsesTranslator()
    out = tr.request(
        req(
            tools=[
                {
                    "type": "namespace",
                    "name": "ns",
                    "tools": [{"type": "web_search"}, {"type": "function", "name": "f"}],
                }
            ]
        )
    )
    assert [t["function"]["name"] for t in out["tools"]] == ["ns__f"]
    assert tr.info.warnings == ["tools[0].tools[0]: only function tools of a namespace can be translated: dropped"]
    assert tr.info.tool_names["ns__f"] == ("ns", "f")
