"""Responses request -> Chat Completions request: the mapping table and the refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_llmroute.formats import ResponsesTranslator, TranslationError, TranslationOptions


def chat(body: dict[str, Any], options: TranslationOptions | None = None) -> dict[str, Any]:
    tr = ResponsesTranslator(options) if options is not None else ResponsesTranslator()
    return tr.request({"model": "m", **body})


WEATHER = {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}

MAPPING: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("string input", {"input": "hi"}, {"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    (
        "instructions become the system message",
        {"instructions": "Be brief.", "input": "hi"},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]},
    ),
    (
        "message items with parts",
        {
            "input": [
                {"role": "developer", "content": "Rules."},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
                        {"type": "input_file", "file_data": "data:application/pdf;base64,QUJD", "filename": "a.pdf"},
                    ],
                },
            ]
        },
        {
            "messages": [
                {"role": "system", "content": "Rules."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
                        {
                            "type": "file",
                            "file": {"file_data": "data:application/pdf;base64,QUJD", "filename": "a.pdf"},
                        },
                    ],
                },
            ]
        },
    ),
    (
        "assistant text, function calls and their outputs",
        {
            "input": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
                },
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"c":"Paris"}'},
                {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"c":"Rome"}'},
                {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
                {
                    "type": "function_call_output",
                    "call_id": "call_2",
                    "output": [{"type": "input_text", "text": "21C"}],
                },
                {"type": "function_call", "call_id": "call_3", "name": "get_weather", "arguments": "{}"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"c":"Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"c":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_3", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
                    ],
                },
            ]
        },
    ),
    (
        "flat function tools become nested, tool_choice and parallel_tool_calls kept",
        {
            "input": "hi",
            "tools": [{**WEATHER, "strict": True}],
            "tool_choice": "required",
            "parallel_tool_calls": False,
        },
        {
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Weather",
                        "parameters": {"type": "object"},
                        "strict": True,
                    },
                }
            ],
            "tool_choice": "required",
            "parallel_tool_calls": False,
        },
    ),
    (
        "named tool_choice",
        {"input": "hi", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"}},
        {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    ),
    (
        "allowed_tools tool_choice",
        {
            "input": "hi",
            "tools": [WEATHER],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "get_weather"}],
            },
        },
        {
            "tool_choice": {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "get_weather"}}],
                },
            }
        },
    ),
    (
        "sampling, cap, reasoning, user and cache key",
        {
            "input": "hi",
            "max_output_tokens": 300,
            "temperature": 0.2,
            "top_p": 0.9,
            "reasoning": {"effort": "low", "summary": "auto"},
            "user": "u1",
            "safety_identifier": "s1",
            "prompt_cache_key": "k",
        },
        {
            "max_completion_tokens": 300,
            "temperature": 0.2,
            "top_p": 0.9,
            "reasoning_effort": "low",
            "user": "u1",
            "safety_identifier": "s1",
            "prompt_cache_key": "k",
        },
    ),
    (
        "json_schema text format",
        {
            "input": "hi",
            "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
        },
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
            }
        },
    ),
    (
        "json_object text format",
        {"input": "hi", "text": {"format": {"type": "json_object"}}},
        {"response_format": {"type": "json_object"}},
    ),
    (
        "stream asks for the usage chunk",
        {"input": "hi", "stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
    ),
]


@pytest.mark.parametrize(("name", "body", "expected"), MAPPING, ids=[m[0] for m in MAPPING])
def test_request_mapping(name: str, body: dict[str, Any], expected: dict[str, Any]) -> None:
    out = chat(body)
    assert {k: out.get(k) for k in expected} == expected


def test_dropped_fields_are_not_sent() -> None:
    out = chat(
        {
            "input": "hi",
            "store": True,
            "metadata": {"a": "b"},
            "truncation": "auto",
            "include": ["reasoning.encrypted_content"],
            "stream_options": {"include_obfuscation": False},
            "max_tool_calls": 3,
            "text": {"format": {"type": "text"}},
        }
    )
    assert out == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_max_tokens_field_option() -> None:
    out = chat({"input": "hi", "max_output_tokens": 5}, TranslationOptions(max_tokens_field="max_tokens"))
    assert out["max_tokens"] == 5 and "max_completion_tokens" not in out


REFUSED: list[tuple[dict[str, Any], str, str | None]] = [
    ({"input": "hi", "previous_response_id": "resp_1"}, "previous_response_id", "previous_response_id"),
    ({"input": "hi", "conversation": "conv_1"}, "conversation", "conversation"),
    ({"input": "hi", "prompt": {"id": "pmpt_1"}}, "prompt", "prompt"),
    ({"input": "hi", "background": True}, "background", "background"),
    ({"input": "hi", "tool_choice": {"type": "web_search_preview"}}, "'web_search_preview'", "tool_choice"),
    ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "'computer_call_output'", "input[0].type"),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
        "file_id",
        "input[0].content[0]",
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}]},
        "file_url",
        "input[0].content[0]",
    ),
    ({"input": [{"role": "tool", "content": "x"}]}, "role", "input[0].role"),
    ({"input": [{"type": "function_call", "name": "f"}]}, "call_id", "input[0].call_id"),
    ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}, "output", "input[0].output"),
    ({"input": []}, "at least one", "input"),
    ({"input": 3}, "'input'", "input"),
    ({"input": "hi", "max_output_tokens": -1}, "max_output_tokens", "max_output_tokens"),
    ({"input": "hi", "instructions": ["x"]}, "instructions", "instructions"),
]


@pytest.mark.parametrize(("body", "fragment", "param"), REFUSED)
def test_untranslatable_requests_are_refused(body: dict[str, Any], fragment: str, param: str | None) -> None:
    with pytest.raises(TranslationError) as info:
        chat(body)
    assert fragment in info.value.message
    assert info.value.param == param


def test_echo_fields_reflect_the_request() -> None:
    tr = ResponsesTranslator()
    tr.request(
        {"model": "m", "input": "hi", "instructions": "I", "tools": [WEATHER], "metadata": {"k": "v"}, "store": True}
    )
    echo = tr.info.echo
    assert echo["instructions"] == "I" and echo["tools"] == [WEATHER] and echo["metadata"] == {"k": "v"}
    assert echo["store"] is False and echo["tool_choice"] == "auto" and echo["parallel_tool_calls"] is True


def test_hosted_tools_are_dropped_with_a_warning() -> None:
    tr = ResponsesTranslator()
    out = tr.request({"model": "m", "input": "hi", "tools": [{"type": "web_search"}, WEATHER, {"type": "file_search"}]})
    assert [t["function"]["name"] for t in out["tools"]] == ["get_weather"]
    assert len(tr.info.warnings) == 2 and "'web_search'" in tr.info.warnings[0]


NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Sub-agents.",
    "tools": [{"type": "function", "name": "close_agent", "parameters": {"type": "object"}}],
}


def test_namespaced_tools_are_function_tools_named_so_they_round_trip() -> None:
    tr = ResponsesTranslator()
    body = {
        "model": "m",
        "tools": [NAMESPACE],
        "input": [
            {"role": "user", "content": "close it"},
            {
                "type": "function_call",
                "call_id": "c1",
                "namespace": "multi_agent_v1",
                "name": "close_agent",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "c1", "output": "closed"},
        ],
    }
    out = tr.request(body)
    assert out["tools"][0]["function"]["name"] == "multi_agent_v1__close_agent"
    assert out["messages"][1]["tool_calls"][0]["function"]["name"] == "multi_agent_v1__close_agent"
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "multi_agent_v1__close_agent", "arguments": "{}"},
                        }
                    ],
                },
            }
        ],
    }
    (item,) = json.loads(tr.response(json.dumps(completion).encode()))["output"]
    assert (item["namespace"], item["name"]) == ("multi_agent_v1", "close_agent")
    tr.request(body)
    stream = tr.stream()
    chunks = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": d, "finish_reason": f}],
        }
        for d, f in [
            (
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "c3",
                            "type": "function",
                            "function": {"name": "multi_agent_v1__close_agent", "arguments": "{}"},
                        }
                    ],
                },
                None,
            ),
            ({}, "tool_calls"),
        ]
    ]
    raw = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    events = (stream.feed(raw) + stream.close()).decode()
    done = [json.loads(line[6:]) for line in events.splitlines() if '"response.output_item.done"' in line]
    assert (done[0]["item"]["namespace"], done[0]["item"]["name"]) == ("multi_agent_v1", "close_agent")


def test_item_references_are_skipped_not_refused() -> None:
    tr = ResponsesTranslator()
    out = tr.request(
        {"model": "m", "input": [{"role": "user", "content": "hi"}, {"type": "item_reference", "id": "rs_1"}]}
    )
    assert out["messages"] == [{"role": "user", "content": "hi"}]
    assert "item_reference" in tr.info.warnings[0]
