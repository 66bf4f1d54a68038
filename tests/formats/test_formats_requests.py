"""Request translation edge cases."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llmroute.formats import TranslationError, TranslationOptions, new_translator

PNG = "iVBORw0KGgo="


def to_anthropic(body: dict[str, Any], **options: Any) -> dict[str, Any]:
    return new_translator("openai", "anthropic", TranslationOptions(**options)).request(body)


def to_openai(body: dict[str, Any], **options: Any) -> dict[str, Any]:
    return new_translator("anthropic", "openai", TranslationOptions(**options)).request(body)


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "claude", "messages": list(messages), **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant_calls(*calls: tuple[str, str, str], content: Any = None) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": content,
        "tool_calls": [{"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in calls],
    }


def tool(call_id: str, content: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]

# -- OpenAI client -> Anthropic upstream -------------------------------------------------------


def test_new_translator_rejects_same_api() -> None:
    with pytest.raises(ValueError):
        new_translator("openai", "openai")


def test_default_and_explicit_max_tokens() -> None:
    assert to_anthropic(chat(user("hi")))["max_tokens"] == 4096
    assert to_anthropic(chat(user("hi")), default_max_tokens=100)["max_tokens"] == 100
    assert to_anthropic(chat(user("hi"), max_tokens=7))["max_tokens"] == 7
    assert to_anthropic(chat(user("hi"), max_tokens=7, max_completion_tokens=9))["max_tokens"] == 9
    with pytest.raises(TranslationError) as info:
        to_anthropic(chat(user("hi"), max_tokens="lots"))
    assert info.value.param == "max_tokens"


def test_system_hoisting_and_joining() -> None:
    out = to_anthropic(
        chat(
            {"role": "system", "content": "A"},
            user("hi"),
            {"role": "developer", "content": "B"},
            {"role": "system", "content": ""},
        )
    )
    assert out["system"] == [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]
    out = to_anthropic(
        chat(
            {"role": "system", "content": [{"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}}]},
            user("hi"),
        )
    )
    assert out["system"] == [{"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}}]
    assert "system" not in to_anthropic(chat(user("hi")))


def test_tool_results_go_first_and_ids_are_sanitised() -> None:
    out = to_anthropic(
        chat(
            user("go"),
            assistant_calls(("functions.Bash:0", "Bash", '{"cmd":"ls"}'), ("functions.Bash:1", "Bash", "")),
            user("note before results"),
            tool("functions.Bash:1", "two"),
            tool("functions.Bash:0", [{"type": "text", "text": "one"}]),
            tools=[{"type": "function", "function": {"name": "Bash"}}],
        )
    )
    assistant, results = out["messages"][1], out["messages"][2]
    assert [b["id"] for b in assistant["content"]] == ["functions_Bash_0", "functions_Bash_1"]
    assert assistant["content"][1]["input"] == {}
    assert [b["type"] for b in results["content"]] == ["tool_result", "tool_result", "text"]
    assert results["content"][0] == {"type": "tool_result", "tool_use_id": "functions_Bash_1", "content": "two"}
    assert results["content"][1]["content"] == [{"type": "text", "text": "one"}]
    assert out["tools"] == [{"name": "Bash", "input_schema": {"type": "object", "properties": {}}}]


def test_missing_tool_result_is_synthesised_and_orphans_become_text() -> None:
    out = to_anthropic(
        chat(
            user("go"),
            assistant_calls(("a", "f", "{}"), ("b", "f", "{}")),
            tool("a", "ok"),
            tool("zzz", "stray result"),
            user("next"),
            tools=TOOLS,
        )
    )
    blocks = out["messages"][2]["content"]
    assert blocks == [
        {"type": "tool_result", "tool_use_id": "a", "content": "ok"},
        {"type": "tool_result", "tool_use_id": "b", "content": "no result was provided"},
        {"type": "text", "text": "stray result"},
        {"type": "text", "text": "next"},
    ]


def test_final_assistant_tool_call_without_results() -> None:
    out = to_anthropic(chat(user("go"), assistant_calls(("a", "f", "{}")), tools=TOOLS))
    assert out["messages"][-1] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "a", "content": "no result was provided"}],
    }


def test_empty_and_whitespace_text_never_sent() -> None:
    out = to_anthropic(
        chat(
            user(""),
            {"role": "assistant", "content": ""},
            user([{"type": "text", "text": "  \n"}]),
            assistant_calls(("a", "f", "{}"), content=""),
            tool("a", ""),
            tools=TOOLS,
        )
    )
    assert out["messages"][0] == {"role": "user", "content": "."}
    assert out["messages"][1]["content"] == [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]
    assert out["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "a"}]


def test_prefill_trailing_whitespace_stripped_and_leading_assistant() -> None:
    out = to_anthropic(chat({"role": "assistant", "content": "Sure:  \n"}))
    assert out["messages"] == [{"role": "user", "content": "."}, {"role": "assistant", "content": "Sure:"}]


def test_unparseable_arguments_kept_visible() -> None:
    out = to_anthropic(chat(user("x"), assistant_calls(("a", "f", "{not json")), tool("a", "r"), tools=TOOLS))
    assert out["messages"][1]["content"][0]["input"] == {"_raw_arguments": "{not json"}


def test_long_and_invalid_tool_names_are_rewritten_and_restored() -> None:
    long_name = "n" * 200
    tr = new_translator("openai", "anthropic")
    out = tr.request(
        chat(
            user("x"),
            assistant_calls(("a", "ns.tool", "{}")),
            tool("a", "ok"),
            tools=[
                {"type": "function", "function": {"name": "ns.tool"}},
                {"type": "function", "function": {"name": "ns_tool"}},
                {"type": "function", "function": {"name": long_name}},
            ],
            tool_choice={"type": "function", "function": {"name": "ns.tool"}},
        )
    )
    names = [t["name"] for t in out["tools"]]
    assert names[1] == "ns_tool" and names[0] != "ns_tool" and names[0].startswith("ns_tool_")
    assert len(names[2]) == 128
    assert out["messages"][1]["content"][0]["name"] == names[0]
    assert out["tool_choice"] == {"type": "tool", "name": names[0]}
    assert tr.context.tool_names.client(names[0]) == "ns.tool"
    assert tr.context.tool_names.client(names[2]) == long_name


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", False, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ({"type": "function", "function": {"name": "f"}}, True, {"type": "tool", "name": "f"}),
        ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}}, None, {"type": "any"}),
    ],
)
def test_tool_choice_mapping(choice: Any, parallel: Any, expected: dict[str, Any]) -> None:
    body = chat(user("x"), tools=TOOLS)
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert to_anthropic(body)["tool_choice"] == expected


def test_tool_choice_without_tools_is_dropped_and_history_tools_declared() -> None:
    assert "tool_choice" not in to_anthropic(chat(user("x"), tool_choice="auto", parallel_tool_calls=False))
    out = to_anthropic(chat(user("x"), assistant_calls(("a", "f", "{}")), tool("a", "ok")))
    assert out["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]
    assert out["tool_choice"] == {"type": "none"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (chat(user("x"), n=2), "n"),
        (
            chat(user([{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}])),
            "messages[0].content[0]",
        ),
        (chat(user("x"), tools=[{"type": "custom", "custom": {"name": "c"}}]), "tools[0]"),
        (chat(user("x"), reasoning_effort="extreme"), "reasoning_effort"),
        (
            chat(user([{"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AA"}}])),
            "messages[0].content[0]",
        ),
        (chat(user([{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}])), "messages[0].content[0]"),
        (chat(user([{"type": "file", "file": {"file_id": "file-1"}}])), "messages[0].content[0]"),
        (chat({"role": "wizard", "content": "x"}), "messages[0].role"),
        (
            chat(user("x"), assistant_calls(("a", "f", "{}")) | {"tool_calls": [{"id": "a", "type": "custom"}]}),
            "messages[1].tool_calls[0].type",
        ),
        ({"model": "m", "messages": []}, "messages"),
        (chat({"role": "system", "content": "only system"}), "messages"),
        (chat(user("x"), tools=TOOLS, tool_choice="sometimes"), "tool_choice"),
    ],
)
def test_untranslatable_requests(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as info:
        to_anthropic(body)
    assert info.value.param == param and info.value.message


def test_n_equal_one_is_fine() -> None:
    assert to_anthropic(chat(user("x"), n=1))["messages"] == [{"role": "user", "content": "x"}]


def test_images_and_documents() -> None:
    out = to_anthropic(
        chat(
            user(
                [
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
                    {"type": "image_url", "image_url": "https://example.com/a.jpg"},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                    },
                ]
            )
        )
    )
    assert out["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            "title": "a.pdf",
        },
    ]


def test_sampling_parameters_and_versions() -> None:
    out = to_anthropic(chat(user("x"), temperature=1.7, top_p=0.5))
    assert out["temperature"] == 1 and "top_p" not in out
    out = to_anthropic(chat(user("x"), top_p=0.5))
    assert out["top_p"] == 0.5
    out = to_anthropic(chat(user("x"), temperature=0.3, top_p=0.5), anthropic_version="2026-10-21")
    assert "temperature" not in out and "top_p" not in out and "top_k" not in out


def test_stop_user_metadata_and_dropped_fields() -> None:
    out = to_anthropic(
        chat(
            user("x"),
            stop="END",
            safety_identifier="sid",
            metadata={"a": "b"},
            seed=1,
            logprobs=True,
            frequency_penalty=0.5,
            presence_penalty=0.1,
            logit_bias={"1": 2},
            service_tier="auto",
            store=True,
            prompt_cache_key="k",
        )
    )
    assert out == {
        "model": "claude",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "x"}],
        "stop_sequences": ["END"],
        "metadata": {"user_id": "sid"},
    }
    assert to_anthropic(chat(user("x"), stop=[" ", "\n", "###"]))["stop_sequences"] == ["###"]
    assert to_anthropic(chat(user("x"), user="u1", safety_identifier="sid"))["metadata"] == {"user_id": "u1"}


@pytest.mark.parametrize(
    ("effort", "budget"),
    [("minimal", 1024), ("low", 1024), ("medium", 2048), ("high", 4096), ("xhigh", 8192), ("max", 16384)],
)
def test_reasoning_effort_to_budget(effort: str, budget: int) -> None:
    out = to_anthropic(chat(user("x"), reasoning_effort=effort, temperature=0.5))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] > budget
    assert "temperature" not in out


def test_reasoning_effort_none_and_adaptive() -> None:
    assert "thinking" not in to_anthropic(chat(user("x"), reasoning_effort="none"))
    out = to_anthropic(chat(user("x"), reasoning_effort="high"), thinking_style="adaptive")
    assert out["thinking"] == {"type": "adaptive"} and out["output_config"] == {"effort": "high"}


def test_explicit_small_max_tokens_with_thinking() -> None:
    out = to_anthropic(chat(user("x"), reasoning_effort="high", max_completion_tokens=3000))
    assert out["thinking"]["budget_tokens"] < 3000 and out["max_tokens"] == 3000
    out = to_anthropic(chat(user("x"), reasoning_effort="high", max_completion_tokens=500))
    assert "thinking" not in out and out["max_tokens"] == 500


def test_thinking_with_forced_tool_choice_is_downgraded() -> None:
    out = to_anthropic(
        chat(user("x"), tools=TOOLS, tool_choice="required", reasoning_effort="low", parallel_tool_calls=False)
    )
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "thinking" in out


def test_thinking_disabled_for_unsigned_tool_continuation() -> None:
    body = chat(
        user("x"),
        assistant_calls(("a", "f", "{}")),
        tool("a", "ok"),
        tools=TOOLS,
        reasoning_effort="high",
        temperature=0.2,
    )
    tr = new_translator("openai", "anthropic")
    out = tr.request(body)
    assert "thinking" not in out and out["temperature"] == 0.2
    assert tr.context.warnings


def test_thinking_blocks_echoed_back_keep_thinking_on() -> None:
    signed = {"type": "thinking", "thinking": "plan", "signature": "c2ln"}
    message = assistant_calls(("a", "f", "{}")) | {
        "thinking_blocks": [signed, {"type": "thinking", "thinking": "x"}],
        "reasoning_content": "plan",
    }
    out = to_anthropic(chat(user("x"), message, tool("a", "ok"), tools=TOOLS, reasoning_effort="high"))
    assert out["thinking"]["type"] == "enabled"
    assert out["messages"][1]["content"][0] == signed
    assert [b["type"] for b in out["messages"][1]["content"]] == ["thinking", "tool_use"]
    # without thinking the echoed blocks are not needed and are dropped
    out = to_anthropic(chat(user("x"), message, tool("a", "ok"), tools=TOOLS))
    assert [b["type"] for b in out["messages"][1]["content"]] == ["tool_use"]


def test_response_format_json_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    out = to_anthropic(
        chat(user("x"), response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}})
    )
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_stream_flags() -> None:
    tr = new_translator("openai", "anthropic")
    assert tr.request(chat(user("x"), stream=True))["stream"] is True
    assert tr.context.stream and not tr.context.include_usage
    tr.request(chat(user("x"), stream=True, stream_options={"include_usage": True}))
    assert tr.context.include_usage


def test_legacy_function_call_history() -> None:
    out = to_anthropic(
        chat(
            user("x"),
            {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"a":1}'}},
            {"role": "function", "name": "f", "content": "done"},
        )
    )
    assert out["messages"][1]["content"][0]["type"] == "tool_use"
    assert out["messages"][2]["content"][0]["tool_use_id"] == out["messages"][1]["content"][0]["id"]


# -- Anthropic client -> OpenAI upstream -------------------------------------------------------


def msgs(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt", "max_tokens": 50, "messages": list(messages), **extra}


def test_tool_result_with_error_and_image_and_text_before() -> None:
    out = to_openai(
        msgs(
            user("go"),
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
            user(
                [
                    {"type": "text", "text": "look:"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "partial"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                        ],
                    },
                ]
            ),
        )
    )
    assert out["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}],
    }
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "t1", "content": "Error: partial"}
    assert out["messages"][3] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "look:"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ],
    }


def test_anthropic_request_tools_hosted_and_long_names() -> None:
    long_name = "t" * 100
    tr = new_translator("anthropic", "openai")
    out = tr.request(
        msgs(
            user("x"),
            tools=[
                {"name": long_name, "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
                {"type": "web_search_20250305", "name": "web_search"},
            ],
            tool_choice={"type": "any", "disable_parallel_tool_use": True},
        )
    )
    assert len(out["tools"]) == 1
    name = out["tools"][0]["function"]["name"]
    assert len(name) == 64 and tr.context.tool_names.client(name) == long_name
    assert out["tools"][0]["function"]["parameters"] == {"type": "object"}
    assert out["tool_choice"] == "required" and out["parallel_tool_calls"] is False
    with pytest.raises(TranslationError):
        to_openai(
            msgs(
                user("x"),
                tools=[{"type": "web_search_20250305", "name": "web_search"}],
                tool_choice={"type": "tool", "name": "web_search"},
            )
        )


def test_anthropic_request_misc_fields() -> None:
    out = to_openai(
        msgs(
            user("x"),
            system="sys",
            stop_sequences=["a", "b", "c", "d", "e"],
            top_k=5,
            temperature=0.5,
            metadata={"user_id": "u"},
            thinking={"type": "enabled", "budget_tokens": 5000},
            stream=True,
            output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
            service_tier="auto",
        ),
        max_tokens_field="max_tokens",
    )
    assert out["messages"][0] == {"role": "system", "content": "sys"}
    assert out["stop"] == ["a", "b", "c", "d"]
    assert out["max_tokens"] == 50 and "max_completion_tokens" not in out
    assert out["reasoning_effort"] == "high" and "temperature" not in out and "top_k" not in out
    assert out["user"] == "u" and out["stream_options"] == {"include_usage": True}
    assert out["response_format"]["json_schema"]["schema"] == {"type": "object"}
    out = to_openai(
        msgs(user("x"), thinking={"type": "enabled", "budget_tokens": 5000}, temperature=0.5),
        send_reasoning_effort=False,
    )
    assert "reasoning_effort" not in out and out["temperature"] == 0.5


@pytest.mark.parametrize(("budget", "effort"), [(1024, "low"), (2048, "medium"), (4096, "high"), (500, "minimal")])
def test_thinking_budget_to_effort(budget: int, effort: str) -> None:
    out = to_openai(msgs(user("x"), thinking={"type": "enabled", "budget_tokens": budget}))
    assert out["reasoning_effort"] == effort


def test_assistant_thinking_dropped_and_documents() -> None:
    out = to_openai(
        msgs(
            user(
                [
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
                        "title": "doc.pdf",
                    },
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}},
                ]
            ),
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "text", "text": "a"},
                    {"type": "text", "text": "b"},
                ],
            },
            {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "x"}]},
        )
    )
    assert out["messages"][0]["content"] == [
        {"type": "file", "file": {"filename": "doc.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "text", "text": "plain"},
    ]
    assert out["messages"][1] == {"role": "assistant", "content": "ab"}
    assert len(out["messages"]) == 2


def test_anthropic_missing_tool_result_is_repaired() -> None:
    out = to_openai(
        msgs(
            user("go"),
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
                    {"type": "tool_use", "id": "t2", "name": "f", "input": {}},
                ],
            },
            user([{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}, {"type": "text", "text": "more"}]),
        )
    )
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "tool", "tool", "user"]
    assert out["messages"][3] == {"role": "tool", "tool_call_id": "t2", "content": "no result was provided"}


def test_anthropic_untranslatable() -> None:
    with pytest.raises(TranslationError):
        to_openai(msgs(user([{"type": "image", "source": {"type": "file", "file_id": "f"}}])))
    with pytest.raises(TranslationError):
        to_openai({"model": "m"})


def test_thinking_only_assistant_turn_dropped_and_turns_remerged() -> None:
    signed = {"type": "thinking", "thinking": "plan", "signature": "c2ln"}
    out = to_anthropic(chat(user("a"), {"role": "assistant", "content": None, "thinking_blocks": [signed]}, user("b")))
    text = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert out["messages"] == [{"role": "user", "content": text}]
