"""Canned upstream responses and client request bodies for the benchmark.

The shapes follow what api.openai.com, api.anthropic.com and the Gemini API send (docs/translation.md): OpenAI bodies
pretty-printed with a 2-space indent, Anthropic bodies compact, SSE events separated by a blank line.

Run `python bench/bodies.py DIR` to write them to DIR and print their sizes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Number of SSE chunks (OpenAI, without the final `data: [DONE]`) / events (Anthropic) in a canned stream.
STREAM_EVENTS = 50
#: The same for the long streams served under `/paced/` (one event per HTTP chunk, paced like a model).
PACED_EVENTS = 500

_CREATED = 1700000000
_OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
_ANTHROPIC_MODEL = "claude-sonnet-4-5-20250929"
#: The Gemini model in the upstream's URL paths (and the `modelVersion` of its answers).
GEMINI_MODEL = "gemini-2.5-flash"
_TEXT = (
    "The Eiffel Tower was built for the 1889 World's Fair in Paris and was at first criticised by many "
    "artists, yet it became the symbol of the city and one of the most visited monuments on Earth, with "
    "millions of people climbing its iron stairs every single year to admire the view"
)
_WORDS = _TEXT.split()


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _tokens(n: int) -> list[str]:
    """`n` text deltas that read like a model's output ("The", " Eiffel", " Tower", ...)."""
    return [("" if i == 0 else " ") + _WORDS[i % len(_WORDS)] for i in range(n)]


def openai_completion() -> bytes:
    text = "".join(_tokens(40))
    body = {
        "id": "chatcmpl-bench-json-01",
        "object": "chat.completion",
        "created": _CREATED,
        "model": _OPENAI_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 31,
            "completion_tokens": 40,
            "total_tokens": 71,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_bench00",
    }
    return json.dumps(body, indent=2, ensure_ascii=False).encode()


def openai_stream_chunks(n: int = STREAM_EVENTS) -> list[bytes]:
    """`n` chat.completion.chunk events then `data: [DONE]`, each one SSE event."""
    head = {
        "id": "chatcmpl-bench-stream-01",
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": _OPENAI_MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_bench00",
    }

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return f"data: {_compact({**head, 'choices': [choice], 'obfuscation': 'Xy'})}\n\n".encode()

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    chunks += [chunk({"content": t}, None) for t in _tokens(n - 2)]
    chunks.append(chunk({}, "stop"))
    chunks.append(b"data: [DONE]\n\n")
    assert len(chunks) == n + 1
    return chunks


def anthropic_message() -> bytes:
    text = "".join(_tokens(40))
    body = {
        "id": "msg_bench_json_01",
        "type": "message",
        "role": "assistant",
        "model": _ANTHROPIC_MODEL,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 31,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 40,
            "service_tier": "standard",
        },
    }
    return _compact(body).encode()


def anthropic_stream_events(n: int = STREAM_EVENTS) -> list[bytes]:
    """`n` Messages API events: start, block start, ping, text deltas, block stop, delta, stop."""

    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {_compact(data)}\n\n".encode()

    usage = {
        "input_tokens": 31,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 1,
        "service_tier": "standard",
    }
    message: dict[str, Any] = {
        "id": "msg_bench_stream_01",
        "type": "message",
        "role": "assistant",
        "model": _ANTHROPIC_MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    n_deltas = n - 6
    events = [
        event("message_start", {"type": "message_start", "message": message}),
        event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        b'event: ping\ndata: {"type": "ping"}\n\n',
    ]
    events += [
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
        )
        for t in _tokens(n_deltas)
    ]
    events += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": n_deltas},
            },
        ),
        event("message_stop", {"type": "message_stop"}),
    ]
    assert len(events) == n
    return events


def gemini_stream_events(n: int = STREAM_EVENTS) -> list[bytes]:
    """`n` Gemini `streamGenerateContent?alt=sse` events as the Gemini API sends them: CRLF line ends, `": "`
    separators, cumulative usageMetadata on each, finishReason on the last; the stream ends at EOF."""
    events = []
    texts = _tokens(n)
    for i, text in enumerate(texts):
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if i == len(texts) - 1:
            candidate["finishReason"] = "STOP"
        chunk = {
            "candidates": [candidate],
            "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": i + 1, "totalTokenCount": 32 + i},
            "modelVersion": GEMINI_MODEL,
            "responseId": "bench-gemini-stream-01",
        }
        events.append(b"data: " + json.dumps(chunk, separators=(",", ": ")).encode() + b"\r\n\r\n")
    return events


def gemini_response() -> bytes:
    text = "".join(_tokens(40))
    body = {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": 40, "totalTokenCount": 71},
        "modelVersion": GEMINI_MODEL,
        "responseId": "bench-gemini-json-01",
    }
    return json.dumps(body, indent=2, ensure_ascii=False).encode()


def gemini_request() -> bytes:
    """The `generateContent` body the gateway sends for the clients' requests (the model is in the URL)."""
    body = {
        "contents": [{"role": "user", "parts": [{"text": "Tell me about the Eiffel Tower in one short paragraph."}]}],
        "systemInstruction": {"parts": [{"text": "You are a concise travel assistant."}]},
        "generationConfig": {"maxOutputTokens": 256, "temperature": 0.7},
    }
    return json.dumps(body).encode()


def openai_request(model: str, *, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise travel assistant."},
            {"role": "user", "content": "Tell me about the Eiffel Tower in one short paragraph."},
        ],
        "max_tokens": 256,
        "temperature": 0.7,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def anthropic_request(model: str, *, stream: bool) -> bytes:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 256,
        "system": "You are a concise travel assistant.",
        "messages": [{"role": "user", "content": "Tell me about the Eiffel Tower in one short paragraph."}],
        "temperature": 0.7,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


@dataclass(frozen=True)
class Canned:
    """One canned upstream response: the URL path it is served at, its content type and its parts.

    `parts` has one element for a JSON body and one per SSE event for a stream, so that a pacing upstream
    can write them one by one; nginx serves their concatenation.
    """

    path: str
    content_type: str
    parts: tuple[bytes, ...]
    #: Served by the pacing upstream one event per chunk at its `--paced-interval-ms` (default 1 ms).
    paced: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)


def canned_responses() -> list[Canned]:
    """Everything the fake upstream serves.

    Provider base URLs select the shape: `/json/v1` and `/stream/v1` (OpenAI style), `/json` and `/stream`
    (Anthropic style, the client appends `/v1/messages`), `/json/v1beta` and `/stream/v1beta` (Gemini API
    style, `models/{model}:generateContent` / `:streamGenerateContent`); `/paced/...` holds `PACED_EVENTS`-event
    streams.
    """
    sse = "text/event-stream; charset=utf-8"
    return [
        Canned("/json/v1/chat/completions", "application/json", (openai_completion(),)),
        Canned("/stream/v1/chat/completions", sse, tuple(openai_stream_chunks())),
        Canned("/json/v1/messages", "application/json", (anthropic_message(),)),
        Canned("/stream/v1/messages", sse, tuple(anthropic_stream_events())),
        Canned("/paced/v1/chat/completions", sse, tuple(openai_stream_chunks(PACED_EVENTS)), paced=True),
        Canned("/paced/v1/messages", sse, tuple(anthropic_stream_events(PACED_EVENTS)), paced=True),
        Canned(f"/json/v1beta/models/{GEMINI_MODEL}:generateContent", "application/json", (gemini_response(),)),
        Canned(f"/stream/v1beta/models/{GEMINI_MODEL}:streamGenerateContent", sse, tuple(gemini_stream_events())),
    ]


def write_all(directory: Path) -> dict[str, Path]:
    """Write every canned body under `directory`, at its URL path; return {url path: file}."""
    files: dict[str, Path] = {}
    for canned in canned_responses():
        file = directory / canned.path.lstrip("/")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(canned.body)
        files[canned.path] = file
    return files


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python bench/bodies.py DIR", file=sys.stderr)
        return 2
    for path, file in write_all(Path(argv[0])).items():
        print(f"{path:32} {file.stat().st_size:7,d} bytes  {file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
