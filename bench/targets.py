"""What is measured: the scenarios (request shape and upstream answer) and the targets (who answers).

A target is the upstream called directly, the llmroute gateway, or LiteLLM's proxy. For each scenario a
target says which URL to POST, with which headers and body, and what a complete answer contains.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench import bodies
from bench.procs import Server, free_port, pinned

Api = Literal["openai", "anthropic"]

GATEWAY_TOKEN = "sk-bench-token"
UPSTREAM_KEY = "sk-upstream"
ANTHROPIC_VERSION = "2023-06-01"

_CLIENT_PATH: dict[Api, str] = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
_UPSTREAM_MODEL: dict[Api, str] = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5"}


@dataclass(frozen=True)
class Scenario:
    name: str
    client_api: Api
    upstream_api: Api
    stream: bool
    description: str

    @property
    def translated(self) -> bool:
        return self.client_api != self.upstream_api

    @property
    def shape(self) -> str:
        return "stream" if self.stream else "json"

    @property
    def model(self) -> str:
        """Model name clients ask the gateway / LiteLLM for; it selects the upstream API and path."""
        return f"{'gpt' if self.upstream_api == 'openai' else 'claude'}-bench-{self.shape}"

    @property
    def upstream_path(self) -> str:
        return f"/{self.shape}{_CLIENT_PATH[self.upstream_api]}"


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("openai-json", "openai", "openai", False, "OpenAI non-stream passthrough"),
    Scenario("openai-stream", "openai", "openai", True, "OpenAI 50-chunk stream passthrough"),
    Scenario("anthropic-json", "anthropic", "anthropic", False, "Anthropic non-stream passthrough"),
    Scenario("anthropic-stream", "anthropic", "anthropic", True, "Anthropic 50-event stream passthrough"),
    Scenario(
        "openai-client->anthropic-stream",
        "openai",
        "anthropic",
        True,
        "50-event Anthropic stream translated for an OpenAI client",
    ),
    Scenario(
        "anthropic-client->openai-stream",
        "anthropic",
        "openai",
        True,
        "50-chunk OpenAI stream translated for an Anthropic client",
    ),
)


def completion_marker(api: Api, stream: bool) -> str:
    """A string every complete, successful response body of that API and shape contains."""
    if stream:
        return "[DONE]" if api == "openai" else "message_stop"
    return '"choices"' if api == "openai" else '"content"'


def request_body(api: Api, model: str, stream: bool) -> bytes:
    if api == "openai":
        return bodies.openai_request(model, stream=stream)
    return bodies.anthropic_request(model, stream=stream)


@dataclass(frozen=True)
class Call:
    """One benchmark request: where it goes, what it carries, and how to tell that it succeeded."""

    url: str
    headers: dict[str, str]
    body: bytes
    marker: str


def _client_call(base_url: str, scenario: Scenario, token: str) -> Call:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if scenario.client_api == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    return Call(
        url=base_url + _CLIENT_PATH[scenario.client_api],
        headers=headers,
        body=request_body(scenario.client_api, scenario.model, scenario.stream),
        marker=completion_marker(scenario.client_api, scenario.stream),
    )


@dataclass
class Running:
    """A started target: the process tree whose CPU time is charged, and a way to build calls."""

    name: str
    server: Server
    base_url: str
    kind: Literal["upstream", "gateway"]
    token: str = GATEWAY_TOKEN

    def call(self, scenario: Scenario) -> Call:
        if self.kind == "gateway":
            return _client_call(self.base_url, scenario, self.token)
        # The upstream called directly, in its own format: the floor for the same-format relay.
        api = scenario.upstream_api
        headers = {"Content-Type": "application/json"}
        if api == "openai":
            headers["Authorization"] = f"Bearer {UPSTREAM_KEY}"
        else:
            headers["x-api-key"] = UPSTREAM_KEY
            headers["anthropic-version"] = ANTHROPIC_VERSION
        return Call(
            url=self.base_url + scenario.upstream_path,
            headers=headers,
            body=request_body(api, _UPSTREAM_MODEL[api], scenario.stream),
            marker=completion_marker(api, scenario.stream),
        )


def _provider_bases(upstream: str) -> dict[tuple[Api, str], str]:
    """Base URL per (API, shape), in the style each API's clients expect."""
    return {
        ("openai", "json"): f"{upstream}/json/v1",
        ("openai", "stream"): f"{upstream}/stream/v1",
        ("anthropic", "json"): f"{upstream}/json",
        ("anthropic", "stream"): f"{upstream}/stream",
    }


def _model_names() -> list[tuple[str, Api, str]]:
    return [
        (f"{'gpt' if api == 'openai' else 'claude'}-bench-{shape}", api, shape)
        for api in ("openai", "anthropic")
        for shape in ("json", "stream")
    ]


def gateway_config(upstream: str, port: int) -> str:
    """The llmroute TOML config: one provider per (API, shape), one model name per provider."""
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "",
        "[[tokens]]",
        'name = "bench"',
        f'key = "{GATEWAY_TOKEN}"',
    ]
    bases = _provider_bases(upstream)
    for model, api, shape in _model_names():
        lines += [
            "",
            "[[providers]]",
            f'name = "up-{api}-{shape}"',
            f'api = "{api}"',
            f'base_url = "{bases[(api, shape)]}"',
            f'api_key = "{UPSTREAM_KEY}"',
            "",
            "[[models]]",
            f'name = "{model}"',
            f'provider = "up-{api}-{shape}"',
            f'model = "{_UPSTREAM_MODEL[api]}"',
        ]
    return "\n".join(lines) + "\n"


def litellm_config(upstream: str) -> str:
    """LiteLLM's proxy config.yaml (written as JSON, which YAML reads)."""
    bases = _provider_bases(upstream)
    model_list = [
        {
            "model_name": model,
            "litellm_params": {
                "model": f"{api}/{_UPSTREAM_MODEL[api]}",
                "api_base": bases[(api, shape)],
                "api_key": UPSTREAM_KEY,
            },
        }
        for model, api, shape in _model_names()
    ]
    config = {
        "model_list": model_list,
        "general_settings": {"master_key": GATEWAY_TOKEN},
        "litellm_settings": {
            "drop_params": True,
            "telemetry": False,
            # /v1/messages to an openai/ model: translate to Chat Completions (like llmroute) rather than to
            # the Responses API, which the canned upstream does not serve.
            "use_chat_completions_url_for_anthropic_messages": True,
        },
    }
    return json.dumps(config, indent=2) + "\n"


# Keep LiteLLM offline: no cost-map download, no telemetry.
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "NO_DOCS": "True",
}


@contextmanager
def upstream_target(server: Server, base_url: str) -> Iterator[Running]:
    yield Running("upstream", server, base_url, "upstream")


@contextmanager
def llmroute_target(
    workdir: Path,
    upstream: str,
    *,
    binary: str,
    cpu: int | None,
    name: str = "llmroute",
    variant: tuple[str, str | None] | None = None,
) -> Iterator[Running]:
    """The gateway; ``variant`` = (upstream client, source tree or None) runs it through serve_variant.py."""
    port = free_port()
    config = workdir / f"{name}.toml"
    config.write_text(gateway_config(upstream, port))
    args = ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = None
    if variant is None:
        cmd = [binary, *args]
    else:
        client, source = variant
        cmd = [sys.executable, "-m", "bench.serve_variant", client, *args]
        here = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (source, here) if p)}
    base = f"http://127.0.0.1:{port}"
    with Server(name, pinned(cmd, cpu), log=workdir / f"{name}.log", env=env, cwd=workdir) as server:
        server.wait_http(base + "/health", timeout=60)
        yield Running(name, server, base, "gateway")


@contextmanager
def litellm_target(workdir: Path, upstream: str, *, binary: str, cpu: int | None) -> Iterator[Running]:
    port = free_port()
    config = workdir / "litellm.yaml"
    config.write_text(litellm_config(upstream))
    cmd = [binary, "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    env = {**os.environ, **LITELLM_ENV}
    base = f"http://127.0.0.1:{port}"
    with Server("litellm", pinned(cmd, cpu), log=workdir / "litellm.log", env=env, cwd=workdir) as server:
        server.wait_http(base + "/health/liveliness", timeout=180)
        yield Running("litellm", server, base, "gateway")


def default_llmroute() -> str | None:
    beside = Path(sys.executable).with_name("llmroute")
    if beside.exists():
        return str(beside)
    return shutil.which("llmroute")


def default_litellm() -> str | None:
    env = os.environ.get("LITELLM_BIN")
    if env:
        return env
    for candidate in (Path(sys.executable).with_name("litellm"), Path("/work/bench-venv/bin/litellm")):
        if candidate.exists():
            return str(candidate)
    return shutil.which("litellm")
