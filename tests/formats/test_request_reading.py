"""The one home of each request-reading chore: formats/body.py and the tool readers in formats/tools.py,
shared by the Anthropic, OpenAI, Bedrock Converse and Gemini request translators."""

from __future__ import annotations

import math
from typing import Any

import pytest

from asgi_llmroute.formats.body import (
    each_block,
    each_message,
    is_int,
    is_number,
    request_messages,
    single_choice,
    token_cap,
)
from asgi_llmroute.formats.gemini.ids import GeminiToolNames
from asgi_llmroute.formats.tools import (
    ToolNames,
    anthropic_tool_choice,
    anthropic_tools,
    openai_function_tools,
    openai_tool_calls,
    openai_tool_choice,
)
from asgi_llmroute.formats.types import TranslationError


def _param(call: Any) -> str | None:
    with pytest.raises(TranslationError) as info:
        call()
    return info.value.param


def test_numbers_exclude_bools_and_optionally_non_finite() -> None:
    assert is_int(3) and not is_int(True) and not is_int(3.0)
    assert is_number(0.5) and is_number(2) and not is_number(False) and not is_number("1")
    assert is_number(math.inf) and not is_number(math.inf, finite=True) and not is_number(math.nan, finite=True)


def test_request_messages_and_single_choice() -> None:
    assert request_messages({"messages": [{"role": "user"}]}) == [{"role": "user"}]
    assert _param(lambda: request_messages([])) is None  # not an object: no parameter to name
    assert _param(lambda: request_messages({"messages": []})) == "messages"
    assert _param(lambda: request_messages({"messages": "hi"})) == "messages"
    single_choice({"n": 1}, "X")
    single_choice({}, "X")
    with pytest.raises(TranslationError, match="only n=1 is supported by X"):
        single_choice({"n": 2}, "X")


def test_each_message_and_each_block_name_the_bad_entry() -> None:
    assert [p for _, p, _ in each_message([{}, {}])] == ["messages[0]", "messages[1]"]
    assert _param(lambda: list(each_message([{}, "x"]))) == "messages[1]"
    assert [p for p, _ in each_block([{"type": "text"}], "m.content")] == ["m.content[0]"]
    assert _param(lambda: list(each_block("text", "m.content"))) == "m.content"
    assert _param(lambda: list(each_block([{}, 3], "m.content"))) == "m.content[1]"


def test_token_cap_takes_the_first_key_set() -> None:
    assert token_cap({"max_tokens": 5, "max_completion_tokens": 7}, ("max_completion_tokens", "max_tokens")) == 7
    assert token_cap({"max_tokens": 5}, ("max_completion_tokens", "max_tokens")) == 5
    assert token_cap({}, ("max_tokens",)) is None
    assert _param(lambda: token_cap({"max_tokens": -1}, ("max_tokens",))) == "max_tokens"
    assert _param(lambda: token_cap({"max_tokens": True}, ("max_tokens",))) == "max_tokens"


def test_openai_function_tools() -> None:
    fn = {"name": "f", "parameters": {"type": "object"}}
    assert openai_function_tools([{"type": "function", "function": fn}], "X") == [("tools[0]", fn)]
    assert openai_function_tools(None, "X") == []
    assert _param(lambda: openai_function_tools({}, "X")) == "tools"
    assert _param(lambda: openai_function_tools([1], "X")) == "tools[0]"
    with pytest.raises(TranslationError, match="cannot be sent to X"):
        openai_function_tools([{"type": "web_search"}], "X")
    assert _param(lambda: openai_function_tools([{"type": "function", "function": {}}], "X")) == (
        "tools[0].function.name"
    )


def test_openai_tool_calls() -> None:
    calls = [{"id": "c1", "function": {"name": "f", "arguments": '{"a": 1}'}}]
    assert list(openai_tool_calls(calls, "m.tool_calls", "X")) == [("c1", "f", {"a": 1})]
    assert _param(lambda: list(openai_tool_calls([1], "m.tool_calls", "X"))) == "m.tool_calls[0]"
    assert _param(lambda: list(openai_tool_calls([{"type": "custom"}], "t", "X"))) == "t[0].type"
    assert _param(lambda: list(openai_tool_calls([{"id": "c"}], "t", "X"))) == "t[0].function.name"
    assert _param(lambda: list(openai_tool_calls([{"function": {"name": "f"}}], "t", "X"))) == "t[0].id"


def test_openai_tool_choice() -> None:
    assert openai_tool_choice(None) is None
    assert openai_tool_choice("required") == ("required", None)
    assert openai_tool_choice({"type": "function", "function": {"name": "f"}}) == ("function", ["f"])
    allowed = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"function": {"name": "g"}}]}}
    assert openai_tool_choice(allowed) == ("required", ["g"])
    assert openai_tool_choice({"type": "allowed_tools", "allowed_tools": {"tools": []}}) == ("auto", None)
    for bad in ("sometimes", {"type": "function"}, {"type": "allowed_tools"}, {"type": "other"}):
        assert _param(lambda bad=bad: openai_tool_choice(bad)) == "tool_choice"


def test_anthropic_tools_split_custom_and_hosted() -> None:
    tools = [{"name": "a"}, {"type": "web_search_20250305", "name": "web"}, {"type": "custom", "name": "b"}]
    custom, hosted = anthropic_tools(tools)
    assert [(p, t["name"]) for p, t in custom] == [("tools[0]", "a"), ("tools[2]", "b")]
    assert hosted == [("tools[1]", "web_search_20250305", "web")]
    assert anthropic_tools(None) == ([], [])
    assert _param(lambda: anthropic_tools("x")) == "tools"
    assert _param(lambda: anthropic_tools([1])) == "tools[0]"
    assert _param(lambda: anthropic_tools([{"type": "custom"}])) == "tools[0].name"


def test_anthropic_tool_choice() -> None:
    assert anthropic_tool_choice(None, (), "X") is None
    assert anthropic_tool_choice({"type": "any"}, (), "X") == ("any", None)
    assert anthropic_tool_choice({"type": "tool", "name": "f"}, (), "X") == ("tool", "f")
    assert _param(lambda: anthropic_tool_choice("auto", (), "X")) == "tool_choice"
    assert _param(lambda: anthropic_tool_choice({"type": "tool"}, (), "X")) == "tool_choice.name"
    with pytest.raises(TranslationError, match="which X cannot run") as info:
        anthropic_tool_choice({"type": "tool", "name": "web"}, {"web"}, "X")
    assert info.value.param == "tool_choice.name"
    assert _param(lambda: anthropic_tool_choice({"type": "maybe"}, (), "X")) == "tool_choice"


def test_tool_names_rewrite_is_the_only_difference_for_gemini() -> None:
    base, gemini = ToolNames(64), GeminiToolNames()
    assert base.upstream("1-tool") == "1-tool" and gemini.upstream("1-tool") == "_1-tool"
    assert gemini.upstream("a b") == "a_b" and gemini.upstream("a?b").startswith("a_b_")  # collision: hash suffix
    assert gemini.client(gemini.upstream("a?b")) == "a?b"
    assert base.upstream("") == "tool" and gemini.upstream("") == "_"
