"""Hosted web search: chat ``web_search_options`` and Responses ``web_search`` tools <-> Anthropic's server tool,
and Anthropic's searches and citations back as annotations, ``web_search_calls`` and ``web_search_call`` items."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_llmroute.formats import ResponsesTranslator, TranslationError, TranslationOptions, new_translator
from asgi_llmroute.formats.accounting import accounting_from_anthropic
from asgi_llmroute.formats.sse import SSEParser
from asgi_llmroute.formats.web_search import openai_search_model, responses_annotation, search_query

OPTIONS = TranslationOptions(clock=lambda: 1)
SEARCHING = TranslationOptions(clock=lambda: 1, web_search_calls=True)
USER = [{"role": "user", "content": "Weather in Paris?"}]
CITATION = {
    "type": "web_search_result_location",
    "url": "https://weather.example/paris",
    "title": "Paris weather",
    "encrypted_index": "Eo8BCi",
    "cited_text": "Paris: 18C, sunny",
}
RESULT = {
    "type": "web_search_tool_result",
    "tool_use_id": "srvtoolu_01",
    "content": [
        {
            "type": "web_search_result",
            "url": "https://weather.example/paris",
            "title": "Paris weather",
            "encrypted_content": "EqgfCio",
            "page_age": "1 hour ago",
        }
    ],
}
#: An Anthropic answer that searched once and cites the result ("I'll search for that." is 21 characters).
MESSAGE: dict[str, Any] = {
    "id": "msg_ws1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "text", "text": "I'll search for that."},
        {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "paris weather"}},
        RESULT,
        {"type": "text", "text": "It is "},
        {"type": "text", "text": "18C and sunny", "citations": [CITATION]},
        {"type": "text", "text": " in Paris."},
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 100, "output_tokens": 20, "server_tool_use": {"web_search_requests": 1}},
}
ANNOTATION = {
    "type": "url_citation",
    "url_citation": {
        "url": "https://weather.example/paris",
        "title": "Paris weather",
        "start_index": 27,
        "end_index": 40,
    },
}


def _sse(obj: dict[str, Any]) -> str:
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n"


def anthropic_stream(message: dict[str, Any] = MESSAGE) -> bytes:
    """``message`` as Anthropic streams it (citations as citations_delta, inputs as input_json_delta)."""
    start = {**message, "content": [], "stop_reason": None, "usage": {"input_tokens": 100, "output_tokens": 1}}
    out = [_sse({"type": "message_start", "message": start})]
    for i, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            out.append(_sse({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}))
            for citation in block.get("citations", []):
                delta = {"type": "citations_delta", "citation": citation}
                out.append(_sse({"type": "content_block_delta", "index": i, "delta": delta}))
            delta = {"type": "text_delta", "text": block["text"]}
            out.append(_sse({"type": "content_block_delta", "index": i, "delta": delta}))
        elif kind == "server_tool_use":
            out.append(_sse({"type": "content_block_start", "index": i, "content_block": {**block, "input": {}}}))
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            out.append(_sse({"type": "content_block_delta", "index": i, "delta": delta}))
        else:
            out.append(_sse({"type": "content_block_start", "index": i, "content_block": block}))
        out.append(_sse({"type": "content_block_stop", "index": i}))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    out.append(_sse({"type": "message_delta", "delta": delta, "usage": {"output_tokens": 20, **_server(message)}}))
    out.append(_sse({"type": "message_stop"}))
    return "".join(out).encode()


def _server(message: dict[str, Any]) -> dict[str, Any]:
    usage = message["usage"]
    return {"server_tool_use": usage["server_tool_use"]} if "server_tool_use" in usage else {}


def chunks(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in SSEParser().feed(raw) if e.data != "[DONE]"]


# -- requests ----------------------------------------------------------------------------------------


def test_web_search_options_become_anthropics_server_tool() -> None:
    tr = new_translator("openai", "anthropic", OPTIONS)
    body = tr.request(
        {
            "model": "claude",
            "messages": USER,
            "web_search_options": {
                "search_context_size": "high",
                "user_location": {"type": "approximate", "approximate": {"city": "Paris", "country": "FR", "x": 1}},
                "filters": {"allowed_domains": ["weather.example", 3]},
                "max_uses": 2,
            },
        }
    )
    assert body["tools"] == [
        {
            "type": "web_search_20250305",
            "name": "web_search",
            "max_uses": 2,
            "allowed_domains": ["weather.example"],
            "user_location": {"type": "approximate", "city": "Paris", "country": "FR"},
        }
    ]
    assert "tool_choice" not in body
    assert tr.context.warnings == [
        "web_search_options.search_context_size dropped: Anthropic's web search has no such setting"
    ]


def test_a_client_function_named_web_search_keeps_its_name() -> None:
    tr = new_translator("openai", "anthropic", OPTIONS)
    function = {"type": "function", "function": {"name": "web_search", "parameters": {"type": "object"}}}
    body = tr.request({"model": "claude", "messages": USER, "tools": [function], "web_search_options": {}})
    renamed, server = body["tools"]
    assert server == {"type": "web_search_20250305", "name": "web_search"}
    assert renamed["name"].startswith("web_search_") and renamed["name"] != "web_search"
    answer = {**MESSAGE, "content": [{"type": "tool_use", "id": "toolu_1", "name": renamed["name"], "input": {}}]}
    message = json.loads(tr.response(json.dumps(answer).encode()))["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["name"] == "web_search"


def test_tool_choice_forcing_the_web_search() -> None:
    tr = new_translator("openai", "anthropic", OPTIONS)
    body = tr.request(
        {"model": "claude", "messages": USER, "web_search_options": {}, "tool_choice": {"type": "web_search"}}
    )
    assert body["tool_choice"] == {"type": "tool", "name": "web_search"}
    with pytest.raises(TranslationError, match="web search") as info:
        new_translator("openai", "anthropic", OPTIONS).request(
            {"model": "claude", "messages": USER, "tool_choice": {"type": "web_search"}}
        )
    assert info.value.param == "tool_choice"
    with pytest.raises(TranslationError, match="web_search_options must be an object"):
        new_translator("openai", "anthropic", OPTIONS).request(
            {"model": "claude", "messages": USER, "web_search_options": "on"}
        )


@pytest.mark.parametrize("kind", ["web_search", "web_search_preview", "web_search_2025_08_26"])
def test_responses_hosted_web_search_for_the_anthropic_translation(kind: str) -> None:
    tr = ResponsesTranslator(OPTIONS)
    tool = {
        "type": kind,
        "filters": {"allowed_domains": ["weather.example"]},
        "user_location": {"type": "approximate", "city": "Paris", "timezone": "Europe/Paris"},
        "search_context_size": "low",
        "external_web_access": False,
    }
    chat = tr.request(
        {"model": "m", "input": "hi", "tools": [tool, {"type": kind}], "tool_choice": {"type": kind}},
        web_search="extended",
    )
    assert chat["web_search_options"] == {
        "search_context_size": "low",
        "user_location": {"type": "approximate", "approximate": {"city": "Paris", "timezone": "Europe/Paris"}},
        "filters": {"allowed_domains": ["weather.example"]},
        "external_web_access": False,
    }
    assert chat["tool_choice"] == {"type": "web_search"} and "tools" not in chat
    assert tr.info.warnings == ["tools[1]: a second web search tool dropped"]
    anthropic = new_translator("openai", "anthropic", OPTIONS)
    body = anthropic.request(chat)
    assert body["tools"][0]["allowed_domains"] == ["weather.example"]
    assert body["tool_choice"] == {"type": "tool", "name": "web_search"}
    assert any("external_web_access" in w for w in anthropic.context.warnings)


def test_responses_hosted_web_search_for_an_openai_search_model() -> None:
    tr = ResponsesTranslator(OPTIONS)
    tool = {"type": "web_search", "filters": {"allowed_domains": ["a.example"]}, "external_web_access": False}
    chat = tr.request(
        {"model": "m", "input": "hi", "tools": [tool], "tool_choice": {"type": "web_search"}}, web_search="standard"
    )
    assert chat["web_search_options"] == {} and "tool_choice" not in chat
    assert [w.split(" ")[0] for w in tr.info.warnings] == ["tools[0].filters", "tools[0].external_web_access"]
    assert openai_search_model("gpt-4o-search-preview") and openai_search_model("gpt-5-search-api")
    assert not openai_search_model("gpt-5") and not openai_search_model("research-model") and not openai_search_model(3)


def test_responses_hosted_web_search_dropped_without_an_equivalent() -> None:
    tr = ResponsesTranslator(OPTIONS)
    chat = tr.request({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]})
    assert "web_search_options" not in chat and "tools" not in chat
    assert tr.info.warnings == ["tools[0]: hosted tool 'web_search' dropped: this model's provider cannot run it"]
    with pytest.raises(TranslationError, match="web_search"):
        ResponsesTranslator(OPTIONS).request({"model": "m", "input": "hi", "tool_choice": {"type": "web_search"}})


def test_web_search_call_input_items_are_skipped() -> None:
    tr = ResponsesTranslator(OPTIONS)
    chat = tr.request(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "news?"},
                {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}},
                {"role": "assistant", "content": [{"type": "output_text", "text": "Here."}]},
                {"role": "user", "content": "more"},
            ],
        },
        web_search="extended",
    )
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant", "user"]
    assert tr.info.warnings == ["input[1]: web_search_call item skipped: searches are not sent back"]


# -- answers -----------------------------------------------------------------------------------------


def test_citations_become_chat_annotations() -> None:
    tr = new_translator("openai", "anthropic", OPTIONS)
    tr.request({"model": "claude", "messages": USER, "web_search_options": {}})
    message = json.loads(tr.response(json.dumps(MESSAGE).encode()))["choices"][0]["message"]
    assert message["content"] == "I'll search for that.It is 18C and sunny in Paris."
    assert message["annotations"] == [ANNOTATION]
    assert message["content"][27:40] == "18C and sunny"
    assert "web_search_calls" not in message  # only for the Responses translation
    assert tr.usage is not None and tr.usage["web_search_requests"] == 1


def test_web_search_calls_extension_in_json() -> None:
    tr = new_translator("openai", "anthropic", SEARCHING)
    tr.request({"model": "claude", "messages": USER, "web_search_options": {}})
    failed = {**RESULT, "tool_use_id": "srvtoolu_02", "content": {"type": "web_search_tool_result_error"}}
    second = {"type": "server_tool_use", "id": "srvtoolu_02", "name": "web_search", "input": {"query": "again"}}
    answer = {**MESSAGE, "content": [*MESSAGE["content"], second, failed]}
    message = json.loads(tr.response(json.dumps(answer).encode()))["choices"][0]["message"]
    assert message["web_search_calls"] == [
        {"id": "srvtoolu_01", "status": "completed", "query": "paris weather"},
        {"id": "srvtoolu_02", "status": "failed", "query": "again"},
    ]


def test_stream_annotations_and_web_search_calls() -> None:
    tr = new_translator("openai", "anthropic", SEARCHING)
    tr.request({"model": "claude", "messages": USER, "web_search_options": {}, "stream": True})
    stream = tr.stream()
    raw = anthropic_stream()
    out = b"".join(stream.feed(raw[i : i + 7]) for i in range(0, len(raw), 7)) + stream.close()
    deltas = [c["choices"][0]["delta"] for c in chunks(out) if c.get("choices")]
    content = "".join(d.get("content") or "" for d in deltas)
    assert content == "I'll search for that.It is 18C and sunny in Paris."
    assert [d["annotations"] for d in deltas if "annotations" in d] == [[ANNOTATION]]
    assert [d["web_search_calls"][0] for d in deltas if "web_search_calls" in d] == [
        {"id": "srvtoolu_01", "status": "in_progress"},
        {"id": "srvtoolu_01", "status": "searching", "query": "paris weather"},
        {"id": "srvtoolu_01", "status": "completed"},
    ]
    assert stream.usage is not None and stream.usage["web_search_requests"] == 1


def test_stream_without_the_extension_keeps_annotations_only() -> None:
    tr = new_translator("openai", "anthropic", OPTIONS)
    tr.request({"model": "claude", "messages": USER, "web_search_options": {}, "stream": True})
    stream = tr.stream()
    out = stream.feed(anthropic_stream()) + stream.close()
    deltas = [c["choices"][0]["delta"] for c in chunks(out) if c.get("choices")]
    assert not any("web_search_calls" in d for d in deltas)
    assert sum("annotations" in d for d in deltas) == 1


def test_helpers_tolerate_odd_values() -> None:
    assert search_query('{"query": "x"}') == "x" and search_query("{not json") == "" and search_query("") == ""
    assert search_query({"query": 3}) == ""
    assert responses_annotation({"type": "file_citation"}) is None
    assert responses_annotation({"type": "url_citation", "url_citation": {"url": 3}}) is None
    odd = {"type": "url_citation", "url_citation": {"url": "u", "start_index": True, "title": None}}
    assert responses_annotation(odd, 5) == {
        "type": "url_citation",
        "start_index": 0,
        "end_index": 0,
        "url": "u",
        "title": "",
    }
    assert (
        accounting_from_anthropic({"server_tool_use": {"web_search_requests": True}}).get("web_search_requests") is None
    )
