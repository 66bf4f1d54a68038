"""CPU per stream event of the pure translators, Gemini upstream beside the Anthropic translation.

    python bench/translate.py [--streams 2000] [--repeat 5]
    python bench/translate.py --instructions [--streams 200] [--case NAME ...] [--source DIR ...]

Feeds canned upstream streams (50 events each, the same text as `bodies.py`) through the
translators in-process, in 1 KiB network reads, and prints the median CPU time per upstream
event. This isolates the translation core from the server and the network: the gateway-level
scenarios are in `run.py`.

`--instructions` counts instructions per upstream event instead, under `valgrind --tool=callgrind`
(exact, independent of the machine's load: the way to compare two versions on a shared machine).
Each case runs in two child processes, one with only the warm-up and one with `--streams` more
streams; the difference divided by the events is the cost of one event. Each `--source DIR` (a
`git archive` of another commit) is measured in turn beside this tree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if os.environ.get("LLMROUTE_BENCH_SOURCE"):  # an instruction-count child measuring another tree
    sys.path.insert(0, os.environ["LLMROUTE_BENCH_SOURCE"])
sys.path.insert(1, str(ROOT))

from asgi_llmroute.formats import ResponsesTranslator, StreamTranslator, new_translator  # noqa: E402
from bench.bodies import (  # noqa: E402
    STREAM_EVENTS,
    anthropic_stream_events,
    gemini_stream_events,
    openai_stream_chunks,
)

_REQUEST: dict[str, Any] = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}


def reads(events: list[bytes], size: int = 1024) -> list[bytes]:
    raw = b"".join(events)
    return [raw[i : i + size] for i in range(0, len(raw), size)]


class _Chained:
    """Two stream translators in a row, as the gateway stacks them (Responses over Chat over Gemini)."""

    def __init__(self, inner: StreamTranslator, outer: StreamTranslator) -> None:
        self._inner, self._outer = inner, outer

    def feed(self, chunk: bytes) -> bytes:
        return self._outer.feed(self._inner.feed(chunk))

    def close(self) -> bytes:
        return self._outer.feed(self._inner.close()) + self._outer.close()


Stream = StreamTranslator | _Chained


def scenario(client: str, upstream: str, events: list[bytes]) -> Callable[[], Stream]:
    def make() -> Stream:
        if client == "responses":
            outer = ResponsesTranslator()
            chat = outer.request({"model": "m", "input": "hi", "stream": True})
            if upstream == "openai":
                return outer.stream()
            inner = new_translator("openai", upstream)
            inner.request(chat)
            return _Chained(inner.stream(), outer.stream())
        tr = new_translator(client, upstream)  # type: ignore[arg-type]
        body = dict(_REQUEST, stream=True)
        if client == "openai":
            body.pop("max_tokens")
        tr.request(body)
        return tr.stream()

    return make


def measure(make: Callable[[], Stream], pieces: list[bytes], streams: int) -> float:
    start = time.process_time()
    for _ in range(streams):
        stream = make()
        for piece in pieces:
            stream.feed(piece)
        stream.close()
    return (time.process_time() - start) / (streams * STREAM_EVENTS) * 1e6


def cases() -> dict[str, tuple[str, str, list[bytes]]]:
    """name -> (client API, upstream API, upstream events)."""
    return {
        "anthropic -> openai client": ("openai", "anthropic", anthropic_stream_events()),
        "openai -> anthropic client": ("anthropic", "openai", openai_stream_chunks()),
        "gemini -> openai client": ("openai", "gemini", gemini_stream_events()),
        "gemini -> anthropic client": ("anthropic", "gemini", gemini_stream_events()),
        "anthropic -> responses client": ("responses", "anthropic", anthropic_stream_events()),
        "gemini -> responses client": ("responses", "gemini", gemini_stream_events()),
        "openai -> responses client": ("responses", "openai", openai_stream_chunks()),
    }


_WARMUP_STREAMS = 20


def _child(name: str, streams: int) -> None:
    """Run one case under callgrind: the warm-up, then ``streams`` streams."""
    client, upstream, events = cases()[name]
    make, pieces = scenario(client, upstream, events), reads(events)
    measure(make, pieces, _WARMUP_STREAMS)
    if streams:
        measure(make, pieces, streams)


def _callgrind(name: str, streams: int, source: str | None, workdir: Path) -> int:
    out = workdir / "callgrind.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]
    cmd += [sys.executable, str(Path(__file__).resolve()), "--child", name, "--streams", str(streams)]
    env = dict(os.environ)
    if source:
        env["LLMROUTE_BENCH_SOURCE"] = source
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            out.unlink()
            return int(line.split()[1])
    raise ValueError(f"no totals in {out}")


def count_instructions(names: list[str], streams: int, sources: list[str | None]) -> int:
    print("| source | upstream -> client | instructions/event |\n|---|---|---:|")
    with tempfile.TemporaryDirectory(prefix="llmroute-translate-") as tmp:
        for source in sources:
            for name in names:
                base = _callgrind(name, 0, source, Path(tmp))
                total = _callgrind(name, streams, source, Path(tmp))
                per = (total - base) / (streams * STREAM_EVENTS)
                print(f"| {source or 'this tree'} | {name} | {per / 1e3:.1f} k |", flush=True)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=None, help="streams per run (default 2000; 200 counted)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="count instructions per event (callgrind)")
    parser.add_argument("--case", action="append", choices=list(cases()), help="only these cases (repeatable)")
    parser.add_argument("--source", action="append", metavar="DIR", help="asgi_llmroute source tree (repeatable)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.case or list(cases())
    if args.child:
        _child(args.child, args.streams or 0)
        return 0
    if args.instructions:
        return count_instructions(names, args.streams or 200, [None, *(args.source or [])])
    streams = args.streams or 2000
    print(f"{'upstream -> client':32} {'us/event (median of ' + str(args.repeat) + ')':>26}")
    for name in names:
        client, upstream, events = cases()[name]
        make, pieces = scenario(client, upstream, events), reads(events)
        measure(make, pieces, max(1, streams // 10))  # warm up
        runs = [measure(make, pieces, streams) for _ in range(args.repeat)]
        print(f"{name:32} {statistics.median(runs):26.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
