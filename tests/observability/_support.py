"""Upstreams that answer like the real APIs (usage included), log capture and metrics parsing."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Send

from asgi_llmroute.logs import JSONFormatter, KeyValueFormatter, RequestIdFilter
from tests.support.servers import Recorded

# What the emulated upstreams count, so tests can expect exact numbers.
OPENAI_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
ANTHROPIC_START_USAGE = {"input_tokens": 13, "output_tokens": 1, "cache_read_input_tokens": 2}
ANTHROPIC_FINAL_USAGE = {"output_tokens": 9}  # cumulative: replaces the 1 of message_start
WORDS = ["Hel", "lo", " the", "re", "!"]


def _sse(obj: Any, event: str | None = None) -> bytes:
    data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
    return (f"event: {event}\n".encode() + data) if event else data


def openai_stream(include_usage: bool, model: str = "gpt-4o-mini") -> bytes:
    """An OpenAI chat stream as the API sends it, with or without ``stream_options.include_usage``."""
    extra: dict[str, Any] = {"usage": None} if include_usage else {}
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""}, None)]
    deltas += [({"content": w}, None) for w in WORDS] + [({}, "stop")]
    out = b"".join(
        _sse({**head, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": f}], **extra})
        for d, f in deltas
    )
    if include_usage:
        out += _sse({**head, "choices": [], "usage": OPENAI_USAGE})
    return out + b"data: [DONE]\n\n"


def anthropic_stream(model: str = "claude-sonnet-4-5") -> bytes:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": []}
    events = [
        _sse({"type": "message_start", "message": {**message, "usage": ANTHROPIC_START_USAGE}}, "message_start"),
        _sse(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        ),
    ]
    events += [
        _sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
            "content_block_delta",
        )
        for w in WORDS
    ]
    events += [
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _sse(
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": ANTHROPIC_FINAL_USAGE},
            "message_delta",
        ),
        _sse({"type": "message_stop"}, "message_stop"),
    ]
    return b"".join(events)


async def openai_api(request: Recorded, send: Send) -> None:
    """Answers ``/v1/chat/completions`` like OpenAI; a model named ``fail-*`` gets a 500."""
    body = request.json()
    if str(body.get("model", "")).startswith("fail"):
        await _reply(send, 500, "application/json", [b'{"error":{"message":"boom","type":"server_error"}}'])
        return
    if body.get("stream"):
        options = body.get("stream_options") or {}
        stream = openai_stream(options.get("include_usage") is True, body["model"])
        await _reply(send, 200, "text/event-stream", [stream[i : i + 50] for i in range(0, len(stream), 50)])
        return
    message = {"role": "assistant", "content": "".join(WORDS), "refusal": None}
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": OPENAI_USAGE,
    }
    await _reply(send, 200, "application/json", [json.dumps(completion).encode()], {"x-request-id": "req_upstream_1"})


async def anthropic_api(request: Recorded, send: Send) -> None:
    """Answers ``/v1/messages`` like Anthropic."""
    body = request.json()
    if body.get("stream"):
        stream = anthropic_stream(body["model"])
        await _reply(send, 200, "text/event-stream", [stream[i : i + 64] for i in range(0, len(stream), 64)])
        return
    usage = {**ANTHROPIC_START_USAGE, **ANTHROPIC_FINAL_USAGE}
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": "".join(WORDS)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    await _reply(send, 200, "application/json", [json.dumps(message).encode()])


async def _reply(
    send: Send, status: int, content_type: str, chunks: list[bytes], headers: dict[str, str] | None = None
) -> None:
    hdrs = [(b"content-type", content_type.encode())] + [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class Capture(logging.Handler):
    """Keeps every record, and each one formatted as JSON and as key=value (for the secret grep)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.addFilter(RequestIdFilter())
        self._json = JSONFormatter()
        self._kv = KeyValueFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self._json.format(record))
        self.lines.append(self._kv.format(record))

    def access(self, count: int = 1) -> list[dict[str, Any]]:
        """The access lines so far, once there are ``count`` (the line follows the response's last byte)."""
        deadline = time.monotonic() + 5
        while True:
            lines = [dict(r.fields) for r in self.records if r.name == "asgi_llmroute.access"]  # type: ignore[attr-defined]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.005)

    def clear(self) -> None:
        self.records.clear()


#: Every line logged during the observability tests (checked for secrets at the end).
ALL_LINES: list[str] = []


@contextmanager
def capture_logs() -> Iterator[Capture]:
    handler = Capture()
    logger = logging.getLogger("asgi_llmroute")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        ALL_LINES.extend(handler.lines)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with exactly ``labels`` (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
