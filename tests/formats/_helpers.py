"""Shared helpers for the translation-core tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from asgi_llmroute.formats import SSEParser, TranslationError, TranslationOptions, Translator, new_translator

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "protocols"
CLOCK = 1700000000
OPTIONS = TranslationOptions(clock=lambda: CLOCK)

#: OpenAI client's include_usage assumed by each anthropic/*.expected.openai.sse (fixtures README).
INCLUDE_USAGE = {
    "stream_text_tool_use": True,
    "stream_parallel_tool_use": True,
    "stream_thinking_text": True,
}


def read(rel: str) -> bytes:
    return (FIXTURES / rel).read_bytes()


def sse_pairs(raw: bytes) -> list[tuple[str | None, Any]]:
    """(event name or None, parsed JSON or the raw "[DONE]") for each event of a stream."""
    parser = SSEParser()
    events = parser.feed(raw) + parser.close()
    pairs: list[tuple[str | None, Any]] = []
    for event in events:
        name = None if event.event == "message" else event.event
        data: Any = event.data if event.data == "[DONE]" else json.loads(event.data)
        pairs.append((name, data))
    return pairs


def openai_client(include_usage: bool = False, options: TranslationOptions = OPTIONS, **extra: Any) -> Translator:
    """Translator for an OpenAI client on an Anthropic upstream, after a minimal request."""
    tr = new_translator("openai", "anthropic", options)
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True, **extra}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    tr.request(body)
    return tr


def anthropic_client(thinking: bool = False, options: TranslationOptions = OPTIONS, **extra: Any) -> Translator:
    """Translator for an Anthropic client on an OpenAI upstream, after a minimal request."""
    tr = new_translator("anthropic", "openai", options)
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        **extra,
    }
    if thinking:
        body["thinking"] = {"type": "enabled", "budget_tokens": 2048}
    tr.request(body)
    return tr


def translate_stream(tr: Translator, raw: bytes, reads: list[bytes] | None = None) -> bytes:
    stream = tr.stream()
    pieces = reads if reads is not None else [raw]
    out = b"".join(stream.feed(p) for p in pieces)
    out += stream.close()
    assert stream.done
    return out


def stream_translator_for(name: str) -> Translator:
    """Translator matching a fixture stream (direction from its folder, options per README)."""
    folder, stem = name.split("/")
    if folder == "anthropic":
        return openai_client(include_usage=INCLUDE_USAGE.get(stem.removesuffix(".sse"), False))
    return anthropic_client()


def assert_refused(translate: Callable[[Any], object], body: Any, param: str | None, message: str = "") -> None:
    """``translate(body)`` refuses the request with a TranslationError naming ``param``, its message holding
    ``message``: the one body of the refusal tables' tests."""
    with pytest.raises(TranslationError) as info:
        translate(body)
    assert info.value.param == param
    assert message in info.value.message


#: The tools and tool choice of an Anthropic request naming a hosted (server) tool, which no other API runs.
HOSTED_TOOL_CHOICE = {
    "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    "tool_choice": {"type": "tool", "name": "web_search"},
}
