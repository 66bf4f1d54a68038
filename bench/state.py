"""What the Redis state backend adds per request, next to the in-memory one.

    python bench/state.py [--requests 5000] [--concurrency 1 16] [--redis-url redis://...]

Drives the layers that touch runtime state (a router token with ``rpm``, ``tpm`` and ``max_in_flight``:
``RateLimitMiddleware`` -> ``ConcurrencyLimitMiddleware`` -> ``UsageTotalsMiddleware``) around an app that
answers at once, in process, through ASGI calls: one admission script, one settle script, one lease
acquire and one release per request with Redis. Reports per request: the latency (median and p99 at
concurrency 1, mean otherwise), the gateway's CPU time and, with Redis, redis-server's CPU time (from
/proc, when the server is one this script started). Without ``--redis-url`` it starts a redis-server on a
free port (Debian's ``redis-server`` package). Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/state.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asgi_llmroute.context import SCOPE_KEY, ClientAPI, Principal, RequestContext
from asgi_llmroute.middleware.limits import ConcurrencyLimitMiddleware
from asgi_llmroute.middleware.ratelimit import RateLimitMiddleware
from asgi_llmroute.middleware.totals import UsageTotalsMiddleware
from asgi_llmroute.state import MemoryState, RateLimit, StateBackend
from asgi_llmroute.state.redis import RedisState

_TICKS = os.sysconf("SC_CLK_TCK")


async def _app(scope: Any, receive: Any, send: Any) -> None:
    ctx = scope[SCOPE_KEY]
    ctx.model = "m"
    ctx.usage = {"input_tokens": 12, "output_tokens": 30}
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _stack(state: StateBackend) -> Any:
    app: Any = UsageTotalsMiddleware(_app, state=state)
    app = ConcurrencyLimitMiddleware(app, limits={"t": 1_000}, by="token", state=state)
    shared = state if state.shared else None
    return RateLimitMiddleware(app, limits={"t": RateLimit(rpm=10**9, tpm=10**12)}, backend=shared)


async def _one(app: Any, principal: Principal) -> float:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-length", b"400")],
    }
    ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT)
    ctx.principal = principal
    scope[SCOPE_KEY] = ctx

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    began = time.perf_counter()
    await app(scope, receive, send)
    return time.perf_counter() - began


def _cpu_of(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


async def _measure(state: StateBackend, requests: int, concurrency: int, server_pid: int | None) -> dict[str, float]:
    await state.start()
    app = _stack(state)
    principal = Principal("t", ("*",))
    for _ in range(200):  # warm up (scripts loaded, connections open)
        await _one(app, principal)
    latencies: list[float] = []
    cpu0, srv0, wall0 = time.process_time(), _cpu_of(server_pid), time.perf_counter()
    if concurrency == 1:
        for _ in range(requests):
            latencies.append(await _one(app, principal))
    else:
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                latencies.append(await _one(app, principal))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, srv, wall = time.process_time() - cpu0, _cpu_of(server_pid) - srv0, time.perf_counter() - wall0
    await state.aclose()
    latencies.sort()
    return {
        "p50_us": statistics.median(latencies) * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
        "cpu_us": cpu / requests * 1e6,
        "redis_cpu_us": srv / requests * 1e6,
        "rps": requests / wall,
    }


@contextmanager
def _redis_server() -> Iterator[tuple[str, int]]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server), or give --redis-url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--redis-url", help="an existing Redis (its CPU is then not measured)")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    rows = []
    with _redis_server() if args.redis_url is None else _nothing(args.redis_url) as (url, pid):
        for concurrency in args.concurrency:
            memory = asyncio.run(_measure(MemoryState(), args.requests, concurrency, None))
            redis = asyncio.run(_measure(RedisState(url, prefix="bench:"), args.requests, concurrency, pid))
            rows.append((concurrency, memory, redis))
    head = f"{'backend':<8} {'conc':>4} {'p50 µs':>8} {'p99 µs':>8} {'CPU µs/req':>11} {'redis CPU µs/req':>17}"
    print(f"{head} {'req/s':>8}")
    for concurrency, memory, redis in rows:
        for name, r in (("memory", memory), ("redis", redis)):
            print(
                f"{name:<8} {concurrency:>4} {r['p50_us']:>8.1f} {r['p99_us']:>8.1f} {r['cpu_us']:>11.1f} "
                f"{r['redis_cpu_us']:>17.1f} {r['rps']:>8.0f}"
            )
        added = redis["cpu_us"] - memory["cpu_us"]
        print(
            f"         {concurrency:>4}  redis adds {redis['p50_us'] - memory['p50_us']:.0f} µs p50, {added:.0f} µs CPU"
        )


@contextmanager
def _nothing(url: str) -> Iterator[tuple[str, None]]:
    yield url, None


if __name__ == "__main__":
    main()
