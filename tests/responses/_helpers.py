"""Shared helpers for the Responses API tests."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from asgi_llmroute.formats import ResponsesTranslator, SSEParser, TranslationOptions

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "protocols"
CLOCK = 1700000000
OPTIONS = TranslationOptions(clock=lambda: CLOCK)
EVENT = TypeAdapter(ResponseStreamEvent)
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def read(rel: str) -> bytes:
    return (FIXTURES / rel).read_bytes()


def translator(options: TranslationOptions = OPTIONS, **extra: Any) -> ResponsesTranslator:
    tr = ResponsesTranslator(options)
    tr.request({"model": "m", "input": "hi", "stream": True, **extra})
    return tr


def split(body: bytes, seed: int, pieces: int = 25) -> list[bytes]:
    """``body`` cut at random places (including inside UTF-8 characters and CRLFs)."""
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, pieces)))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


def events(raw: bytes) -> list[dict[str, Any]]:
    """Parse a Responses stream; check the framing rules (event name = type, sequence numbers)."""
    parsed = SSEParser().feed(raw)
    out = []
    for i, event in enumerate(parsed):
        data = json.loads(event.data)
        assert event.event == data["type"]
        assert data["sequence_number"] == i
        out.append(data)
    assert raw.endswith(b"\n\n") or not raw
    assert b"[DONE]" not in raw
    return out


def run(chunks: list[bytes], tr: ResponsesTranslator | None = None) -> bytes:
    stream = (tr or translator()).stream()
    return b"".join(stream.feed(c) for c in chunks) + stream.close()
