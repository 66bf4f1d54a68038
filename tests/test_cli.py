"""The CLI as a user runs it: a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

LLMROUTE = [sys.executable, "-m", "asgi_llmroute.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LLMROUTE, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("[server]\nport = 'x'\n", "server.port: Input should be a valid integer"),
        ("[[models]]\nname='m'\nprovider='p'\nmodel='x'\n", "models[0].provider: no provider named 'p'"),
        ("not toml at all [", "invalid TOML"),
    ],
)
def test_invalid_config_exits_non_zero_without_traceback(tmp_path: Path, config: str, expected: str) -> None:
    (tmp_path / "bad.toml").write_text(config)
    result = run(["serve", "--config", "bad.toml"], tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("llmroute: error: bad.toml: ")
    assert expected in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = run(["serve", "--config", "nope.toml"], tmp_path)
    assert result.returncode == 2 and "nope.toml: cannot read the file" in result.stderr


def test_serve_embedded_default(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*LLMROUTE, "serve", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "llmroute serve did not come up"
            time.sleep(0.1)
        token_file = tmp_path / ".llmroute" / "router-token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        with openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0) as client:
            reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Hi"}])
        assert reply.choices[0].message.content == "Hello from the llmroute demo provider! You said: Hi"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert token in output  # printed at start-up for the newcomer
    assert "Traceback" not in output
    # A second start keeps the same token.
    assert (tmp_path / ".llmroute" / "router-token").read_text().strip() == token


def test_serve_with_several_workers(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "llmroute.toml").write_text(
        "[[tokens]]\nname = 't'\nkey = 'sk-workers-test'\n"
        "[[providers]]\nname = 'demo'\napi = 'openai'\nbase_url = 'builtin://demo/v1'\n"
        "[[models]]\nname = 'demo'\nprovider = 'demo'\nmodel = 'demo'\n"
    )
    process = subprocess.Popen(
        [*LLMROUTE, "serve", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "llmroute serve did not come up"
            time.sleep(0.2)
        with openai.OpenAI(base_url=f"{url}/v1", api_key="sk-workers-test", max_retries=0) as client:
            for _ in range(4):
                reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "w"}])
                assert reply.choices[0].message.content == "Hello from the llmroute demo provider! You said: w"
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert "Traceback" not in output
    assert output.count("Started server process") >= 2  # two workers
