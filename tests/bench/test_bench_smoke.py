"""The benchmark harness (bench/) in its smallest configuration, so that its code cannot rot unnoticed.

The upstream called directly and the gateway only (the peers are not installed here), one second per cell,
the Python upstream and, where wrk is missing (CI), the Python load generator. The figures are not looked
at, only that every part of a run produces them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from bench.targets import SCENARIOS, Running, Unsupported, Upstreams, gateway_config, tensorzero_config

ROOT = Path(__file__).resolve().parent.parent.parent
LOADS = ["python", pytest.param("wrk", marks=pytest.mark.skipif(shutil.which("wrk") is None, reason="no wrk"))]


def _llmroute() -> str:
    beside = Path(sys.executable).with_name("llmroute")
    found = str(beside) if beside.exists() else shutil.which("llmroute")
    if found is None:
        pytest.skip("llmroute executable not installed")
    return found


@pytest.mark.parametrize("load", LOADS)
def test_smallest_run_against_upstream_and_gateway(tmp_path: Path, load: str) -> None:
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "bench.run", "--targets", "upstream", "llmroute", "--llmroute", _llmroute()]
    cmd += ["--scenarios", "openai-json", "c", "g", "startup", "--concurrency", "2", "--duration", "1.5"]
    cmd += ["--warmup", "0", "--upstream", "python", "--load", load, "--startup-tries", "1", "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    result = json.loads(out.read_text())
    cells = {(m["target"], m["scenario"]): m for m in result["medians"]}
    # "c" is the alias of openai-client->anthropic-stream, "g" of openai-client->gemini-stream; the upstream
    # target answers them in its own format (Gemini: streamGenerateContent?alt=sse, ended by a finishReason).
    assert set(cells) == {
        (target, scenario)
        for target in ("upstream", "llmroute")
        for scenario in ("openai-json", "openai-client->anthropic-stream", "openai-client->gemini-stream")
    }
    for key, m in cells.items():
        assert m["error"] is None, (key, m["error"], proc.stderr[-2000:])
        assert m["rps"] > 0 and m["ok"] > 0 and m["bad"] == 0, key
        assert m["cpu_ms"] is not None and m["cpu_ms"] >= 0, key
    # The gateway spends CPU on every request; the harness charges it to the gateway's process tree.
    assert cells[("llmroute", "openai-json")]["cpu_ms"] > 0
    assert "openai-client->gemini-stream" in proc.stdout.split("CPU ms per request (c=2)", 1)[1]
    startups = {sp["target"]: sp for sp in result["special_medians"]}
    assert set(startups) == {"llmroute", "llmroute-embedded"}  # a TOML config, and README's `llmroute serve`
    for startup in startups.values():
        assert startup["scenario"] == "startup" and startup["error"] is None
        assert 0 < startup["values"]["seconds"] < 60
        assert 0 < startup["values"]["cpu_s"] < startup["values"]["seconds"] + 1
    assert "CPU ms per request (c=2)" in proc.stdout
    assert "llmroute start-up to the first answer" in proc.stdout


def test_gateway_config_pool_bound() -> None:
    from bench.targets import gateway_config

    assert "upstream" not in tomllib.loads(gateway_config("http://127.0.0.1:1", 8000))
    config = tomllib.loads(gateway_config("http://127.0.0.1:1", 8000, max_connections=1000))
    assert config["upstream"] == {"max_connections_per_origin": 1000}


def test_peer_configs_and_calls() -> None:
    upstreams = Upstreams("http://127.0.0.1:1", "http://127.0.0.1:2")
    config = tomllib.loads(tensorzero_config(upstreams))
    assert config["gateway"]["observability"]["enabled"] is False
    paced = config["models"]["gpt-bench-paced"]["providers"]["up"]
    assert paced["api_base"] == "http://127.0.0.1:2/paced/v1/"
    assert config["models"]["claude-bench-stream"]["providers"]["up"]["api_base"] == "http://127.0.0.1:1/stream/v1/"

    by_name = {s.name: s for s in SCENARIOS}
    tz = Running("tensorzero", None, "http://gw", "gateway", style="tensorzero", upstreams=upstreams)  # type: ignore[arg-type]
    assert tz.call(by_name["openai-json"]).url == "http://gw/openai/v1/chat/completions"
    assert b"tensorzero::model_name::gpt-bench-json" in tz.call(by_name["openai-json"]).body
    with pytest.raises(Unsupported):
        tz.call(by_name["anthropic-json"])

    pk = Running("portkey", None, "http://gw", "gateway", style="portkey", upstreams=upstreams)  # type: ignore[arg-type]
    call = pk.call(by_name["openai-client->anthropic-stream"])
    assert call.url == "http://gw/v1/chat/completions" and call.marker == "[DONE]"
    assert call.headers["x-portkey-provider"] == "anthropic"
    assert call.headers["x-portkey-custom-host"] == "http://127.0.0.1:1/stream/v1"
    # The Gemini scenario is llmroute's only: the peers say so instead of calling an upstream they lack.
    for peer in (tz, pk, Running("litellm", None, "http://gw", "gateway", style="litellm")):  # type: ignore[arg-type]
        with pytest.raises(Unsupported):
            peer.call(by_name["openai-client->gemini-stream"])
    gemini = tomllib.loads(gateway_config(upstreams, 1))
    provider = next(p for p in gemini["providers"] if p["name"] == "up-gemini-stream")
    assert provider["kind"] == "gemini" and provider["base_url"] == "http://127.0.0.1:1/stream/v1beta"
    direct = Running("upstream", None, "http://up", "upstream", style="upstream", upstreams=upstreams)  # type: ignore[arg-type]
    call = direct.call(by_name["openai-client->gemini-stream"])
    assert call.url == "http://127.0.0.1:1/stream/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert call.headers["x-goog-api-key"] and call.marker == '"finishReason"'


def _run_bench(tmp_path: Path, *args: str) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "bench.run", "--llmroute", _llmroute(), *args, "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc


def test_paced_upstream_charged_and_streams_counted_upstream(tmp_path: Path) -> None:
    """The upstream called directly is charged the CPU of the server that paces its streams (not the idle main
    upstream), and rss-1000-streams counts the streams open upstream; the special scenarios run for
    --special-targets only."""
    result, proc = _run_bench(
        tmp_path,
        *("--targets", "upstream", "llmroute", "--special-targets", "llmroute"),
        *("--scenarios", "paced-openai-stream", "rss-1000-streams", "--concurrency", "2", "--duration", "2"),
        *("--warmup", "0", "--load", "python", "--rss-streams", "12", "--rss-interval-ms", "20"),
        *("--rss-duration", "2"),
    )
    cells = {(m["target"], m["scenario"]): m for m in result["medians"]}
    upstream = cells[("upstream", "paced-openai-stream")]
    assert upstream["error"] is None, upstream
    # 500 events written one by one by the Python upstream cost it far more than 0.05 ms per stream.
    assert upstream["cpu_ms"] > 0.05, upstream
    (rss,) = result["special_medians"]
    assert (rss["scenario"], rss["target"]) == ("rss-1000-streams", "llmroute"), rss
    assert rss["error"] is None, rss
    assert rss["values"]["upstream_peak"] >= 12 * 0.95, rss
    assert rss["values"]["p50_s"] > 0.5, rss  # 50 events 20 ms apart
    assert "upstream streams open (peak)" in proc.stdout
    assert "paced-openai-stream c=1 latency added per event" not in proc.stdout  # measured at c=2 only

    from bench.report import report

    again = report(result)
    assert "paced streams: CPU µs per event (c=2)" in again and "upstream streams open (peak)" in again
    assert again.split("Targets:")[1].strip() in proc.stdout


def test_connections_to_counts_established_connections_of_the_tree() -> None:
    import socket

    from bench.procs import connections_to

    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    ports = [s.getsockname()[1] for s in listeners]
    clients = [socket.create_connection(("127.0.0.1", ports[0])) for _ in range(3)]
    clients.append(socket.create_connection(("127.0.0.1", ports[1])))
    try:
        assert connections_to(ports[0], os.getpid()) == 3
        assert connections_to(ports[1], os.getpid()) == 1
        clients[0].close()
        assert connections_to(ports[0], os.getpid()) == 2
    finally:
        for s in [*clients, *listeners]:
            s.close()


def test_rss_counts_only_when_the_streams_were_open_upstream() -> None:
    from bench.run import _rss_problem

    assert _rss_problem({"upstream_peak": 1000.0, "bad": 0.0}, 1000) is None
    assert _rss_problem({"upstream_peak": 960.0}, 1000) is None
    queued = _rss_problem({"upstream_peak": 100.0}, 1000)
    assert queued is not None and "only 100 of 1000" in queued
    bad = _rss_problem({"upstream_peak": 1000.0, "bad": 3.0}, 1000)
    assert bad is not None and "3 bad responses" in bad


def test_special_targets() -> None:
    from bench.run import parse_args, special_targets

    args = parse_args(["--targets", "upstream", "llmroute", "litellm"])
    assert special_targets(args, ["upstream", "llmroute", "litellm"]) == (["llmroute", "litellm"], [])
    args = parse_args(["--special-targets", "llmroute", "--llmroute", sys.executable])
    assert special_targets(args, ["upstream", "llmroute", "litellm"]) == (["llmroute"], [])
    args = parse_args(["--special-targets", "llmroute", "portkey", "--llmroute", sys.executable, "--node", ""])
    gateways, notes = special_targets(args, ["upstream", "llmroute"])
    assert gateways == ["llmroute"] and len(notes) == 1 and notes[0].startswith("portkey: ")


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
def test_portkey_listens_on_loopback_only() -> None:
    from bench.targets import portkey_command

    script = "\n".join(
        [
            'const http = require("http");',
            "const shapes = [[0], [0, undefined, () => {}], [0, () => {}], [{ port: 0 }], [0, 16]];",
            "let left = shapes.length;",
            "for (const args of shapes) {",
            "  const server = http.createServer();",
            '  server.on("listening", () => {',
            "    console.log(server.address().address);",
            "    server.close();",
            "  });",
            "  server.listen(...args);",
            "}",
        ]
    )
    cmd = portkey_command("node", "-e", 0)
    assert cmd[:3] == ["node", "--require", cmd[2]] and cmd[3] == "-e"
    proc = subprocess.run([*cmd[:3], "-e", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["127.0.0.1"] * 5
