"""Benchmark llmroute against the upstream called directly and LiteLLM's proxy.

    python bench/run.py [--duration S] [--repeat N] [--scenarios ...] [--litellm PATH] [--json out.json]

Per target, scenario and concurrency: a warm-up wrk run, then a measured wrk run. Requests/s and the CPU time per
request come from a window inside the measured run (its first and last `margin` seconds are left out):
CPU = utime+stime of the target's process tree from /proc, read at both ends of the window, divided by the
OK responses that completed inside it. Latency percentiles are wrk's over the whole measured run.

Layout: the server under test (llmroute or LiteLLM, one worker) runs under `taskset -c 0`; wrk (one thread)
and the upstream run under `taskset -c 1`, and so does this script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import upstream as upstream_mod
from bench.procs import Server, core_busy_seconds, cpu_seconds, free_port, pinned
from bench.targets import (
    SCENARIOS,
    Call,
    Running,
    Scenario,
    default_litellm,
    default_llmroute,
    litellm_target,
    llmroute_target,
    upstream_target,
)

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "post.lua"
TARGETS = ("upstream", "llmroute", "litellm")

# The targets for the gateway (one worker on one core).
TARGET_CPU_JSON_MS = 0.5
TARGET_CPU_STREAM_MS = 0.7
TARGET_RPS_C16 = 2000.0


@dataclass
class Measurement:
    target: str
    scenario: str
    concurrency: int
    run: int
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_ms: float | None = None
    cpu_util: float | None = None
    #: Share of the server's core used by other processes during the window (the machine is shared): a
    #: measurement with a large value here has lower req/s and higher latency than the server can do.
    core_other: float | None = None
    ok: int = 0
    bad: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    #: Digest of the gateway's source when the run started (the working tree may change between runs).
    source: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.target, self.scenario, self.concurrency)


@dataclass(frozen=True)
class Settings:
    duration: float
    warmup: float
    litellm_duration: float
    litellm_warmup: float
    server_cpu: int | None
    load_cpu: int | None

    def durations(self, target: str) -> tuple[int, int]:
        """Measured and warm-up seconds for `target` (wrk takes whole seconds)."""
        if target == "litellm":
            return _seconds(self.litellm_duration), _seconds(self.litellm_warmup, 0)
        return _seconds(self.duration), _seconds(self.warmup, 0)


def _seconds(value: float, least: int = 1) -> int:
    return max(least, round(value))


# --- running wrk ------------------------------------------------------------------------------------------------


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


def run_wrk(call: Call, concurrency: int, duration: int, env: dict[str, str], cpu: int | None) -> dict[str, Any]:
    cmd = pinned(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{duration}s",
            "--timeout",
            "30s",
            "-s",
            str(WRK_SCRIPT),
            call.url,
        ],
        cpu,
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    match = re.search(r"^BENCH_RESULT (\{.*\})$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")
    result: dict[str, Any] = json.loads(match.group(1))
    return result


def probe(call: Call) -> str | None:
    """One request before the load: None if it succeeds, else a short description of the failure."""
    request = urllib.request.Request(call.url, data=call.body, headers=call.headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read().decode(errors="replace")
            if response.status != 200 or call.marker not in body:
                return f"HTTP {response.status}, incomplete body: {body[:160]!r}"
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:160]
        return f"HTTP {exc.code}: {detail}"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def measure(
    running: Running, scenario: Scenario, concurrency: int, run: int, settings: Settings, workdir: Path
) -> Measurement:
    m = Measurement(running.name, scenario.name, concurrency, run)
    call = running.call(scenario)
    m.error = probe(call)
    if m.error is not None:
        return m
    duration, warmup = settings.durations(running.name)
    body_file = workdir / "body.json"
    if warmup > 0:
        run_wrk(call, concurrency, warmup, wrk_env(call, body_file, None), settings.load_cpu)

    margin = min(max(0.15 * duration, 0.5), duration / 4)
    start = time.monotonic() + 0.05
    window = (start + margin, start + duration - margin)
    env = wrk_env(call, body_file, window)
    # wrk runs in a thread of its own (subprocess.run blocks), while this thread reads the CPU at both ends of
    # the window.
    cpu: list[float] = []
    core: list[float] = []
    result: dict[str, Any] = {}
    error: list[BaseException] = []

    def load() -> None:
        try:
            time.sleep(max(0.0, start - time.monotonic()))
            result.update(run_wrk(call, concurrency, duration, env, settings.load_cpu))
        except BaseException as exc:  # reported below, in the calling thread
            error.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    for edge in window:
        time.sleep(max(0.0, edge - time.monotonic()))
        cpu.append(cpu_seconds(running.server.pid))
        if settings.server_cpu is not None:
            core.append(core_busy_seconds(settings.server_cpu))
    thread.join()
    if error:
        raise error[0]
    running.server.check_alive()

    m.ok, m.bad = result["ok"], result["bad"]
    m.socket_errors = {k: v for k, v in result["errors"].items() if v and k != "status"}
    ok_in_window = result["ok_in_window"]
    seconds = window[1] - window[0]
    if result["bad"]:
        m.error = f"{result['bad']} bad responses (last HTTP {result['last_bad_status']})"
    if ok_in_window == 0:
        m.error = m.error or "no OK response in the measurement window"
        return m
    m.rps = ok_in_window / seconds
    m.cpu_ms = (cpu[1] - cpu[0]) * 1000 / ok_in_window
    m.cpu_util = (cpu[1] - cpu[0]) / seconds
    if core and running.kind == "gateway":
        m.core_other = max(0.0, (core[1] - core[0]) - (cpu[1] - cpu[0])) / seconds
    m.p50_ms = result["latency_us"]["p50"] / 1000
    m.p99_ms = result["latency_us"]["p99"] / 1000
    return m


# --- orchestration ----------------------------------------------------------------------------------------------


def source_digest(root: str | None = None) -> str | None:
    """Short digest of the asgi_llmroute sources in ``root`` (default: beside bench/), to tell which code a
    run measured."""
    package = Path(root or Path(__file__).resolve().parent.parent) / "asgi_llmroute"
    if not package.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(package.rglob("*.py")):
        digest.update(str(file.relative_to(package)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:12]


def start_upstream(stack: ExitStack, workdir: Path, args: argparse.Namespace) -> tuple[Server, str]:
    port = free_port()
    if args.stream_interval_ms > 0 or args.upstream == "python" or not upstream_mod.nginx_available():
        server = upstream_mod.python_server(workdir, port, interval_ms=args.stream_interval_ms, cpu=args.load_cpu)
    else:
        server = upstream_mod.nginx_server(workdir, port, cpu=args.load_cpu)
    stack.enter_context(server)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while probe(Call(base + "/json/v1/messages", {"Content-Type": "application/json"}, b"{}", '"content"')):
        server.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"upstream not ready: {server.log_tail()}")
        time.sleep(0.1)
    return server, base


def target_context(
    name: str, workdir: Path, upstream: tuple[Server, str], args: argparse.Namespace
) -> AbstractContextManager[Running]:
    if name == "upstream":
        return upstream_target(*upstream)
    if name == "llmroute":
        return llmroute_target(workdir, upstream[1], binary=args.llmroute, cpu=args.server_cpu)
    if name in args.variants:
        return llmroute_target(
            workdir, upstream[1], binary=args.llmroute, cpu=args.server_cpu, name=name, variant=args.variants[name]
        )
    return litellm_target(workdir, upstream[1], binary=args.litellm, cpu=args.server_cpu)


def run_all(args: argparse.Namespace, scenarios: Sequence[Scenario], targets: Sequence[str]) -> list[Measurement]:
    settings = Settings(
        args.duration, args.warmup, args.litellm_duration, args.litellm_warmup, args.server_cpu, args.load_cpu
    )
    results: list[Measurement] = []
    for run in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory(prefix="llmroute-bench-") as tmp, ExitStack() as stack:
            workdir = Path(tmp)
            upstream = start_upstream(stack, workdir, args)
            for target in targets:
                if target in args.variants:
                    source = source_digest(args.variants[target][1])
                else:
                    source = source_digest() if target == "llmroute" else None
                log(f"run {run}/{args.repeat}: starting {target}" + (f" (source {source})" if source else ""))
                try:
                    with target_context(target, workdir, upstream, args) as running:
                        for scenario in scenarios:
                            for concurrency in args.concurrency:
                                try:
                                    m = measure(running, scenario, concurrency, run, settings, workdir)
                                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                                    m = Measurement(target, scenario.name, concurrency, run, error=short(str(exc)))
                                m.source = source
                                log(f"  {describe(m)}")
                                results.append(m)
                except (RuntimeError, TimeoutError, OSError) as exc:
                    # A target that fails to start or dies: report it for every cell it owed, keep going.
                    log(f"  {target} failed: {exc}")
                    done = {(m.scenario, m.concurrency) for m in results if m.target == target and m.run == run}
                    for scenario in scenarios:
                        for concurrency in args.concurrency:
                            if (scenario.name, concurrency) not in done:
                                failed = Measurement(target, scenario.name, concurrency, run, error=short(str(exc)))
                                results.append(failed)
    return results


# --- reporting --------------------------------------------------------------------------------------------------


def short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(m: Measurement) -> str:
    head = f"{m.target:9} {m.scenario:32} c={m.concurrency:<3}"
    if m.rps is None:
        return f"{head} ERROR {m.error}"
    extra = f"  [{m.error}]" if m.error else ""
    return (
        f"{head} {m.rps:9.1f} req/s  p50 {m.p50_ms:8.2f} ms  p99 {m.p99_ms:8.2f} ms  "
        f"CPU {m.cpu_ms:7.3f} ms/req ({(m.cpu_util or 0) * 100:3.0f}% of a core"
        + (f", others {m.core_other * 100:.0f}%" if m.core_other is not None else "")
        + f"){extra}"
    )


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def medians(results: Sequence[Measurement]) -> dict[tuple[str, str, int], Measurement]:
    grouped: dict[tuple[str, str, int], list[Measurement]] = {}
    for m in results:
        grouped.setdefault(m.key, []).append(m)
    out: dict[tuple[str, str, int], Measurement] = {}
    for key, runs in grouped.items():
        good = [m for m in runs if m.rps is not None]
        med = Measurement(*key, run=0, ok=sum(m.ok for m in runs), bad=sum(m.bad for m in runs))
        errors = sorted({m.error for m in runs if m.error})
        med.error = "; ".join(errors) or None
        if good:
            for name in ("rps", "p50_ms", "p99_ms", "cpu_ms", "cpu_util", "core_other"):
                values = [getattr(m, name) for m in good if getattr(m, name) is not None]
                setattr(med, name, statistics.median(values) if values else None)
        out[key] = med
    return out


def _num(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def table(
    med: dict[tuple[str, str, int], Measurement],
    scenarios: Sequence[Scenario],
    targets: Sequence[str],
    concurrency: Sequence[int],
) -> str:
    header = ["scenario", "c"]
    for target in targets:
        header += [f"{target} req/s", "p50 ms", "p99 ms", "CPU ms/req"]
    if "llmroute" in targets and "upstream" in targets:
        header.append("llmroute p50 ÷ upstream")
    if "llmroute" in targets and "litellm" in targets:
        header.append("LiteLLM CPU ÷ llmroute")
    rows = [header]
    notes: dict[tuple[str, str], list[str]] = {}  # (target, error) -> cells
    for scenario in scenarios:
        for c in concurrency:
            row = [scenario.name, str(c)]
            for target in targets:
                m = med.get((target, scenario.name, c))
                if m is None or m.rps is None:
                    error = m.error if m is not None else "not run"
                    notes.setdefault((target, short(error or "?", 200)), []).append(f"{scenario.name} c={c}")
                    row += ["error", "", "", ""]
                    continue
                if m.error:
                    notes.setdefault((target, short(m.error, 200)), []).append(f"{scenario.name} c={c}")
                row += [_num(m.rps, 0), _num(m.p50_ms, 2), _num(m.p99_ms, 2), _num(m.cpu_ms, 3)]
            gw = med.get(("llmroute", scenario.name, c))
            up = med.get(("upstream", scenario.name, c))
            ll = med.get(("litellm", scenario.name, c))
            if "llmroute" in targets and "upstream" in targets:
                row.append(_ratio(gw.p50_ms if gw else None, up.p50_ms if up else None))
            if "llmroute" in targets and "litellm" in targets:
                row.append(_ratio(ll.cpu_ms if ll else None, gw.cpu_ms if gw else None))
            rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|")
    if notes:
        lines.append("")
        for (target, error), cells in notes.items():
            lines.append(f"- {target}, {', '.join(cells)}: {error}")
    return "\n".join(lines)


def verdicts(med: dict[tuple[str, str, int], Measurement]) -> list[str]:
    """The issue's targets, checked on the gateway's medians."""
    lines = []
    checks: list[tuple[str, str, int, float, str]] = [
        ("openai-json", "cpu_ms", 16, TARGET_CPU_JSON_MS, "<="),
        ("anthropic-json", "cpu_ms", 16, TARGET_CPU_JSON_MS, "<="),
        ("openai-stream", "cpu_ms", 16, TARGET_CPU_STREAM_MS, "<="),
        ("anthropic-stream", "cpu_ms", 16, TARGET_CPU_STREAM_MS, "<="),
        ("openai-json", "rps", 16, TARGET_RPS_C16, ">="),
        ("anthropic-json", "rps", 16, TARGET_RPS_C16, ">="),
    ]
    for scenario, metric, c, limit, op in checks:
        m = med.get(("llmroute", scenario, c))
        value = getattr(m, metric) if m is not None else None
        what = f"llmroute {scenario} c={c} {'CPU ms/req' if metric == 'cpu_ms' else 'req/s'} {op} {limit:g}"
        if value is None:
            lines.append(f"- {what}: not measured")
            continue
        ok = value <= limit if op == "<=" else value >= limit
        shown = f"{value:,.3f}" if metric == "cpu_ms" else f"{value:,.0f}"
        lines.append(f"- {what}: {shown} → {'met' if ok else 'NOT met'}")
    return lines


def machine_info() -> dict[str, str]:
    info = {
        "nproc": str(os.cpu_count()),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    for tool, cmd in (("wrk", ["wrk", "--version"]), ("nginx", ["nginx", "-v"])):
        if shutil.which(tool):
            out = subprocess.run(cmd, capture_output=True, text=True)
            info[tool] = short((out.stdout + out.stderr).splitlines()[0] if (out.stdout + out.stderr) else "?", 60)
    return info


# --- command line -----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [s.name for s in SCENARIOS]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up before each run (default 1)")
    parser.add_argument("--litellm-duration", type=float, default=None, help="for LiteLLM (default: max(10, S))")
    parser.add_argument("--litellm-warmup", type=float, default=3.0, help="warm-up for LiteLLM (default 3)")
    parser.add_argument("--repeat", type=int, default=1, help="run everything N times, report medians")
    parser.add_argument("--scenarios", nargs="+", choices=names, default=names, metavar="NAME", help=", ".join(names))
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 16])
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=CLIENT[@SRC]",
        help="also measure the gateway with another upstream client (default, httpx-aiohttp, aiohttp-direct; "
        "see serve_variant.py), optionally from another source tree SRC; repeatable",
    )
    parser.add_argument("--llmroute", default=default_llmroute(), help="llmroute executable")
    parser.add_argument(
        "--litellm", default=default_litellm(), help="LiteLLM proxy executable (default: $LITELLM_BIN, PATH)"
    )
    parser.add_argument("--upstream", choices=("nginx", "python"), default="nginx")
    parser.add_argument(
        "--stream-interval-ms",
        type=float,
        default=0.0,
        help="pace upstream streams, one event per chunk every N ms (uses the python upstream; default: "
        "nginx sends each stream whole)",
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="core for the server under test (default 0)")
    parser.add_argument("--load-cpu", type=int, default=1, help="core for wrk, the upstream and this script")
    parser.add_argument("--json", type=Path, help="write all runs, medians and the machine to this file")
    args = parser.parse_args(argv)
    args.variants = {}
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        client, _, source = rest.partition("@")
        if not name or not client or name in TARGETS:
            parser.error(f"--variant {spec!r}: want NAME=CLIENT[@SRC], NAME not one of {', '.join(TARGETS)}")
        args.variants[name] = (client, source or None)
    if args.litellm_duration is None:
        args.litellm_duration = max(10.0, args.duration)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        log("wrk not found: apt-get install -y wrk (see bench/README.md)")
        return 2
    targets = list(dict.fromkeys([*args.targets, *args.variants]))
    skipped: list[str] = []
    if "llmroute" in targets and not args.llmroute:
        skipped.append("llmroute: executable not found (pip install -e '.[all]' or --llmroute PATH)")
        targets.remove("llmroute")
    if "litellm" in targets and not (args.litellm and Path(args.litellm).exists() or shutil.which(args.litellm or "")):
        skipped.append("litellm: not installed, columns skipped (--litellm PATH or LITELLM_BIN; see bench/README.md)")
        targets.remove("litellm")
    for note in skipped:
        log(f"note: {note}")
    if args.load_cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.load_cpu})
    scenarios = [s for s in SCENARIOS if s.name in args.scenarios]

    results = run_all(args, scenarios, targets)
    med = medians(results)
    info = machine_info()
    upstream_kind = "python (paced)" if args.stream_interval_ms > 0 or args.upstream == "python" else "nginx"
    print()
    print(
        f"llmroute benchmark: medians of {args.repeat} run(s); {args.duration:g}s per run "
        f"({args.litellm_duration:g}s for LiteLLM); upstream {upstream_kind}"
        + (f", stream events every {args.stream_interval_ms:g} ms" if args.stream_interval_ms > 0 else "")
    )
    print(f"machine: {info.get('cpu', '?')}, {info['nproc']} cores, Python {info['python']}")
    print("server under test on core", args.server_cpu, "; wrk + upstream on core", args.load_cpu)
    print()
    print(table(med, scenarios, targets, args.concurrency))
    for note in skipped:
        print(f"- {note}")
    sources = sorted({m.source for m in results if m.source})
    if len(sources) > 1:
        print(f"- WARNING: the gateway's source changed between runs ({', '.join(sources)}): medians mix versions")
    if "llmroute" in targets:
        print()
        print("Targets:")
        print("\n".join(verdicts(med)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": info,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "runs": [asdict(m) for m in results],
            "medians": [asdict(m) for m in med.values()],
            "skipped": skipped,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
