"""Bedrock micro-benchmarks: SigV4 signing per request, event-stream decoding and translation per event.

    python bench/bedrock.py [--seconds 1.0]

- ``sign``: :class:`BedrockSigner` signing one Converse request (2 KiB body, static credentials):
  what each upstream attempt costs on the event loop.
- ``decode``: the gateway's event-stream decoder per event (both CRCs checked), next to botocore's
  ``EventStreamBuffer`` on the same bytes.
- ``translate``: a ConverseStream body -> OpenAI chunks / Anthropic SSE, per event, next to today's
  Anthropic SSE -> OpenAI chunk translation per event (the reference the Bedrock path should match).

Results print as a table (median of 5 runs, microseconds per unit).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asgi_llmroute.formats import BedrockTranslator, EventStreamDecoder, TranslationOptions, new_translator
from asgi_llmroute.formats.eventstream import encode_message
from asgi_llmroute.providers.bedrock_auth import AwsSettings, BedrockSigner

ROOT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
OPTIONS = TranslationOptions(clock=lambda: 1700000000)


def per_unit(fn: Callable[[], object], units: int, seconds: float) -> float:
    """Median microseconds per unit over 5 runs of ``seconds`` each."""
    results = []
    for _ in range(5):
        n = 0
        start = time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / 5:
                break
        results.append(elapsed / (n * units) * 1e6)
    return statistics.median(results)


def converse_stream(events: int) -> bytes:
    """A realistic ConverseStream body: start, ``events`` text deltas, stop, metadata."""

    def frame(kind: str, payload: dict[str, object]) -> bytes:
        headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
        return encode_message(headers, json.dumps(payload, separators=(",", ":")).encode())

    out = frame("messageStart", {"p": "abcdefghijk", "role": "assistant"})
    for i in range(events):
        out += frame(
            "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": f" word{i} and more"}, "p": "abcdef"}
        )
    out += frame("contentBlockStop", {"contentBlockIndex": 0, "p": "ab"})
    out += frame("messageStop", {"p": "abc", "stopReason": "end_turn"})
    usage = {"inputTokens": 10, "outputTokens": events, "totalTokens": 10 + events}
    return out + frame("metadata", {"metrics": {"latencyMs": 1}, "p": "a", "usage": usage})


def anthropic_sse(events: int) -> bytes:
    start: dict[str, Any] = {
        "type": "message_start",
        "message": {
            "id": "m",
            "type": "message",
            "role": "assistant",
            "model": "c",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        },
    }
    parts = [start, {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
    parts += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f" word{i} and more"}}
        for i in range(events)
    ]
    parts += [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": events}},
        {"type": "message_stop"},
    ]
    return "".join(f"event: {p['type']}\ndata: {json.dumps(p)}\n\n" for p in parts).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    s = args.seconds
    rows: list[tuple[str, float, str]] = []

    signer = BedrockSigner(AwsSettings("us-east-1", access_key_id="AKIAEXAMPLE", secret_access_key="secret"))
    from botocore.credentials import Credentials

    signer._resolve_blocking()  # import botocore and its signer once, as the first request would
    frozen = Credentials("AKIAEXAMPLE", "secret").get_frozen_credentials()
    url = (
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    )
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "x" * 2000}]}]}).encode()
    headers = {"host": "bedrock-runtime.us-east-1.amazonaws.com", "content-type": "application/json"}
    rows.append(
        ("sign: SigV4, 2 KiB body", per_unit(lambda: signer.sign("POST", url, headers, body, frozen), 1, s), "request")
    )

    events = 200
    raw = converse_stream(events)
    units = events + 4
    rows.append(
        ("decode: llmroute EventStreamDecoder", per_unit(lambda: EventStreamDecoder().feed(raw), units, s), "event")
    )
    from botocore.eventstream import EventStreamBuffer

    def botocore_decode() -> None:
        buffer = EventStreamBuffer()
        buffer.add_data(raw)
        for _ in buffer:
            pass

    rows.append(("decode: botocore EventStreamBuffer", per_unit(botocore_decode, units, s), "event"))

    def translate(client: str) -> Callable[[], None]:
        def run() -> None:
            tr = BedrockTranslator(client, "converse", "anthropic.claude-x", OPTIONS)  # type: ignore[arg-type]
            tr.request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}], "stream": True})
            stream = tr.stream()
            for i in range(0, len(raw), 1400):  # network-sized reads
                stream.feed(raw[i : i + 1400])
            stream.close()

        return run

    rows.append(("translate: ConverseStream -> OpenAI chunks", per_unit(translate("openai"), units, s), "event"))
    rows.append(("translate: ConverseStream -> Anthropic SSE", per_unit(translate("anthropic"), units, s), "event"))
    sse = anthropic_sse(events)

    def reference() -> None:
        tr = new_translator("openai", "anthropic", OPTIONS)
        tr.request({"model": "m", "messages": [{"role": "user", "content": "q"}], "stream": True})
        stream = tr.stream()
        for i in range(0, len(sse), 1400):
            stream.feed(sse[i : i + 1400])
        stream.close()

    rows.append(("reference: Anthropic SSE -> OpenAI chunks", per_unit(reference, events + 5, s), "event"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  µs/unit  unit")
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:7.2f}  {unit}")


if __name__ == "__main__":
    main()
