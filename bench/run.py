"""Benchmark llmroute against the upstream called directly and its peers: LiteLLM's proxy, TensorZero's
gateway and Portkey's gateway (installed by bench/setup-peers).

    python bench/run.py [--duration S] [--repeat N] [--scenarios ...] [--targets ...] [--json out.json]
    python -m bench.run --scenarios startup rss-1000-streams workers     # the special scenarios, alone

Per target, scenario and concurrency: a warm-up wrk run, then a measured wrk run. Requests/s and the CPU time per
request come from a window inside the measured run (its first and last `margin` seconds are left out):
CPU = utime+stime of the target's process tree from /proc, read at both ends of the window, divided by the
OK responses that completed inside it. Latency percentiles are wrk's over the whole measured run.

Layout: the server under test (one worker) runs under `taskset -c 0`; wrk (one thread) and the upstream run
under `taskset -c 1`, and so does this script.

Special scenarios (not a target x concurrency matrix; each runnable alone):
  startup            seconds from spawning each gateway to its first answered request (openai-json), and the
                     CPU seconds it used until then; llmroute also on its embedded default (`llmroute serve`)
  rss-1000-streams   peak RSS of each gateway with N (1000) streams open at once, paced by the Python upstream
  workers            llmroute's req/s and CPU per request at c=16 with --workers 1 (one core) and 2 (two)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

if __package__ in (None, ""):  # run as `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bodies
from bench import upstream as upstream_mod
from bench.load import WRK_SCRIPT, Call, probe, run_load, run_wrk, wrk_available, wrk_env
from bench.procs import (
    Server,
    connections_to,
    core_busy_seconds,
    cpu_seconds,
    free_port,
    open_sockets,
    pinned,
    rss_bytes,
)
from bench.targets import (
    ALIASES,
    LITELLM_ENV,
    SCENARIOS,
    Running,
    Scenario,
    Style,
    Unsupported,
    Upstreams,
    default_litellm,
    default_llmroute,
    default_portkey,
    default_tensorzero,
    gateway_config,
    litellm_command,
    litellm_config,
    litellm_target,
    llmroute_command,
    llmroute_target,
    portkey_command,
    portkey_target,
    tensorzero_command,
    tensorzero_config,
    tensorzero_target,
    upstream_target,
)

__all__ = ["WRK_SCRIPT", "main", "probe", "run_wrk", "start_upstream", "wrk_env"]

TARGETS = ("upstream", "llmroute", "litellm", "tensorzero", "portkey")
PEERS = ("litellm", "tensorzero", "portkey")
#: The scenarios a run does when none are named (the paced and special ones are asked for by name or `all`).
DEFAULT_SCENARIOS = tuple(s.name for s in SCENARIOS if not s.paced)
SPECIAL = ("startup", "rss-1000-streams", "workers")
#: The startup scenario's second llmroute row: `llmroute serve` with no config (README's quick start).
EMBEDDED = "llmroute-embedded"

# The targets for the gateway (one worker on one core).
TARGET_CPU_JSON_MS = 0.5
TARGET_CPU_STREAM_MS = 0.7
TARGET_RPS_C16 = 2000.0
# Issue 15's.
TARGET_PACED_CPU_US = 10.0
#: "With no added latency per event": at most 1 ms over a 500-event stream, per event.
TARGET_PACED_ADDED_US = 2.0
TARGET_RSS_MIB = 100.0
TARGET_STARTUP_S = 0.5
#: rss-1000-streams counts only if at least this share of the streams was open upstream at one moment.
RSS_STREAMS_OPEN_SHARE = 0.95


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
    #: "wrk", or "python" (bench/load.py's generator: slow, for smoke tests where wrk is missing).
    load: str = "wrk"

    def durations(self, target: str) -> tuple[int, int]:
        """Measured and warm-up seconds for `target` (wrk takes whole seconds)."""
        if target == "litellm":
            return _seconds(self.litellm_duration), _seconds(self.litellm_warmup, 0)
        return _seconds(self.duration), _seconds(self.warmup, 0)


def _seconds(value: float, least: int = 1) -> int:
    return max(least, round(value))


def measure(
    running: Running, scenario: Scenario, concurrency: int, run: int, settings: Settings, workdir: Path
) -> Measurement:
    m = Measurement(running.name, scenario.name, concurrency, run)
    try:
        call = running.call(scenario)
    except Unsupported as exc:
        m.error = f"not supported: {exc}"
        return m
    m.error = probe(call)
    if m.error is not None:
        return m
    # The upstream target's paced calls are answered (and paced) by the Python server, not nginx: its CPU is
    # charged there. A gateway is charged its own process tree only, never the upstream's pacing.
    charged = running.charged(scenario)
    duration, warmup = settings.durations(running.name)
    body_file = workdir / "body.json"
    if warmup > 0:
        run_load(call, concurrency, warmup, body_file, None, settings.load_cpu, tool=settings.load)

    margin = min(max(0.15 * duration, 0.5), duration / 4)
    start = time.monotonic() + 0.05
    window = (start + margin, start + duration - margin)
    # wrk runs in a thread of its own (subprocess.run blocks), while this thread reads the CPU at both ends of
    # the window.
    cpu: list[float] = []
    core: list[float] = []
    result: dict[str, Any] = {}
    error: list[BaseException] = []

    def load() -> None:
        try:
            time.sleep(max(0.0, start - time.monotonic()))
            result.update(
                run_load(call, concurrency, duration, body_file, window, settings.load_cpu, tool=settings.load)
            )
        except BaseException as exc:  # reported below, in the calling thread
            error.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    for edge in window:
        time.sleep(max(0.0, edge - time.monotonic()))
        cpu.append(cpu_seconds(charged.pid))
        if settings.server_cpu is not None:
            core.append(core_busy_seconds(settings.server_cpu))
    thread.join()
    if error:
        raise error[0]
    charged.check_alive()

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


def _wait_upstream(server: Server, base: str) -> None:
    deadline = time.monotonic() + 20
    while probe(Call(base + "/json/v1/messages", {"Content-Type": "application/json"}, b"{}", '"content"')):
        server.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"upstream not ready: {server.log_tail()}")
        time.sleep(0.1)


def start_upstream(stack: ExitStack, workdir: Path, args: argparse.Namespace) -> tuple[Server, str]:
    """The main upstream: nginx, or the Python one with `--stream-interval-ms N` / `--upstream python` /
    without nginx. Returns the server and its base URL."""
    port = free_port()
    if args.stream_interval_ms > 0 or args.upstream == "python" or not upstream_mod.nginx_available():
        server = upstream_mod.python_server(workdir, port, interval_ms=args.stream_interval_ms, cpu=args.load_cpu)
    else:
        server = upstream_mod.nginx_server(workdir, port, cpu=args.load_cpu)
    stack.enter_context(server)
    base = f"http://127.0.0.1:{port}"
    _wait_upstream(server, base)
    return server, base


class UpstreamSet(NamedTuple):
    """The running upstreams: the main one (`server`), their URLs, and the server of the `/paced/` streams
    (None when no paced scenario runs; `server` itself when that is the Python one)."""

    server: Server
    upstreams: Upstreams
    pacer: Server | None = None


def start_upstreams(stack: ExitStack, workdir: Path, args: argparse.Namespace, *, paced: bool) -> UpstreamSet:
    """The main upstream and, if `paced`, the Python one for the `/paced/` streams (the main one if it is
    the Python server already)."""
    server, base = start_upstream(stack, workdir, args)
    if not paced:
        return UpstreamSet(server, Upstreams(base))
    if server.name == "upstream":  # the Python server serves /paced/ too
        return UpstreamSet(server, Upstreams(base, base), server)
    port = free_port()
    pacer = upstream_mod.python_server(workdir, port, interval_ms=0, cpu=args.load_cpu, name="paced-upstream")
    stack.enter_context(pacer)
    paced_base = f"http://127.0.0.1:{port}"
    _wait_upstream(pacer, paced_base)
    return UpstreamSet(server, Upstreams(base, paced_base), pacer)


def target_context(
    name: str,
    workdir: Path,
    upstream: UpstreamSet,
    args: argparse.Namespace,
    *,
    cpu: int | str | None = None,
    workers: int = 1,
    max_connections: int | None = None,
) -> AbstractContextManager[Running]:
    server, upstreams, pacer = upstream
    cpu = args.server_cpu if cpu is None else cpu
    if name == "upstream":
        return upstream_target(server, upstreams.fast, upstreams, paced_server=pacer)
    if name == "llmroute":
        return llmroute_target(
            workdir, upstreams, binary=args.llmroute, cpu=cpu, workers=workers, max_connections=max_connections
        )
    if name in args.variants:
        return llmroute_target(
            workdir, upstreams, binary=args.llmroute, cpu=cpu, name=name, variant=args.variants[name]
        )
    if name == "tensorzero":
        return tensorzero_target(workdir, upstreams, python=args.tensorzero, cpu=cpu)
    if name == "portkey":
        return portkey_target(workdir, upstreams, node=args.node, script=args.portkey, cpu=cpu)
    return litellm_target(workdir, upstreams, binary=args.litellm, cpu=cpu)


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        args.duration,
        args.warmup,
        args.litellm_duration,
        args.litellm_warmup,
        args.server_cpu,
        args.load_cpu,
        load=args.load,
    )


def run_all(args: argparse.Namespace, scenarios: Sequence[Scenario], targets: Sequence[str]) -> list[Measurement]:
    settings = settings_from(args)
    results: list[Measurement] = []
    paced = any(s.paced for s in scenarios)
    for run in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory(prefix="llmroute-bench-") as tmp, ExitStack() as stack:
            workdir = Path(tmp)
            upstream = start_upstreams(stack, workdir, args, paced=paced)
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


# --- special scenarios ------------------------------------------------------------------------------------------


@dataclass
class Special:
    """One measurement of a special scenario (startup, rss-1000-streams, workers) for one target."""

    scenario: str
    target: str
    run: int
    values: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def _scenario(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.name == name)


def _launch(
    name: str, workdir: Path, upstreams: Upstreams, args: argparse.Namespace
) -> tuple[Server, Callable[[], str | None], Running]:
    """A gateway's server, not started yet, a function that gives its base URL once known, and a Running to
    build calls with (its base URL filled in by the caller)."""
    port = free_port()
    env: dict[str, str] | None = None
    if name in ("llmroute", EMBEDDED):
        # As an installed package runs: with its bytecode cache (a source tree gets one on the first start).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cwd = workdir
    if name == EMBEDDED:
        # README's command, in a directory of its own: the first start creates .llmroute/, later ones read it.
        cwd = workdir / "embedded"
        cwd.mkdir(exist_ok=True)
        cmd = [args.llmroute, "serve", "--host", "127.0.0.1", "--port", str(port)]
    elif name == "llmroute":
        config = workdir / f"startup-{name}.toml"
        config.write_text(gateway_config(upstreams, port))
        cmd, _ = llmroute_command(args.llmroute, config, port)
    elif name == "litellm":
        config = workdir / "startup-litellm.yaml"
        config.write_text(litellm_config(upstreams))
        cmd = litellm_command(args.litellm, config, port)
        env = {**os.environ, **LITELLM_ENV}
    elif name == "tensorzero":
        config = workdir / "startup-tensorzero.toml"
        config.write_text(tensorzero_config(upstreams))
        url_file = workdir / "startup-tensorzero.url"
        url_file.unlink(missing_ok=True)
        cmd, env = tensorzero_command(args.tensorzero, config, url_file)
    elif name == "portkey":
        cmd = portkey_command(args.node, args.portkey, port)
        env = {**os.environ, "NODE_ENV": "production"}
    else:
        raise ValueError(f"no start-up measurement for {name}")
    server = Server(name, pinned(cmd, args.server_cpu), log=workdir / f"startup-{name}.log", env=env, cwd=cwd)

    def base() -> str | None:
        if name == "tensorzero":
            url_file = workdir / "startup-tensorzero.url"
            return url_file.read_text().strip() if url_file.exists() else None
        return f"http://127.0.0.1:{port}"

    running = Running(name, server, "", "gateway", style=cast(Style, name), upstreams=upstreams)
    return server, base, running


def _embedded_call(base_url: str, data_dir: Path) -> Call | None:
    """The README's first request to the embedded default (None until its router token file exists)."""
    try:
        token = (data_dir / "router-token").read_text().strip()
    except OSError:
        return None
    if not token:
        return None
    body = json.dumps({"model": "demo", "messages": [{"role": "user", "content": "Hi"}]}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return Call(url=f"{base_url}/v1/chat/completions", headers=headers, body=body, marker="chat.completion")


def time_to_first_answer(
    name: str, workdir: Path, upstreams: Upstreams, args: argparse.Namespace
) -> tuple[float, float]:
    """Seconds from spawning `name` to its first complete answer to an openai-json call, and the CPU seconds
    its process tree used until then (the figure a loaded machine changes least)."""
    server, base, running = _launch(name, workdir, upstreams, args)
    scenario = _scenario("openai-json")
    deadline_s = 180.0 if name == "litellm" else 60.0
    started = time.monotonic()  # before the spawn: the interpreter's own start counts
    with server:
        while True:
            url = base()
            if url is not None:
                running.base_url = url
                call = (
                    _embedded_call(url, workdir / "embedded" / ".llmroute")
                    if name == EMBEDDED
                    else running.call(scenario)
                )
                if call is not None and probe(call, timeout=10) is None:
                    return time.monotonic() - started, cpu_seconds(server.pid)
            server.check_alive()
            if time.monotonic() - started > deadline_s:
                raise TimeoutError(f"{name} not answering after {deadline_s:.0f}s: {server.log_tail(5)}")
            time.sleep(0.002)


def startup_runs(args: argparse.Namespace, targets: Sequence[str]) -> list[Special]:
    out: list[Special] = []
    for run in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory(prefix="llmroute-bench-") as tmp, ExitStack() as stack:
            workdir = Path(tmp)
            upstreams = start_upstreams(stack, workdir, args, paced=False).upstreams
            for target in [t for name in targets for t in ([name, EMBEDDED] if name == "llmroute" else [name])]:
                if target == "upstream" or target in args.variants:
                    continue
                sp = Special("startup", target, run)
                try:
                    tries = [time_to_first_answer(target, workdir, upstreams, args) for _ in range(args.startup_tries)]
                    times = [wall for wall, _ in tries]
                    sp.values = {
                        "seconds": statistics.median(times),
                        "min_s": min(times),
                        "max_s": max(times),
                        "cpu_s": statistics.median(cpu for _, cpu in tries),
                    }
                except (RuntimeError, TimeoutError, OSError) as exc:
                    sp.error = short(str(exc))
                log(f"  {describe_special(sp)}")
                out.append(sp)
    return out


def rss_runs(args: argparse.Namespace, targets: Sequence[str]) -> list[Special]:
    """Each gateway with `--rss-streams` concurrent 50-event streams, one event every `--rss-interval-ms`."""
    out: list[Special] = []
    scenario = _scenario("openai-stream")
    streams = args.rss_streams
    duration = _seconds(max(args.rss_duration, 2 * bodies.STREAM_EVENTS * args.rss_interval_ms / 1000 + 2))
    for run in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory(prefix="llmroute-bench-") as tmp, ExitStack() as stack:
            workdir = Path(tmp)
            port = free_port()
            pacer = upstream_mod.python_server(
                workdir, port, interval_ms=args.rss_interval_ms, cpu=args.load_cpu, name="rss-upstream"
            )
            stack.enter_context(pacer)
            base = f"http://127.0.0.1:{port}"
            _wait_upstream(pacer, base)
            for target in targets:
                if target == "upstream" or target in args.variants:
                    continue
                sp = Special("rss-1000-streams", target, run)
                try:
                    # llmroute's pool holds 256 connections per origin by default and queues the other
                    # requests: give it room for every stream (`--rss-pool`).
                    pool = max(streams, 256) if args.rss_pool is None else args.rss_pool
                    upstream = UpstreamSet(pacer, Upstreams(base))
                    with target_context(target, workdir, upstream, args, max_connections=pool or None) as running:
                        sp.values = _rss_under_streams(running, scenario, streams, duration, workdir, args, port)
                        sp.error = _rss_problem(sp.values, streams)
                except Unsupported as exc:
                    sp.error = f"not supported: {exc}"
                except (RuntimeError, TimeoutError, OSError, subprocess.TimeoutExpired) as exc:
                    sp.error = short(str(exc))
                log(f"  {describe_special(sp)}")
                out.append(sp)
    return out


def _rss_problem(values: dict[str, float], streams: int) -> str | None:
    """What makes an rss-1000-streams measurement not count: bad responses, or fewer upstream streams open at
    once than the clients asked for (a gateway that queues streams behind a small pool holds less memory)."""
    problems = []
    if values.get("bad", 0):
        problems.append(f"{values['bad']:.0f} bad responses")
    opened = values.get("upstream_peak", 0)
    if opened < RSS_STREAMS_OPEN_SHARE * streams:
        problems.append(f"only {opened:.0f} of {streams} streams open upstream at once (queued)")
    return "; ".join(problems) or None


def _rss_under_streams(
    running: Running,
    scenario: Scenario,
    streams: int,
    duration: int,
    workdir: Path,
    args: argparse.Namespace,
    upstream_port: int,
) -> dict[str, float]:
    call = running.call(scenario)
    error = probe(call)
    if error is not None:
        raise RuntimeError(error)
    pid = running.server.pid
    idle = rss_bytes(pid)
    result: dict[str, Any] = {}
    failure: list[BaseException] = []

    def load() -> None:
        try:
            result.update(run_load(call, streams, duration, workdir / "body.json", None, args.load_cpu, tool=args.load))
        except BaseException as exc:  # reported in the calling thread
            failure.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    peak, peak_sockets, peak_upstream = idle, 0, 0
    while thread.is_alive():
        peak = max(peak, rss_bytes(pid))
        peak_sockets = max(peak_sockets, open_sockets(pid))
        # Established connections to the upstream's port: the streams really open upstream at this moment
        # (each connection carries one stream at a time).
        peak_upstream = max(peak_upstream, connections_to(upstream_port, pid))
        time.sleep(0.1)
    thread.join()
    if failure:
        raise failure[0]
    running.server.check_alive()
    mib = 1024 * 1024
    return {
        "idle_mib": idle / mib,
        "peak_mib": peak / mib,
        "sockets_peak": float(peak_sockets),
        "upstream_peak": float(peak_upstream),
        "p50_s": result["latency_us"]["p50"] / 1e6,
        "ok": float(result["ok"]),
        "bad": float(result["bad"]),
    }


def workers_runs(args: argparse.Namespace) -> list[Special]:
    """llmroute at c=`--workers-concurrency` on openai-json with --workers 1 (one core) and 2 (two cores)."""
    out: list[Special] = []
    scenario = _scenario("openai-json")
    base_settings = settings_from(args)
    for run in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory(prefix="llmroute-bench-") as tmp, ExitStack() as stack:
            workdir = Path(tmp)
            upstream = start_upstreams(stack, workdir, args, paced=False)
            for workers, cpu in ((1, str(args.server_cpu)), (2, args.workers_cpus)):
                sp = Special("workers", f"llmroute --workers {workers}", run)
                settings = Settings(**{**asdict(base_settings), "server_cpu": None})
                try:
                    with target_context("llmroute", workdir, upstream, args, cpu=cpu, workers=workers) as running:
                        m = measure(running, scenario, args.workers_concurrency, run, settings, workdir)
                    if m.rps is None:
                        sp.error = m.error
                    else:
                        sp.values = {"rps": m.rps, "cpu_ms": m.cpu_ms or 0.0, "p50_ms": m.p50_ms or 0.0}
                        sp.values["cores"] = float(len(cpu.split(",")))
                        sp.error = m.error
                except (RuntimeError, TimeoutError, OSError, subprocess.TimeoutExpired) as exc:
                    sp.error = short(str(exc))
                log(f"  {describe_special(sp)}")
                out.append(sp)
    return out


def describe_special(sp: Special) -> str:
    values = ", ".join(f"{k} {v:,.3f}" for k, v in sp.values.items())
    return f"{sp.scenario:17} {sp.target:22} {values}" + (f"  [{sp.error}]" if sp.error else "")


def special_medians(results: Sequence[Special]) -> dict[tuple[str, str], Special]:
    grouped: dict[tuple[str, str], list[Special]] = {}
    for sp in results:
        grouped.setdefault((sp.scenario, sp.target), []).append(sp)
    out: dict[tuple[str, str], Special] = {}
    for (scenario, target), runs in grouped.items():
        med = Special(scenario, target, 0)
        keys = dict.fromkeys(k for sp in runs for k in sp.values)
        for key in keys:
            values = [sp.values[key] for sp in runs if key in sp.values]
            med.values[key] = statistics.median(values)
        med.error = "; ".join(sorted({sp.error for sp in runs if sp.error})) or None
        out[(scenario, target)] = med
    return out


_SPECIAL_COLUMNS: dict[str, list[tuple[str, str, int]]] = {
    "startup": [
        ("seconds", "s to first answer (median)", 3),
        ("min_s", "min s", 3),
        ("max_s", "max s", 3),
        ("cpu_s", "CPU s until then", 3),
    ],
    "rss-1000-streams": [
        ("peak_mib", "peak RSS MiB", 1),
        ("idle_mib", "idle RSS MiB", 1),
        ("upstream_peak", "upstream streams open (peak)", 0),
        ("sockets_peak", "sockets open (peak)", 0),
        ("p50_s", "p50 s per stream", 2),
        ("ok", "streams completed", 0),
    ],
    "workers": [("rps", "req/s", 0), ("cpu_ms", "CPU ms/req", 3), ("p50_ms", "p50 ms", 2), ("cores", "cores", 0)],
}


def special_table(med: dict[tuple[str, str], Special], scenario: str) -> str:
    columns = _SPECIAL_COLUMNS[scenario]
    rows = [["target", *(title for _, title, _ in columns)]]
    notes = []
    for (name, target), sp in med.items():
        if name != scenario:
            continue
        rows.append([target, *(_num(sp.values.get(key), digits) for key, _, digits in columns)])
        if sp.error:
            notes.append(f"- {target}: {sp.error}")
    return _markdown(rows) + ("\n\n" + "\n".join(notes) if notes else "")


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
    lines = [_markdown(rows)]
    if notes:
        lines.append("")
        for (target, error), cells in notes.items():
            lines.append(f"- {target}, {', '.join(cells)}: {error}")
    return "\n".join(lines)


def _markdown(rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|")
    return "\n".join(lines)


def _cell(m: Measurement | None, value: float | None, digits: int) -> str:
    if m is None:
        return "not run"
    if value is None:
        return "n/a" if (m.error or "").startswith("not supported") else "error"
    return _num(value, digits) + ("*" if m.error else "")


def summary(
    med: dict[tuple[str, str, int], Measurement],
    scenarios: Sequence[Scenario],
    targets: Sequence[str],
    concurrency: Sequence[int],
) -> str:
    """The side-by-side tables: CPU per request and req/s at the highest concurrency, p50 latency added to the
    upstream direct at the lowest, and per event for the paced streams. `n/a`: the target cannot make the
    call; `*`: some responses failed (see the full table's notes)."""
    hi, lo = max(concurrency), min(concurrency)
    gateways = [t for t in targets if t != "upstream"]
    peers = [t for t in gateways if t != "llmroute"] if "llmroute" in gateways else []
    blocks: list[str] = []

    def block(
        title: str,
        metric: Callable[[Measurement, Measurement | None], float | None],
        c: int,
        digits: int,
        chosen: Sequence[Scenario],
        ratios: bool,
    ) -> None:
        if not chosen:
            return
        header = ["scenario", *gateways] + ([f"{p} ÷ llmroute" for p in peers] if ratios else [])
        rows = [header]
        for scenario in chosen:
            up = med.get(("upstream", scenario.name, c))
            up = up if up is not None and up.rps is not None else None
            values: dict[str, float | None] = {}
            row = [scenario.name]
            for target in gateways:
                m = med.get((target, scenario.name, c))
                values[target] = metric(m, up) if m is not None and m.rps is not None else None
                row.append(_cell(m, values[target], digits))
            if ratios:
                row += [_ratio(values[p], values["llmroute"]) for p in peers]
            rows.append(row)
        blocks.append(f"{title}\n\n{_markdown(rows)}")

    def added_p50(m: Measurement, up: Measurement | None) -> float | None:
        return None if up is None or m.p50_ms is None or up.p50_ms is None else m.p50_ms - up.p50_ms

    block(f"CPU ms per request (c={hi})", lambda m, _: m.cpu_ms, hi, 3, scenarios, True)
    block(f"req/s (c={hi})", lambda m, _: m.rps, hi, 0, scenarios, True)
    if "upstream" in targets:
        block(f"p50 ms added to the upstream direct (c={lo})", added_p50, lo, 2, scenarios, False)
    paced = [s for s in scenarios if s.paced]
    n = bodies.PACED_EVENTS
    block(f"paced streams: CPU µs per event (c={hi})", lambda m, _: (m.cpu_ms or 0) * 1000 / n, hi, 1, paced, True)
    if "upstream" in targets:

        def per_event(m: Measurement, up: Measurement | None) -> float | None:
            added = added_p50(m, up)
            return None if added is None else added * 1000 / n

        block(f"paced streams: latency µs added per event (c={lo})", per_event, lo, 1, paced, False)
    return "\n\n".join(blocks)


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
    # Issue 15: ahead of every peer per core in a, b, c (below TensorZero, at most a third of Portkey).
    for alias, scenario in ALIASES.items():
        gw = med.get(("llmroute", scenario, 16))
        for peer, factor in (("tensorzero", 1.0), ("portkey", 1 / 3)):
            pm = med.get((peer, scenario, 16))
            if gw is None or gw.cpu_ms is None or pm is None or pm.cpu_ms is None:
                continue
            limit = pm.cpu_ms * factor
            what = f"llmroute {alias} ({scenario}) c=16 CPU < {'' if factor == 1 else '1/3 of '}{peer}'s"
            ok = gw.cpu_ms < limit if factor == 1 else gw.cpu_ms <= limit
            lines.append(f"- {what}: {gw.cpu_ms:.3f} vs {pm.cpu_ms:.3f} ms → {'met' if ok else 'NOT met'}")
    m = med.get(("llmroute", "paced-openai-stream", 16))
    if m is not None and m.cpu_ms is not None:
        per_event = m.cpu_ms * 1000 / bodies.PACED_EVENTS
        verdict = "met" if per_event <= TARGET_PACED_CPU_US else "NOT met"
        lines.append(
            f"- llmroute paced-openai-stream c=16 CPU per event <= {TARGET_PACED_CPU_US:g} µs: "
            f"{per_event:.1f} → {verdict}"
        )
    # "No added latency per event": a 500-event stream ends within TARGET_PACED_ADDED_US × 500 of the upstream
    # called directly (c=1; a fixed cost per request of a fraction of a millisecond is not per event).
    for scenario in ("paced-openai-stream", "paced-openai-client->anthropic-stream"):
        m, up = med.get(("llmroute", scenario, 1)), med.get(("upstream", scenario, 1))
        if m is None or up is None or m.p50_ms is None or up.p50_ms is None:
            continue
        added = (m.p50_ms - up.p50_ms) * 1000 / bodies.PACED_EVENTS
        verdict = "met" if added <= TARGET_PACED_ADDED_US else "NOT met"
        lines.append(
            f"- llmroute {scenario} c=1 latency added per event <= {TARGET_PACED_ADDED_US:g} µs: "
            f"{added:.1f} → {verdict}"
        )
    return lines


def special_verdicts(med: dict[tuple[str, str], Special]) -> list[str]:
    lines = []
    rss = med.get(("rss-1000-streams", "llmroute"))
    if rss is not None and "peak_mib" in rss.values:
        opened = rss.values.get("upstream_peak", 0)
        ok = rss.values["peak_mib"] < TARGET_RSS_MIB and rss.error is None
        lines.append(
            f"- llmroute peak RSS with the streams open < {TARGET_RSS_MIB:g} MiB: {rss.values['peak_mib']:.1f} "
            f"({opened:.0f} streams open upstream at the peak) → "
            + ("met" if ok else "NOT met")
            + (f" ({rss.error})" if rss.error else "")
        )
    for target, what in (("llmroute", "TOML config"), (EMBEDDED, "embedded default")):
        start = med.get(("startup", target))
        if start is not None and "seconds" in start.values:
            ok = start.values["seconds"] < TARGET_STARTUP_S
            lines.append(
                f"- llmroute start-up to the first answer ({what}) < {TARGET_STARTUP_S:g} s: "
                f"{start.values['seconds']:.3f} (CPU {start.values.get('cpu_s', float('nan')):.3f} s) → "
                + ("met" if ok else "NOT met")
            )
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
    choices = [*names, *SPECIAL, *ALIASES, "all"]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up before each run (default 1)")
    parser.add_argument("--litellm-duration", type=float, default=None, help="for LiteLLM (default: max(10, S))")
    parser.add_argument("--litellm-warmup", type=float, default=3.0, help="warm-up for LiteLLM (default 3)")
    parser.add_argument("--repeat", type=int, default=1, help="run everything N times, report medians")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=choices,
        default=list(DEFAULT_SCENARIOS),
        metavar="NAME",
        help=f"{', '.join(choices)} (a, b, c: {', '.join(ALIASES.values())}; all: every one; default: "
        f"{', '.join(DEFAULT_SCENARIOS)})",
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        choices=TARGETS,
        default=list(TARGETS),
        help="default: all; peers that are not installed are left out with a note (bench/setup-peers)",
    )
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
    parser.add_argument(
        "--tensorzero",
        default=default_tensorzero(),
        help="a Python with the tensorzero package (default: $TENSORZERO_PYTHON, .bench-peers/tensorzero)",
    )
    parser.add_argument(
        "--portkey",
        default=default_portkey(),
        help="Portkey's build/start-server.js (default: $PORTKEY_SERVER, .bench-peers/portkey)",
    )
    parser.add_argument("--node", default=shutil.which("node"), help="node, for Portkey (default: PATH)")
    parser.add_argument("--upstream", choices=("nginx", "python"), default="nginx")
    parser.add_argument(
        "--stream-interval-ms",
        type=float,
        default=0.0,
        help="pace upstream streams, one event per chunk every N ms (uses the python upstream; default: "
        "nginx sends each stream whole)",
    )
    parser.add_argument(
        "--load",
        choices=("wrk", "python"),
        default=None,
        help="load generator (default: wrk if installed, else bench/load.py's slow Python one)",
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="core for the server under test (default 0)")
    parser.add_argument("--load-cpu", type=int, default=1, help="core for wrk, the upstream and this script")
    special = parser.add_argument_group("special scenarios")
    special.add_argument(
        "--special-targets",
        nargs="+",
        choices=[t for t in TARGETS if t != "upstream"],
        default=None,
        metavar="TARGET",
        help="the gateways that startup and rss-1000-streams measure (default: those of --targets), e.g. "
        "llmroute tensorzero portkey to leave LiteLLM's slow start-ups and 1000 streams out",
    )
    special.add_argument("--startup-tries", type=int, default=3, help="start-ups per target and run (default 3)")
    special.add_argument("--rss-streams", type=int, default=1000, help="concurrent streams (default 1000)")
    special.add_argument(
        "--rss-interval-ms",
        type=float,
        default=100.0,
        help="pace of the 50-event streams held open (default 100 ms: each lasts ~5 s)",
    )
    special.add_argument(
        "--rss-pool",
        type=int,
        default=None,
        help="llmroute's [upstream] max_connections_per_origin in rss-1000-streams (default: the streams; 0: "
        "the gateway's default, 256, with which it queues the rest)",
    )
    special.add_argument("--rss-duration", type=float, default=12.0, help="seconds of load (default 12)")
    special.add_argument("--workers-concurrency", type=int, default=16, help="connections (default 16)")
    special.add_argument("--workers-cpus", default="0,1", help="taskset cores for --workers 2 (default 0,1)")
    parser.add_argument("--json", type=Path, help="write all runs, medians and the machine to this file")
    args = parser.parse_args(argv)
    wanted = ["all"] if "all" in args.scenarios else args.scenarios
    if wanted == ["all"]:
        wanted = [*names, *SPECIAL]
    args.scenarios = list(dict.fromkeys(ALIASES.get(name, name) for name in wanted))
    args.variants = {}
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        client, _, source = rest.partition("@")
        if not name or not client or name in TARGETS:
            parser.error(f"--variant {spec!r}: want NAME=CLIENT[@SRC], NAME not one of {', '.join(TARGETS)}")
        args.variants[name] = (client, source or None)
    if args.litellm_duration is None:
        args.litellm_duration = max(10.0, args.duration)
    if args.load is None:
        args.load = "wrk" if wrk_available() else "python"
    return args


def _installed(path: str | None) -> bool:
    return bool(path) and (Path(path or "").exists() or shutil.which(path or "") is not None)


def available_targets(args: argparse.Namespace, names: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """The targets asked for (`names`, default: --targets and the variants) that can run, and notes on those
    left out."""
    targets = list(dict.fromkeys([*args.targets, *args.variants] if names is None else names))
    skipped: list[str] = []
    missing = {
        "llmroute": (args.llmroute, "executable not found (pip install -e '.[all]' or --llmroute PATH)"),
        "litellm": (
            args.litellm,
            "not installed, columns skipped (--litellm PATH or LITELLM_BIN; see bench/README.md)",
        ),
        "tensorzero": (args.tensorzero, "not installed, columns skipped (bench/setup-peers or --tensorzero PYTHON)"),
        "portkey": (
            args.portkey if args.node else None,
            "not installed (or no node), columns skipped (bench/setup-peers or --portkey start-server.js)",
        ),
    }
    for name, (path, why) in missing.items():
        if name in targets and not _installed(path):
            skipped.append(f"{name}: {why}")
            targets.remove(name)
    return targets, skipped


def special_targets(args: argparse.Namespace, targets: Sequence[str]) -> tuple[list[str], list[str]]:
    """The gateways the startup and rss-1000-streams scenarios measure, `--special-targets` (default: the
    matrix's `targets`; never the upstream or a variant), that can run, and notes on those left out."""
    if args.special_targets is None:
        return [t for t in targets if t != "upstream" and t not in args.variants], []
    return available_targets(args, args.special_targets)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load == "python":
        log(
            "note: wrk not found (apt-get install -y wrk): using the slow Python load generator, "
            "figures are not comparable"
        )
    targets, skipped = available_targets(args)
    for note in skipped:
        log(f"note: {note}")
    if args.load_cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.load_cpu})
    scenarios = [s for s in SCENARIOS if s.name in args.scenarios]

    results = run_all(args, scenarios, targets) if scenarios else []
    specials: list[Special] = []
    gateways, skipped_special = special_targets(args, targets)
    skipped += [note for note in skipped_special if note not in skipped]
    if any(s in args.scenarios for s in ("startup", "rss-1000-streams")):
        for note in skipped_special:
            log(f"note: {note}")
    if "startup" in args.scenarios:
        log(f"startup: time to the first answered request ({', '.join(gateways)})")
        specials += startup_runs(args, gateways)
    if "rss-1000-streams" in args.scenarios:
        log(f"rss-1000-streams: RSS with {args.rss_streams} streams open ({', '.join(gateways)})")
        specials += rss_runs(args, gateways)
    if "workers" in args.scenarios and "llmroute" in targets:
        log("workers: llmroute --workers 1 and 2")
        specials += workers_runs(args)
    med = medians(results)
    special_med = special_medians(specials)
    info = machine_info()
    info["load_average"] = (
        " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    )
    upstream_kind = "python (paced)" if args.stream_interval_ms > 0 or args.upstream == "python" else "nginx"
    print()
    print(
        f"llmroute benchmark: medians of {args.repeat} run(s); {args.duration:g}s per run "
        f"({args.litellm_duration:g}s for LiteLLM); upstream {upstream_kind}"
        + (f", stream events every {args.stream_interval_ms:g} ms" if args.stream_interval_ms > 0 else "")
        + ("; load: Python generator (not wrk)" if args.load == "python" else "")
    )
    print(
        f"machine: {info.get('cpu', '?')}, {info['nproc']} cores, Python {info['python']}, "
        f"load average {info['load_average']}"
    )
    print("server under test on core", args.server_cpu, "; wrk + upstream on core", args.load_cpu)
    if scenarios:
        print()
        print(table(med, scenarios, targets, args.concurrency))
        print()
        print(summary(med, scenarios, targets, args.concurrency))
    for name in SPECIAL:
        if any(sp.scenario == name for sp in specials):
            print()
            print(f"{name}\n\n{special_table(special_med, name)}")
    for note in skipped:
        print(f"- {note}")
    sources = sorted({m.source for m in results if m.source})
    if len(sources) > 1:
        print(f"- WARNING: the gateway's source changed between runs ({', '.join(sources)}): medians mix versions")
    if "llmroute" in targets:
        print()
        print("Targets:")
        print("\n".join((verdicts(med) if results else []) + special_verdicts(special_med)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": info,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "runs": [asdict(m) for m in results],
            "medians": [asdict(m) for m in med.values()],
            "special_runs": [asdict(sp) for sp in specials],
            "special_medians": [asdict(sp) for sp in special_med.values()],
            "skipped": skipped,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
