"""Golden tests: every fixture pair of tests/fixtures/protocols (see its README)."""

from __future__ import annotations

import json

import pytest

from asgi_llmroute.formats import SSEParser, TranslationOptions, new_translator

from ._helpers import (
    CLOCK,
    FIXTURES,
    OPTIONS,
    anthropic_client,
    openai_client,
    read,
    sse_pairs,
    stream_translator_for,
    translate_stream,
)

STREAMS = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/stream_*.sse") if ".expected." not in p.name)


def expected_for(rel: str) -> str:
    suffix = ".expected.openai.sse" if rel.startswith("anthropic/") else ".expected.anthropic.sse"
    return rel.removesuffix(".sse") + suffix


def test_all_stream_fixtures_are_covered() -> None:
    assert len(STREAMS) == 12
    for rel in STREAMS:
        assert (FIXTURES / expected_for(rel)).exists()


@pytest.mark.parametrize("rel", STREAMS)
def test_stream_golden(rel: str) -> None:
    out = translate_stream(stream_translator_for(rel), read(rel))
    assert sse_pairs(out) == sse_pairs(read(expected_for(rel)))


@pytest.mark.parametrize("rel", STREAMS)
def test_stream_output_framing(rel: str) -> None:
    """LF only, one data line per event, blank line after each; event lines only for Anthropic."""
    out = translate_stream(stream_translator_for(rel), read(rel))
    assert b"\r" not in out
    assert out.endswith(b"\n\n")
    for frame in out.decode().split("\n\n")[:-1]:
        lines = frame.split("\n")
        if rel.startswith("anthropic/"):  # OpenAI-format client
            assert len(lines) == 1 and lines[0].startswith("data: ")
        else:
            assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: ")
            assert json.loads(lines[1][6:])["type"] == lines[0][7:]


@pytest.mark.parametrize("stem", ["message_text", "message_tool_use"])
def test_anthropic_message_to_openai(stem: str) -> None:
    out = openai_client().response(read(f"anthropic/{stem}.json"))
    assert json.loads(out) == json.loads(read(f"anthropic/{stem}.expected.openai.json"))


@pytest.mark.parametrize("stem", ["completion_text", "completion_tool_calls"])
def test_openai_completion_to_anthropic(stem: str) -> None:
    out = anthropic_client().response(read(f"openai/{stem}.json"))
    assert json.loads(out) == json.loads(read(f"openai/{stem}.expected.anthropic.json"))


@pytest.mark.parametrize(("stem", "status"), [("error_400_invalid_request", 400), ("error_529_overloaded", 529)])
def test_anthropic_error_to_openai(stem: str, status: int) -> None:
    out = openai_client().error(status, read(f"anthropic/{stem}.json"))
    assert json.loads(out) == json.loads(read(f"anthropic/{stem}.expected.openai.json"))


@pytest.mark.parametrize(
    ("stem", "status"),
    [("error_429_rate_limit", 429), ("error_400_context_length", 400), ("error_400_context_length_completion", 400)],
)
def test_openai_error_to_anthropic(stem: str, status: int) -> None:
    out = anthropic_client().error(status, read(f"openai/{stem}.json"))
    assert json.loads(out) == json.loads(read(f"openai/{stem}.expected.anthropic.json"))


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2023-06-01", "requests/openai_chat_request.expected.anthropic.json"),
        ("2026-10-21", "requests/openai_chat_request.expected.anthropic-2026-10-21.json"),
    ],
)
def test_openai_request_to_anthropic(version: str, expected: str) -> None:
    tr = new_translator("openai", "anthropic", TranslationOptions(anthropic_version=version, clock=lambda: CLOCK))
    out = tr.request(json.loads(read("requests/openai_chat_request.json")))
    assert out == json.loads(read(expected))
    assert tr.context.include_usage is True


def test_anthropic_request_to_openai() -> None:
    tr = new_translator("anthropic", "openai", OPTIONS)
    out = tr.request(json.loads(read("requests/anthropic_messages_request.json")))
    assert out == json.loads(read("requests/anthropic_messages_request.expected.openai.json"))


def test_request_translation_does_not_mutate_input() -> None:
    for client, upstream, rel in [
        ("openai", "anthropic", "requests/openai_chat_request.json"),
        ("anthropic", "openai", "requests/anthropic_messages_request.json"),
    ]:
        body = json.loads(read(rel))
        snapshot = json.loads(read(rel))
        new_translator(client, upstream).request(body)  # type: ignore[arg-type]
        assert body == snapshot


def test_sse_edge_cases_fixture() -> None:
    parser = SSEParser()
    events = parser.feed(read("sse/edge_cases.sse")) + parser.close()
    got = [{"event": e.event, "data": e.data, "id": e.id} for e in events]
    assert got == json.loads(read("sse/edge_cases.expected.events.json"))


def test_responses_are_compact_utf8() -> None:
    out = openai_client().response(read("anthropic/message_text.json"))
    assert b"\n" not in out and b": " not in out
    out = anthropic_client().response(read("openai/completion_text.json"))
    assert b"\n" not in out
