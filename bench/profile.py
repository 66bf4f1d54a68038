"""Profile the gateway's hot path under load with py-spy, and summarise where its CPU time goes.

    python bench/profile.py [--scenario openai-json] [--concurrency 16] [--duration 10] [--rate 250]
    python bench/profile.py --summarise bench/results/profile-openai-json-c16.txt
    python bench/profile.py --instructions [--scenario S ...] [--requests 300] [--source DIR ...]

`--instructions` counts the gateway's instructions per request under `valgrind --tool=callgrind` (exact
counts, independent of what else runs on the machine: the way to compare two versions of the hot path on a
shared machine). Each `--source DIR` (a `git archive` of another commit, or this tree when omitted) is
measured in turn on the same upstream; the load is an exact number of requests from an aiohttp client.
The paced scenarios also print instructions per event; their events are spaced `--paced-interval-ms` (10 ms)
apart, so that the gateway, ~50x slower under callgrind, still gets one event per read (use `--concurrency 4`).

Starts the upstream and llmroute (pinned as in run.py), drives the scenario with wrk, and records the gateway
with `py-spy record --format raw` (collapsed stacks, idle frames left out). The summary gives self and inclusive
time per package and per function, as shares of the on-CPU samples. py-spy pauses the process at each sample,
so keep the rate moderate; shares are what matter, not the throughput reached while profiling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/profile.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import upstream as upstream_mod
from bench.bodies import PACED_EVENTS
from bench.load import Call
from bench.procs import Server, free_port, pinned
from bench.run import _wait_upstream, run_wrk, start_upstreams, wrk_env
from bench.targets import SCENARIOS, Running, Upstreams, default_llmroute, gateway_config, llmroute_target

RESULTS = Path(__file__).resolve().parent / "results"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_SITE = re.compile(r"(?:site|dist)-packages/(?P<pkg>[^/]+)")
_STDLIB = re.compile(r"/lib/python3\.\d+/(?P<mod>[^/]+)")


def parse_collapsed(lines: Iterable[str]) -> Counter[tuple[str, ...]]:
    """py-spy's raw output: `frame;frame;...;leaf COUNT` per line, outermost frame first."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def package_of(frame: str) -> str:
    """A frame's layer: `llmroute/<module>`, a third-party distribution, or `stdlib/<module>`."""
    match = _FRAME.match(frame)
    file = match.group("file") if match else frame
    if "asgi_llmroute/" in file:
        return "llmroute/" + file.split("asgi_llmroute/", 1)[1].removesuffix(".py")
    site = _SITE.search(file)
    if site:
        return site.group("pkg").removesuffix(".py")
    std = _STDLIB.search(file)
    if std:
        return "stdlib/" + std.group("mod").removesuffix(".py")
    return file or "?"


def function_of(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    return f"{match.group('func')} ({package_of(frame)})"


def layer_of(package: str) -> str | None:
    """The layer a package belongs to, or None for generic helpers (contextlib, re, enum, ...), whose time is
    charged to their caller's layer."""
    if package in ("llmroute/logs", "stdlib/logging"):
        return "logging (stdlib logging + llmroute/logs)"
    if package.startswith("llmroute/"):
        return package
    if package == "stdlib/asyncio":
        return "asyncio / uvloop event loop"
    if package == "stdlib/json":
        return "json"
    if package == "sniffio":
        return "anyio"
    if package.startswith(("stdlib/", "<", "?")) or "/" in package or not package:
        return None
    return package


def layer_breakdown(stacks: Counter[tuple[str, ...]]) -> Counter[str]:
    """Samples per layer: each sample goes to the innermost frame that belongs to a layer."""
    layers: Counter[str] = Counter()
    for stack, count in stacks.items():
        layer = next((lay for f in reversed(stack) if (lay := layer_of(package_of(f))) is not None), "other")
        layers[layer] += count
    return layers


def summarise(stacks: Counter[tuple[str, ...]], top: int = 25) -> str:
    total = sum(stacks.values())
    if total == 0:
        return "no samples"
    self_pkg: Counter[str] = Counter()
    incl_pkg: Counter[str] = Counter()
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    for stack, count in stacks.items():
        self_pkg[package_of(stack[-1])] += count
        self_fn[function_of(stack[-1])] += count
        for name in {package_of(f) for f in stack}:
            incl_pkg[name] += count
        for name in {function_of(f) for f in stack}:
            incl_fn[name] += count

    def block(title: str, counter: Counter[str]) -> list[str]:
        lines = [f"### {title}", "", "| share | samples | where |", "|---:|---:|---|"]
        for name, count in counter.most_common(top):
            lines.append(f"| {100 * count / total:5.1f}% | {count} | `{name}` |")
        return [*lines, ""]

    out = [f"{total} on-CPU samples", ""]
    out += block("Self time by layer (generic stdlib helpers charged to their caller)", layer_breakdown(stacks))
    out += block("Self time by package (the code that was running)", self_pkg)
    out += block("Inclusive time by package (on the stack)", incl_pkg)
    out += block("Self time by function", self_fn)
    out += block("Inclusive time by function", incl_fn)
    return "\n".join(out)


def profile(args: argparse.Namespace) -> Path:
    scenario = next(s for s in SCENARIOS if s.name == args.scenario)
    py_spy = args.py_spy or shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    RESULTS.mkdir(exist_ok=True)
    suffix = ("-native" if args.native else "") + ("-nonblocking" if args.nonblocking else "")
    if args.stream_interval_ms > 0:
        suffix += f"-paced{args.stream_interval_ms:g}ms"
    out = RESULTS / f"profile-{scenario.name.replace('>', '')}-c{args.concurrency}{suffix}.txt"
    with tempfile.TemporaryDirectory(prefix="llmroute-profile-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        ns = argparse.Namespace(stream_interval_ms=args.stream_interval_ms, upstream="nginx", load_cpu=1)
        upstreams = start_upstreams(stack, workdir, ns, paced=scenario.paced).upstreams
        running = stack.enter_context(llmroute_target(workdir, upstreams, binary=args.llmroute, cpu=0))
        call = running.call(scenario)
        body = workdir / "body.json"
        run_wrk(call, args.concurrency, 2, wrk_env(call, body, None), 1)  # warm-up
        load = subprocess.Popen(
            ["taskset", "-c", "1", "wrk", "-t1", f"-c{args.concurrency}", f"-d{args.duration + 2}s", "--timeout", "30s"]
            + ["-s", str(Path(__file__).resolve().parent / "wrk" / "post.lua"), call.url],
            env=wrk_env(call, body, None),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(1)
            cmd = [py_spy, "record", "--pid", str(running.server.pid), "--rate", str(args.rate)]
            cmd += ["--duration", str(args.duration), "--format", "raw", "--function", "--full-filenames"]
            if args.native:
                cmd.append("--native")
            if args.nonblocking:
                cmd.append("--nonblocking")
            subprocess.run([*cmd, "--output", str(out)], check=True, stdout=subprocess.DEVNULL)
        finally:
            stdout, _ = load.communicate(timeout=args.duration + 60)
        match = re.search(r"BENCH_RESULT (\{.*\})", stdout)
        print(f"wrk: {match.group(1) if match else stdout[-300:]}", file=sys.stderr)
    return out


async def _drive(call: Call, requests: int, concurrency: int) -> int:
    """Send exactly ``requests`` POSTs, ``concurrency`` at a time over keep-alive; the number that succeeded."""
    import aiohttp

    ok = 0
    todo = iter(range(requests))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:

        async def worker() -> None:
            nonlocal ok
            for _ in todo:
                async with session.post(call.url, data=call.body, headers=call.headers) as response:
                    body = await response.read()
                    ok += response.status == 200 and call.marker.encode() in body

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


def _callgrind_total(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError(f"no totals in {path}")


def count_instructions(args: argparse.Namespace) -> list[tuple[str, str, float]]:
    """Instructions per request (callgrind's Ir) of the gateway process, per source tree and scenario."""
    python = str(Path(args.llmroute).with_name("python")) if args.llmroute else sys.executable
    sources = args.source or [None]
    results: list[tuple[str, str, float]] = []
    os.sched_setaffinity(0, {1})  # the load beside the upstream; the gateway gets core 0
    with tempfile.TemporaryDirectory(prefix="llmroute-instr-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        ns = argparse.Namespace(stream_interval_ms=args.stream_interval_ms, upstream="nginx", load_cpu=1)
        chosen = [next(s for s in SCENARIOS if s.name == name) for name in args.scenarios]
        base = start_upstreams(stack, workdir, ns, paced=False).upstreams
        if any(s.paced for s in chosen):
            # The paced streams, one event per read as a model sends them: under callgrind the gateway is
            # ~50x slower, so the events are spaced out more (--paced-interval-ms) to keep them one per read.
            port = free_port()
            pacer = upstream_mod.python_server(
                workdir, port, interval_ms=0, paced_interval_ms=args.paced_interval_ms, cpu=1, name="paced-upstream"
            )
            stack.enter_context(pacer)
            paced = f"http://127.0.0.1:{port}"
            base = Upstreams(base.fast, paced)
            _wait_upstream(pacer, paced)
        for index, source in enumerate(sources):
            label = source or "this tree"
            port = free_port()
            config = workdir / f"gw{index}.toml"
            config.write_text(gateway_config(base, port))
            out = workdir / f"callgrind-{index}.out"
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]
            cmd += [python, "-m", "asgi_llmroute.cli", "serve", "--config", str(config)]
            cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
            here = str(Path(__file__).resolve().parent.parent)
            env = {**os.environ, "PYTHONPATH": source or here}
            gateway_url = f"http://127.0.0.1:{port}"
            with Server(f"gw{index}", pinned(cmd, 0), log=workdir / f"gw{index}.log", env=env, cwd=workdir) as gw:
                gw.wait_http(gateway_url + "/health", timeout=600)
                running = Running("llmroute", gw, gateway_url, "gateway")
                for scenario in chosen:
                    name = scenario.name
                    call = running.call(scenario)
                    warm = asyncio.run(_drive(call, args.warmup_requests, args.concurrency))
                    subprocess.run(["callgrind_control", "--zero", str(gw.pid)], check=True, capture_output=True)
                    ok = asyncio.run(_drive(call, args.requests, args.concurrency))
                    for old in workdir.glob(f"callgrind-{index}.out*"):
                        old.unlink()
                    subprocess.run(["callgrind_control", "--dump", str(gw.pid)], check=True, capture_output=True)
                    dumps = sorted(workdir.glob(f"callgrind-{index}.out*"), key=lambda p: p.stat().st_mtime)
                    total = _callgrind_total(dumps[-1])
                    if args.keep:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        shutil.copy(dumps[-1], args.keep / f"callgrind-{index}-{name.replace('>', '')}.out")
                    if ok != args.requests or warm != args.warmup_requests:
                        print(f"warning: {label} {name}: {ok}/{args.requests} OK", file=sys.stderr)
                    per = total / max(ok, 1)
                    results.append((label, name, per))
                    print(f"{label}\t{name}\t{per / 1e6:.3f} M instructions/request", file=sys.stderr, flush=True)
                    if scenario.paced:
                        print(f"{label}\t{name}\t{per / PACED_EVENTS / 1e3:.1f} k instructions/event", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="openai-json", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10, help="seconds of sampling")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--stream-interval-ms", type=float, default=0.0, help="as in run.py")
    parser.add_argument("--llmroute", default=default_llmroute())
    parser.add_argument("--py-spy", default=None, help="py-spy executable")
    parser.add_argument("--native", action="store_true", help="also sample C frames (py-spy --native)")
    parser.add_argument(
        "--nonblocking",
        action="store_true",
        help="sample without pausing the process (py-spy --nonblocking): no bias towards system calls",
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--summarise", type=Path, metavar="FILE", help="only summarise an existing raw profile")
    parser.add_argument("--instructions", action="store_true", help="count instructions per request (callgrind)")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="copy the callgrind dumps to DIR (for callgrind_annotate)"
    )
    parser.add_argument(
        "--scenarios", nargs="+", default=["openai-json", "openai-stream", "openai-client->anthropic-stream"]
    )
    parser.add_argument("--source", action="append", metavar="DIR", help="asgi_llmroute source tree (repeatable)")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per scenario (--instructions)")
    parser.add_argument("--warmup-requests", type=int, default=100)
    parser.add_argument(
        "--paced-interval-ms", type=float, default=10.0, help="event spacing of the paced streams (--instructions)"
    )
    args = parser.parse_args(argv)
    if args.instructions:
        results = count_instructions(args)
        print("| source | scenario | instructions/request |\n|---|---|---:|")
        for label, name, per in results:
            print(f"| {label} | {name} | {per / 1e6:.3f} M |")
        return 0
    path = args.summarise or profile(args)
    print(f"## {path.name}\n")
    with open(path) as f:
        print(summarise(parse_collapsed(f), args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
