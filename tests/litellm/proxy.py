"""Run LiteLLM's proxy (from its own environment, see scripts/test) as a real process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

LITELLM_MASTER_KEY = "sk-litellm-master-0123456789"


def litellm_bin() -> Path:
    """The folder holding LiteLLM's executables; skip (fail on CI) when it is not installed."""
    value = os.environ.get("LLMROUTE_TEST_LITELLM")
    if value and (Path(value) / "litellm").exists():
        return Path(value)
    if os.environ.get("CI"):
        pytest.fail("LiteLLM is not installed: run the tests with ./scripts/test")
    pytest.skip("LiteLLM is not installed (./scripts/test installs it into .venv-litellm)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def litellm_proxy(config: dict[str, Any], tmp: Path) -> Iterator[str]:
    """Start ``litellm --config`` on a random port, offline; yield its base URL."""
    folder = litellm_bin()
    path = tmp / "litellm_config.yaml"
    path.write_text(yaml.safe_dump(config))
    port = _free_port()
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network at start
        "LITELLM_TELEMETRY": "False",
        "NO_DOCS": "True",
    }
    log = (tmp / "litellm.log").open("w")
    process = subprocess.Popen(
        [
            str(folder / "litellm"),
            "--config",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"LiteLLM exited: {(tmp / 'litellm.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("LiteLLM did not start in time")
            time.sleep(0.25)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()


def run_litellm_sdk(script: str) -> Any:
    """Run ``script`` with LiteLLM's Python (the SDK); it prints one JSON document, returned here."""
    python = litellm_bin() / "python"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
