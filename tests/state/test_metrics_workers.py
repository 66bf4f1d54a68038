"""`llmroute serve --workers 2`: /metrics, whichever worker answers, counts the requests of both."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.support.cli import llmroute_serve


def _requests_total(text: str) -> float:
    total = 0.0
    for line in text.splitlines():
        match = re.match(r'llmroute_requests_total\{[^}]*model="demo"[^}]*\} ([0-9.e+]+)$', line)
        if match:
            total += float(match.group(1))
    return total


def test_metrics_sum_the_workers(tmp_path: Path) -> None:
    (tmp_path / "llmroute.toml").write_text(
        "[[tokens]]\nname = 't'\nkey = 'sk-workers-metrics-0123456789'\n"
        "[metrics]\nopen = true\n"
        "[[providers]]\nname = 'demo'\napi = 'openai'\nbase_url = 'builtin://demo/v1'\n"
        "[[models]]\nname = 'demo'\nprovider = 'demo'\nmodel = 'demo'\n"
    )
    body = {"model": "demo", "messages": [{"role": "user", "content": "m"}]}
    with llmroute_serve(["--workers", "2"], tmp_path) as served:
        served.wait_for("Started server process", 2)
        for _ in range(20):  # new connections: uvicorn's workers share the socket, both take some
            reply = httpx.post(
                f"{served.url}/v1/chat/completions",
                json=body,
                headers={"authorization": "Bearer sk-workers-metrics-0123456789"},
            )
            assert reply.status_code == 200
        for _ in range(6):
            assert _requests_total(httpx.get(f"{served.url}/metrics").text) == 20
    assert "Traceback" not in served.output
