"""The CLI as a user runs it: a subprocess."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.cli import LLMROUTE, llmroute_serve


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
    with llmroute_serve([], tmp_path) as served:
        token_file = tmp_path / ".llmroute" / "router-token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        with openai.OpenAI(base_url=f"{served.url}/v1", api_key=token, max_retries=0) as client:
            reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Hi"}])
        assert reply.choices[0].message.content == "Hello from the llmroute demo provider! You said: Hi"
    assert token in served.output  # printed when it is created, for the newcomer
    assert "Traceback" not in served.output
    # A second start keeps the same token and does not print it again (start-up output ends up in logs).
    with llmroute_serve([], tmp_path) as again:
        again.wait_for("router token")
    assert (tmp_path / ".llmroute" / "router-token").read_text().strip() == token
    assert token not in again.output
    assert ".llmroute/router-token" in again.output


def test_serve_with_several_workers(tmp_path: Path) -> None:
    (tmp_path / "llmroute.toml").write_text(
        "[[tokens]]\nname = 't'\nkey = 'sk-workers-test'\n"
        "[[providers]]\nname = 'demo'\napi = 'openai'\nbase_url = 'builtin://demo/v1'\n"
        "[[models]]\nname = 'demo'\nprovider = 'demo'\nmodel = 'demo'\n"
    )
    with (
        llmroute_serve(["--workers", "2"], tmp_path) as served,
        openai.OpenAI(base_url=f"{served.url}/v1", api_key="sk-workers-test", max_retries=0) as client,
    ):
        served.wait_for("Started server process", 2)  # both workers (one may answer /health before the other)
        for _ in range(4):
            reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "w"}])
            assert reply.choices[0].message.content == "Hello from the llmroute demo provider! You said: w"
    assert "Traceback" not in served.output


def test_json_logging_covers_uvicorns_own_lines(tmp_path: Path) -> None:
    (tmp_path / "llmroute.toml").write_text(
        "[logging]\nformat = 'json'\n"
        "[[tokens]]\nname = 't'\nkey = 'sk-json-logs-test'\n"
        "[[providers]]\nname = 'demo'\napi = 'openai'\nbase_url = 'builtin://demo/v1'\n"
        "[[models]]\nname = 'demo'\nprovider = 'demo'\nmodel = 'demo'\n"
    )
    with llmroute_serve([], tmp_path) as served:
        served.wait_for("Application startup complete")
        httpx.get(f"{served.url}/v1/models", headers={"Authorization": "Bearer sk-json-logs-test"})
    lines = [line for line in served.output.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, uvicorn's included, is one JSON object
    assert any(r["logger"].startswith("uvicorn") and "Uvicorn running on" in r["msg"] for r in records)


def test_the_import_formats_offered_are_the_importers() -> None:
    from asgi_llmroute.cli_providers import IMPORT_FORMATS
    from asgi_llmroute.importers import FORMATS

    assert tuple(FORMATS) == IMPORT_FORMATS
