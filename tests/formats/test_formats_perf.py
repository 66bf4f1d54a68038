"""Hot-path budget: a 50-event stream must translate well under a millisecond of CPU (SPEC brief).

The bound asserted here is deliberately loose (shared CI machines are noisy); it catches
accidental quadratic behaviour or per-event regressions of an order of magnitude.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ._helpers import anthropic_client, openai_client, read

BUDGET_SECONDS = 0.005


def _ant(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


def _best_of(runs: int, fn: Any) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        for _ in range(20):
            fn()
        best = min(best, (time.process_time() - start) / 20)
    return best


def test_anthropic_to_openai_50_events() -> None:
    head = read("anthropic/stream_text.sse").split(b"event: content_block_delta")[0]
    deltas = [
        _ant({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"token {i} "}})
        for i in range(46)
    ]
    tail = (
        _ant({"type": "content_block_stop", "index": 0})
        + _ant({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 50}})
        + _ant({"type": "message_stop"})
    )
    reads = [head, *deltas, tail]
    tr = openai_client(include_usage=True)

    def run() -> None:
        stream = tr.stream()
        for r in reads:
            stream.feed(r)
        stream.close()

    assert _best_of(5, run) < BUDGET_SECONDS


def test_openai_to_anthropic_50_chunks() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    reads = [chunk({"role": "assistant", "content": ""})]
    reads += [chunk({"content": f"token {i} "}) for i in range(47)]
    reads += [chunk({}, "stop"), b"data: [DONE]\n\n"]
    tr = anthropic_client()

    def run() -> None:
        stream = tr.stream()
        for r in reads:
            stream.feed(r)
        stream.close()

    assert _best_of(5, run) < BUDGET_SECONDS
