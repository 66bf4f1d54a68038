"""Anthropic <-> OpenAI request translation at the edges: refusals name the client's field; media,
documents, orphan tool results, refusals and thinking parts translate as the other side wants."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llmroute.formats import new_translator

from ._helpers import HOSTED_TOOL_CHOICE, OPTIONS, assert_refused

PNG = "iVBORw0KGgo="


def to_openai(body: Any) -> dict[str, Any]:
    return new_translator("anthropic", "openai", OPTIONS).request(body)


def to_anthropic(body: Any) -> dict[str, Any]:
    return new_translator("openai", "anthropic", OPTIONS).request(body)


def msgs(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 10, "messages": list(messages), **extra}


def chat(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages), **extra}


USER = {"role": "user", "content": "hi"}

ANTHROPIC_REFUSALS: list[tuple[Any, str | None, str]] = [
    ([], None, "JSON object"),
    ({"messages": {}}, "messages", "array"),
    (msgs("x"), "messages[0]", "objects"),
    (msgs({"role": "tool", "content": "x"}), "messages[0].role", "'tool'"),
    (msgs({"role": "user", "content": 3}), "messages[0].content", "string or an array"),
    (msgs({"role": "user", "content": [3]}), "messages[0].content[0]", "objects"),
    (msgs({"role": "user", "content": [{"type": "tool_result"}]}), "messages[0].content[0].tool_use_id", "tool_use_id"),
    (
        msgs({"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}),
        "messages[0].content[0]",
        "image sources",
    ),
    (
        msgs({"role": "user", "content": [{"type": "document", "source": {"type": "url"}}]}),
        "messages[0].content[0]",
        "document sources",
    ),
    (msgs({"role": "assistant", "content": 3}), "messages[0].content", "string or an array"),
    (msgs({"role": "assistant", "content": [3]}), "messages[0].content[0]", "objects"),
    (
        msgs({"role": "assistant", "content": [{"type": "tool_use", "id": 1, "name": "f"}]}),
        "messages[0].content[0]",
        "id and name",
    ),
    (msgs(USER, tools={}), "tools", "array"),
    (msgs(USER, tools=[{"input_schema": {}}]), "tools[0].name", "name"),
    (msgs(USER, tools=[{"name": "f"}], tool_choice={"type": "maybe"}), "tool_choice", "unsupported"),
    (
        msgs(USER, **HOSTED_TOOL_CHOICE),
        "tool_choice.name",
        "hosted tool",
    ),
]


@pytest.mark.parametrize(("body", "param", "message"), ANTHROPIC_REFUSALS)
def test_anthropic_client_refusals(body: Any, param: str | None, message: str) -> None:
    assert_refused(to_openai, body, param, message)


def test_anthropic_documents_images_and_tool_results() -> None:
    out = to_openai(
        msgs(
            {"role": "system", "content": [{"type": "text", "text": "mid"}]},
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {"type": "document", "title": "r.pdf", "source": {"type": "base64", "data": "JVBE"}},
                    {"type": "document", "source": {"type": "text", "data": "plain"}},
                    {"type": "document", "source": {"type": "text", "data": ""}},
                    {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "c"}]}},
                    {"type": "search_result", "source": "s"},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "c1", "name": "f"}, {"type": "thinking", "thinking": "x"}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "c1",
                        "content": [
                            {"type": "text", "text": "r"},
                            "junk",
                            {"type": "image", "source": {"type": "base64", "data": PNG}},
                        ],
                    },
                    {"type": "tool_result", "tool_use_id": "stray", "content": "orphan data"},
                    {"type": "tool_result", "tool_use_id": "stray2", "content": None},
                ],
            },
            {"role": "assistant", "content": ""},
        )
    )
    messages = out["messages"]
    assert messages[0] == {"role": "system", "content": "mid"}
    assert messages[1]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        {"type": "file", "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
        {"type": "text", "text": "plain"},
        {"type": "text", "text": "c"},
    ]
    assert messages[2]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "r"}
    # an undeclared result keeps its data as user text; an empty one is dropped
    assert messages[4] == {"role": "user", "content": "orphan data"}
    # the image of the tool result goes in the user message after the tool messages
    assert messages[5] == {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}],
    }
    assert len(messages) == 6  # the empty assistant turn is dropped


def test_anthropic_tool_choice_none_and_hosted_tools_alone() -> None:
    tr = new_translator("anthropic", "openai", OPTIONS)
    out = tr.request(msgs(USER, tools=[{"name": "f"}], tool_choice={"type": "none", "disable_parallel_tool_use": True}))
    assert out["tool_choice"] == "none" and "parallel_tool_calls" not in out
    hosted = to_openai(msgs(USER, tools=[{"type": "web_search_20250305", "name": "web_search"}]))
    assert "tools" not in hosted


OPENAI_REFUSALS: list[tuple[Any, str | None, str]] = [
    (chat("x"), "messages[0]", "objects"),
    (chat(USER, {"role": "assistant", "content": [3]}), "messages[1].content[0]", "objects"),
    (chat(USER, {"role": "assistant", "content": [{"type": "audio"}]}), "messages[1].content[0]", "'audio'"),
    (chat(USER, {"role": "assistant", "tool_calls": ["x"]}), "messages[1].tool_calls[0]", "objects"),
    (
        chat(USER, {"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}),
        "messages[1].tool_calls[0].function.name",
        "function.name",
    ),
    (
        chat(USER, {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}),
        "messages[1].tool_calls[0].id",
        "an id",
    ),
    (
        chat({"role": "user", "content": [{"type": "image_url", "image_url": {}}]}),
        "messages[0].content[0]",
        "must be a string",
    ),
    (
        chat({"role": "user", "content": [{"type": "image_url", "image_url": "data:image/png,xx"}]}),
        "messages[0].content[0]",
        "base64",
    ),
    (
        chat({"role": "user", "content": [{"type": "image_url", "image_url": "data:image/bmp;base64,xx"}]}),
        "messages[0].content[0]",
        "image/bmp",
    ),
    (
        chat({"role": "user", "content": [{"type": "image_url", "image_url": "ftp://x"}]}),
        "messages[0].content[0]",
        "http(s) URL",
    ),
    (chat({"role": "user", "content": [{"type": "file"}]}), "messages[0].content[0]", "'file' object"),
    (
        chat({"role": "user", "content": [{"type": "file", "file": {"file_data": "data:text/csv;base64,YQ=="}}]}),
        "messages[0].content[0]",
        "text/csv",
    ),
    (chat({"role": "user", "content": [{"type": "text", "text": None}]}), "messages[0].content[0]", "string 'text'"),
    (chat({"role": "user", "content": [{"type": "input_audio"}]}), "messages[0].content[0]", "audio input"),
]


@pytest.mark.parametrize(("body", "param", "message"), OPENAI_REFUSALS)
def test_openai_client_refusals(body: Any, param: str | None, message: str) -> None:
    assert_refused(to_anthropic, body, param, message)


def test_openai_assistant_parts_refusals_thinking_and_media() -> None:
    out = to_anthropic(
        chat(
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:application/pdf;base64,JVBE"}},
                    {"type": "file", "file": {"file_data": f"data:image/png;base64,{PNG}"}},
                    {"type": "file", "file": {"file_data": "JVBE", "filename": "a.pdf"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "text", "text": "answer"},
                    {"type": "refusal", "refusal": ""},
                ],
                "refusal": "I won't",
            },
            {"role": "user", "content": "next"},
            reasoning_effort="low",  # thinking on: the signed thinking of earlier turns goes back
        )
    )
    user, assistant, _ = out["messages"]
    assert out["thinking"]["type"] in ("enabled", "adaptive")
    assert [b["type"] for b in user["content"]] == ["document", "image", "document"]
    assert user["content"][2]["title"] == "a.pdf"
    assert assistant["content"] == [
        {"type": "thinking", "thinking": "t", "signature": "s"},
        {"type": "text", "text": "answer"},
        {"type": "text", "text": "I won't"},
    ]


def test_openai_orphan_tool_results_become_text_and_prefill_whitespace_is_trimmed() -> None:
    out = to_anthropic(
        chat(
            USER,
            {"role": "tool", "tool_call_id": "nobody", "content": [{"type": "text", "text": "data"}]},
            {"role": "assistant", "content": "  "},
        )
    )
    assert out["messages"][-1]["role"] == "user"  # the blank prefill is dropped
    texts = [b["text"] for b in out["messages"][0]["content"] if b.get("type") == "text"]
    assert "data" in texts
