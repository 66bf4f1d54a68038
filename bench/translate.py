"""CPU per stream event of the pure translators, Gemini upstream beside the Anthropic translation.

    python bench/translate.py [--streams 2000] [--repeat 5]

Feeds canned upstream streams (50 events each, the same text as `bodies.py`) through the
translators in-process, in 1 KiB network reads, and prints the median CPU time per upstream
event. This isolates the translation core from the server and the network: the gateway-level
scenarios are in `run.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asgi_llmroute.formats import StreamTranslator, new_translator
from bench.bodies import STREAM_EVENTS, _tokens, anthropic_stream_events, openai_stream_chunks

_REQUEST: dict[str, Any] = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def gemini_stream_events() -> list[bytes]:
    """`STREAM_EVENTS` Gemini SSE events as the Gemini API sends them (CRLF, `": "` separators)."""
    events = []
    texts = _tokens(STREAM_EVENTS)
    for i, text in enumerate(texts):
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if i == len(texts) - 1:
            candidate["finishReason"] = "STOP"
        chunk = {
            "candidates": [candidate],
            "usageMetadata": {"promptTokenCount": 31, "candidatesTokenCount": i + 1, "totalTokenCount": 32 + i},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "bench-gemini-stream-01",
        }
        events.append(b"data: " + json.dumps(chunk, separators=(",", ": ")).encode() + b"\r\n\r\n")
    return events


def reads(events: list[bytes], size: int = 1024) -> list[bytes]:
    raw = b"".join(events)
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def scenario(client: str, upstream: str, events: list[bytes]) -> Callable[[], StreamTranslator]:
    def make() -> StreamTranslator:
        tr = new_translator(client, upstream)  # type: ignore[arg-type]
        body = dict(_REQUEST, stream=True)
        if client == "openai":
            body.pop("max_tokens")
        tr.request(body)
        return tr.stream()

    return make


def measure(make: Callable[[], StreamTranslator], pieces: list[bytes], streams: int) -> float:
    start = time.process_time()
    for _ in range(streams):
        stream = make()
        for piece in pieces:
            stream.feed(piece)
        stream.close()
    return (time.process_time() - start) / (streams * STREAM_EVENTS) * 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    cases = {
        "anthropic -> openai client": ("openai", "anthropic", anthropic_stream_events()),
        "openai -> anthropic client": ("anthropic", "openai", openai_stream_chunks()),
        "gemini -> openai client": ("openai", "gemini", gemini_stream_events()),
        "gemini -> anthropic client": ("anthropic", "gemini", gemini_stream_events()),
    }
    print(f"{'upstream -> client':32} {'us/event (median of ' + str(args.repeat) + ')':>26}")
    for name, (client, upstream, events) in cases.items():
        make, pieces = scenario(client, upstream, events), reads(events)
        measure(make, pieces, max(1, args.streams // 10))  # warm up
        runs = [measure(make, pieces, args.streams) for _ in range(args.repeat)]
        print(f"{name:32} {statistics.median(runs):26.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
