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

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from bench.targets import SCENARIOS, Running, Unsupported, Upstreams, tensorzero_config

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
    cmd += ["--scenarios", "openai-json", "c", "startup", "--concurrency", "2", "--duration", "1.5"]
    cmd += ["--warmup", "0", "--upstream", "python", "--load", load, "--startup-tries", "1", "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    result = json.loads(out.read_text())
    cells = {(m["target"], m["scenario"]): m for m in result["medians"]}
    # "c" is the alias of openai-client->anthropic-stream; the upstream target answers it in its own format.
    assert set(cells) == {
        (target, scenario)
        for target in ("upstream", "llmroute")
        for scenario in ("openai-json", "openai-client->anthropic-stream")
    }
    for key, m in cells.items():
        assert m["error"] is None, (key, m["error"], proc.stderr[-2000:])
        assert m["rps"] > 0 and m["ok"] > 0 and m["bad"] == 0, key
        assert m["cpu_ms"] is not None and m["cpu_ms"] >= 0, key
    # The gateway spends CPU on every request; the harness charges it to the gateway's process tree.
    assert cells[("llmroute", "openai-json")]["cpu_ms"] > 0
    (startup,) = result["special_medians"]
    assert startup["scenario"] == "startup" and startup["target"] == "llmroute" and startup["error"] is None
    assert 0 < startup["values"]["seconds"] < 60
    assert "CPU ms per request (c=2)" in proc.stdout
    assert "llmroute start-up to the first answer" in proc.stdout


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
