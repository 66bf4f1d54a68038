"""The load: wrk with bench/wrk/post.lua, or a small pure-Python load generator when wrk is not installed.

Both return the same result (the JSON that post.lua prints): request counts, OK responses (status 200 and the
completion marker in the body) in total and inside the measurement window, socket errors, and latency
percentiles in microseconds. The Python generator (threads, one keep-alive connection each, `http.client`)
is far slower than wrk: it is there so that the harness runs anywhere (its smoke test runs in CI, where wrk
is not installed), not for figures.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import pinned

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "post.lua"


@dataclass(frozen=True)
class Call:
    """One benchmark request: where it goes, what it carries, and how to tell that it succeeded."""

    url: str
    headers: dict[str, str]
    body: bytes
    marker: str


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_env(call: Call, body_file: Path, window: tuple[float, float] | None) -> dict[str, str]:
    body_file.write_bytes(call.body)
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in call.headers.items()),
        "BENCH_MARKER": call.marker,
    }
    if window is not None:
        env["BENCH_WIN_START"], env["BENCH_WIN_END"] = f"{window[0]:.6f}", f"{window[1]:.6f}"
    return env


def run_wrk(
    call: Call, concurrency: int, duration: int, env: dict[str, str], cpu: int | str | None, *, timeout: int = 30
) -> dict[str, Any]:
    cmd = pinned(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{duration}s",
            "--timeout",
            f"{timeout}s",
            "-s",
            str(WRK_SCRIPT),
            call.url,
        ],
        cpu,
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + timeout + 60)
    match = re.search(r"^BENCH_RESULT (\{.*\})$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")
    result: dict[str, Any] = json.loads(match.group(1))
    return result


def run_load(
    call: Call,
    concurrency: int,
    duration: int,
    body_file: Path,
    window: tuple[float, float] | None,
    cpu: int | str | None,
    *,
    tool: str = "wrk",
) -> dict[str, Any]:
    """One load run with `tool` ("wrk" or "python"): the post.lua result."""
    if tool == "wrk":
        return run_wrk(call, concurrency, duration, wrk_env(call, body_file, window), cpu)
    return python_load(call, concurrency, duration, window)


def probe(call: Call, timeout: float = 60) -> str | None:
    """One request before the load: None if it succeeds, else a short description of the failure."""
    request = urllib.request.Request(call.url, data=call.body, headers=call.headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read().decode(errors="replace")
            if response.status != 200 or call.marker not in body:
                return f"HTTP {response.status}, incomplete body: {body[:160]!r}"
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:160]
        return f"HTTP {exc.code}: {detail}"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


# --- the pure-Python load generator ----------------------------------------------------------------------------


def python_load(call: Call, concurrency: int, duration: float, window: tuple[float, float] | None) -> dict[str, Any]:
    """`concurrency` threads POST `call` back to back on keep-alive connections for `duration` seconds."""
    url = urllib.parse.urlsplit(call.url)
    path = url.path + (f"?{url.query}" if url.query else "")
    marker = call.marker.encode()
    win_start, win_end = window if window is not None else (0.0, float("inf"))
    lock = threading.Lock()
    counts = {"requests": 0, "ok": 0, "bad": 0, "ok_in_window": 0, "bad_in_window": 0, "last_bad_status": 0}
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    latencies: list[float] = []
    started = time.monotonic()
    deadline = started + duration

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=30)
            t0 = time.monotonic()
            try:
                conn.request("POST", path, body=call.body, headers=call.headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = None
                with lock:
                    errors["timeout" if isinstance(exc, TimeoutError) else "read"] += 1
                continue
            t1 = time.monotonic()
            good = response.status == 200 and marker in body
            inside = win_start <= t1 <= win_end
            with lock:
                counts["requests"] += 1
                latencies.append((t1 - t0) * 1e6)
                if good:
                    counts["ok"] += 1
                    counts["ok_in_window"] += inside
                else:
                    counts["bad"] += 1
                    counts["bad_in_window"] += inside
                    counts["last_bad_status"] = response.status
                    errors["status"] += 1
            if response.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 60)
    ordered = sorted(latencies) or [0.0]

    def pct(q: float) -> int:
        return int(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))])

    return {
        **counts,
        "duration_us": int((time.monotonic() - started) * 1e6),
        "errors": errors,
        "latency_us": {
            "mean": statistics.fmean(ordered),
            "max": int(ordered[-1]),
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
        },
    }
