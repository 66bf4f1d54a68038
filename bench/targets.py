"""What is measured: the scenarios (request shape and upstream answer) and the targets (who answers).

A target is the upstream called directly, the llmroute gateway, or a peer gateway: LiteLLM's proxy,
TensorZero's gateway, Portkey's gateway. For each scenario a target says which URL to POST, with which headers
and body, and what a complete answer contains (or that it cannot make that call: `Unsupported`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from bench import bodies
from bench.load import Call
from bench.procs import Server, free_port, pinned

Api = Literal["openai", "anthropic", "gemini"]

GATEWAY_TOKEN = "sk-bench-token"
UPSTREAM_KEY = "sk-upstream"
ANTHROPIC_VERSION = "2023-06-01"

_CLIENT_PATH: dict[Api, str] = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
_UPSTREAM_MODEL: dict[Api, str] = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-5",
    "gemini": bodies.GEMINI_MODEL,
}
#: The Gemini API's paths under a provider's base URL (`{root}/{shape}/v1beta`); streams add `?alt=sse`.
_GEMINI_PATH = {
    True: f"/v1beta/models/{bodies.GEMINI_MODEL}:streamGenerateContent",
    False: f"/v1beta/models/{bodies.GEMINI_MODEL}:generateContent",
}
_MODEL_PREFIX: dict[Api, str] = {"openai": "gpt", "anthropic": "claude", "gemini": "gemini"}
Shape = Literal["json", "stream", "paced"]
SHAPES: tuple[Shape, ...] = ("json", "stream", "paced")

#: Where the peers are installed by `bench/setup-peers` (relative to the repository).
PEERS_DIR = Path(__file__).resolve().parent.parent / ".bench-peers"


class Unsupported(Exception):
    """The target cannot make this scenario's call (e.g. no endpoint for that client API)."""


class Upstreams(NamedTuple):
    """Base URLs of the fake upstreams: `fast` (nginx, streams sent whole) and `paced` (the Python server
    that sends the `/paced/` streams one event per chunk), which may be the same server."""

    fast: str
    paced: str | None = None

    def base(self, shape: Shape) -> str:
        if shape == "paced":
            if self.paced is None:
                raise RuntimeError("no paced upstream running")
            return self.paced
        return self.fast


@dataclass(frozen=True)
class Scenario:
    name: str
    client_api: Api
    upstream_api: Api
    stream: bool
    description: str
    #: The upstream sends a `bodies.PACED_EVENTS`-event stream, one event per chunk, 1 ms apart.
    paced: bool = False

    @property
    def translated(self) -> bool:
        return self.client_api != self.upstream_api

    @property
    def shape(self) -> Shape:
        if self.paced:
            return "paced"
        return "stream" if self.stream else "json"

    @property
    def model(self) -> str:
        """Model name clients ask the gateway / LiteLLM for; it selects the upstream API and path."""
        return f"{_MODEL_PREFIX[self.upstream_api]}-bench-{self.shape}"

    @property
    def upstream_path(self) -> str:
        if self.upstream_api == "gemini":
            return f"/{self.shape}{_GEMINI_PATH[self.stream]}" + ("?alt=sse" if self.stream else "")
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
    Scenario(
        "paced-openai-stream",
        "openai",
        "openai",
        True,
        "500-chunk OpenAI stream, one chunk per ms, passthrough",
        paced=True,
    ),
    Scenario(
        "paced-openai-client->anthropic-stream",
        "openai",
        "anthropic",
        True,
        "500-event Anthropic stream, one event per ms, translated for an OpenAI client",
        paced=True,
    ),
    Scenario(
        "openai-client->gemini-stream",
        "openai",
        "gemini",
        True,
        "50-event Gemini streamGenerateContent?alt=sse stream translated for an OpenAI client",
    ),
)

#: The issue's short names for the three headline scenarios, and `g` for the Gemini one beside them.
ALIASES = {
    "a": "openai-json",
    "b": "openai-stream",
    "c": "openai-client->anthropic-stream",
    "g": "openai-client->gemini-stream",
}


def completion_marker(api: Api, stream: bool) -> str:
    """A string every complete, successful response body of that API and shape contains."""
    if api == "gemini":
        return '"finishReason"' if stream else '"candidates"'
    if stream:
        return "[DONE]" if api == "openai" else "message_stop"
    return '"choices"' if api == "openai" else '"content"'


def request_body(api: Api, model: str, stream: bool) -> bytes:
    if api == "gemini":
        return bodies.gemini_request()
    if api == "openai":
        return bodies.openai_request(model, stream=stream)
    return bodies.anthropic_request(model, stream=stream)


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


Style = Literal["upstream", "llmroute", "litellm", "tensorzero", "portkey"]


@dataclass
class Running:
    """A started target: the process tree whose CPU time is charged, and a way to build calls."""

    name: str
    server: Server
    base_url: str
    kind: Literal["upstream", "gateway"]
    token: str = GATEWAY_TOKEN
    #: How calls are made: llmroute and LiteLLM take the same calls (model names from their configs);
    #: TensorZero and Portkey have their own conventions.
    style: Style = "llmroute"
    upstreams: Upstreams | None = None
    #: The upstream target only: the Python server that answers (and paces) the `/paced/` streams.
    paced_server: Server | None = None

    def charged(self, scenario: Scenario) -> Server:
        """The process tree whose CPU time a measurement of `scenario` is charged to: the server that answers
        the call (for the upstream called directly, the paced scenarios' Python server)."""
        if self.kind == "upstream" and scenario.paced and self.paced_server is not None:
            return self.paced_server
        return self.server

    def call(self, scenario: Scenario) -> Call:
        if scenario.upstream_api == "gemini" and self.style not in ("llmroute", "upstream"):
            raise Unsupported(f"no Gemini upstream configured for {self.name} in bench/")
        if self.style == "tensorzero":
            return _tensorzero_call(self.base_url, scenario)
        if self.style == "portkey":
            assert self.upstreams is not None
            return _portkey_call(self.base_url, scenario, self.upstreams)
        if self.kind == "gateway":
            return _client_call(self.base_url, scenario, self.token)
        # The upstream called directly, in its own format: the floor for the same-format relay.
        api = scenario.upstream_api
        headers = {"Content-Type": "application/json"}
        if api == "openai":
            headers["Authorization"] = f"Bearer {UPSTREAM_KEY}"
        elif api == "gemini":
            headers["x-goog-api-key"] = UPSTREAM_KEY
        else:
            headers["x-api-key"] = UPSTREAM_KEY
            headers["anthropic-version"] = ANTHROPIC_VERSION
        base = self.upstreams.base(scenario.shape) if self.upstreams is not None else self.base_url
        return Call(
            url=base + scenario.upstream_path,
            headers=headers,
            body=request_body(api, _UPSTREAM_MODEL[api], scenario.stream),
            marker=completion_marker(api, scenario.stream),
        )


def _provider_bases(upstreams: Upstreams | str) -> dict[tuple[Api, Shape], str]:
    """Base URL per (API, shape), in the style each API's clients expect (OpenAI's ends in /v1)."""
    if isinstance(upstreams, str):
        upstreams = Upstreams(upstreams)
    bases: dict[tuple[Api, Shape], str] = {}
    for shape in SHAPES:
        if shape == "paced" and upstreams.paced is None:
            continue
        root = upstreams.base(shape)
        bases[("openai", shape)] = f"{root}/{shape}/v1"
        bases[("anthropic", shape)] = f"{root}/{shape}"
    return bases


def _model_names(upstreams: Upstreams | str) -> list[tuple[str, Api, Shape]]:
    bases = _provider_bases(upstreams)
    return [(f"{'gpt' if api == 'openai' else 'claude'}-bench-{shape}", api, shape) for api, shape in bases]


def gateway_config(upstream: Upstreams | str, port: int, *, max_connections: int | None = None) -> str:
    """The llmroute TOML config: one provider per (API, shape), one model name per provider; with
    `max_connections`, the upstream pool's bound per origin (default 256)."""
    lines = [
        "[server]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "",
        "[[tokens]]",
        'name = "bench"',
        f'key = "{GATEWAY_TOKEN}"',
    ]
    if max_connections is not None:
        lines += ["", "[upstream]", f"max_connections_per_origin = {max_connections}"]
    bases = _provider_bases(upstream)
    for model, api, shape in _model_names(upstream):
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
    # Gemini (llmroute only; the peers' configs keep to OpenAI and Anthropic): `{base_url}/models/{model}:...`.
    fast = upstream if isinstance(upstream, str) else upstream.fast
    for shape in ("json", "stream"):
        lines += [
            "",
            "[[providers]]",
            f'name = "up-gemini-{shape}"',
            'kind = "gemini"',
            f'base_url = "{fast}/{shape}/v1beta"',
            f'api_key = "{UPSTREAM_KEY}"',
            "",
            "[[models]]",
            f'name = "gemini-bench-{shape}"',
            f'provider = "up-gemini-{shape}"',
            f'model = "{bodies.GEMINI_MODEL}"',
        ]
    return "\n".join(lines) + "\n"


def litellm_config(upstream: Upstreams | str) -> str:
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
        for model, api, shape in _model_names(upstream)
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


def tensorzero_config(upstream: Upstreams | str) -> str:
    """TensorZero's tensorzero.toml: one model per (API, shape) with one provider whose api_base is the
    upstream; observability (ClickHouse) off, as for the other targets, which record nothing either."""
    bases = _provider_bases(upstream)
    lines = ["[gateway]", "observability.enabled = false"]
    for model, api, shape in _model_names(upstream):
        # TensorZero appends `chat/completions` / `messages` to an api_base ending in `/v1/`.
        base = bases[(api, shape)] + ("/" if api == "openai" else "/v1/")
        lines += [
            "",
            f'[models."{model}"]',
            'routing = ["up"]',
            "",
            f'[models."{model}".providers.up]',
            f'type = "{api}"',
            f'model_name = "{_UPSTREAM_MODEL[api]}"',
            f'api_base = "{base}"',
            'api_key_location = "env::BENCH_UPSTREAM_KEY"',
        ]
    return "\n".join(lines) + "\n"


def _tensorzero_call(base_url: str, scenario: Scenario) -> Call:
    """TensorZero's OpenAI-compatible endpoint; it has no Anthropic Messages endpoint for clients."""
    if scenario.client_api != "openai":
        raise Unsupported("TensorZero serves no Anthropic Messages API to clients (OpenAI-compatible only)")
    return Call(
        url=base_url + "/openai/v1/chat/completions",
        headers={"Content-Type": "application/json"},
        body=request_body("openai", f"tensorzero::model_name::{scenario.model}", scenario.stream),
        marker=completion_marker("openai", scenario.stream),
    )


def _portkey_call(base_url: str, scenario: Scenario, upstreams: Upstreams) -> Call:
    """Portkey's gateway is configured per request: provider and custom host in `x-portkey-*` headers, the
    upstream key in Authorization (it sends it on as the provider expects)."""
    base = _provider_bases(upstreams)[(scenario.upstream_api, scenario.shape)]
    if scenario.upstream_api == "anthropic":
        base += "/v1"  # Portkey appends `/messages` to the custom host
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {UPSTREAM_KEY}",
        "x-portkey-provider": scenario.upstream_api,
        "x-portkey-custom-host": base,
    }
    if scenario.client_api == "anthropic":
        headers["anthropic-version"] = ANTHROPIC_VERSION
        headers["x-api-key"] = UPSTREAM_KEY
    return Call(
        url=base_url + _CLIENT_PATH[scenario.client_api],
        headers=headers,
        body=request_body(scenario.client_api, _UPSTREAM_MODEL[scenario.upstream_api], scenario.stream),
        marker=completion_marker(scenario.client_api, scenario.stream),
    )


# Keep LiteLLM offline: no cost-map download, no telemetry.
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "NO_DOCS": "True",
}


@contextmanager
def upstream_target(
    server: Server, base_url: str, upstreams: Upstreams | None = None, *, paced_server: Server | None = None
) -> Iterator[Running]:
    yield Running(
        "upstream", server, base_url, "upstream", style="upstream", upstreams=upstreams, paced_server=paced_server
    )


def llmroute_command(
    binary: str, config: Path, port: int, *, workers: int = 1, variant: tuple[str, str | None] | None = None
) -> tuple[list[str], dict[str, str] | None]:
    """The command (and environment, None for this one's) that serves the gateway from `config`."""
    args = ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if variant is None:
        return [binary, *args], None
    client, source = variant
    here = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (source, here) if p)}
    return [sys.executable, "-m", "bench.serve_variant", client, *args], env


@contextmanager
def llmroute_target(
    workdir: Path,
    upstream: Upstreams | str,
    *,
    binary: str,
    cpu: int | str | None,
    name: str = "llmroute",
    variant: tuple[str, str | None] | None = None,
    workers: int = 1,
    max_connections: int | None = None,
) -> Iterator[Running]:
    """The gateway; ``variant`` = (upstream client, source tree or None) runs it through serve_variant.py."""
    port = free_port()
    config = workdir / f"{name}.toml"
    config.write_text(gateway_config(upstream, port, max_connections=max_connections))
    cmd, env = llmroute_command(binary, config, port, workers=workers, variant=variant)
    base = f"http://127.0.0.1:{port}"
    with Server(name, pinned(cmd, cpu), log=workdir / f"{name}.log", env=env, cwd=workdir) as server:
        server.wait_http(base + "/health", timeout=60)
        yield Running(name, server, base, "gateway")


def litellm_command(binary: str, config: Path, port: int) -> list[str]:
    return [binary, "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]


@contextmanager
def litellm_target(
    workdir: Path, upstream: Upstreams | str, *, binary: str, cpu: int | str | None
) -> Iterator[Running]:
    port = free_port()
    config = workdir / "litellm.yaml"
    config.write_text(litellm_config(upstream))
    cmd = litellm_command(binary, config, port)
    env = {**os.environ, **LITELLM_ENV}
    base = f"http://127.0.0.1:{port}"
    with Server("litellm", pinned(cmd, cpu), log=workdir / "litellm.log", env=env, cwd=workdir) as server:
        server.wait_http(base + "/health/liveliness", timeout=180)
        yield Running("litellm", server, base, "gateway", style="litellm")


def tensorzero_command(python: str, config: Path, url_file: Path) -> tuple[list[str], dict[str, str]]:
    script = str(Path(__file__).resolve().parent / "peer_tensorzero.py")
    env = {**os.environ, "BENCH_UPSTREAM_KEY": UPSTREAM_KEY, "RUST_LOG": "warn"}
    return [python, script, "--config", str(config), "--url-file", str(url_file)], env


def wait_file(server: Server, path: Path, timeout: float) -> str:
    """The stripped text of `path` once the server has written it."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        server.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{server.name} did not write {path.name} in {timeout:.0f}s:\n{server.log_tail()}")
        time.sleep(0.005)
    return path.read_text().strip()


@contextmanager
def tensorzero_target(workdir: Path, upstreams: Upstreams, *, python: str, cpu: int | str | None) -> Iterator[Running]:
    config = workdir / "tensorzero.toml"
    config.write_text(tensorzero_config(upstreams))
    url_file = workdir / "tensorzero.url"
    url_file.unlink(missing_ok=True)
    cmd, env = tensorzero_command(python, config, url_file)
    with Server("tensorzero", pinned(cmd, cpu), log=workdir / "tensorzero.log", env=env, cwd=workdir) as server:
        # The URL is written once the gateway listens (its embedded HTTP server has no /health route).
        base = wait_file(server, url_file, 60)
        yield Running("tensorzero", server, base, "gateway", style="tensorzero", upstreams=upstreams)


#: Preloaded into Portkey so that it listens on 127.0.0.1 only (its start-server.js binds all interfaces and
#: has no option for the host).
PORTKEY_LOOPBACK = Path(__file__).resolve().parent / "portkey_loopback.cjs"


def portkey_command(node: str, script: str, port: int) -> list[str]:
    return [node, "--require", str(PORTKEY_LOOPBACK), script, f"--port={port}", "--headless"]


@contextmanager
def portkey_target(
    workdir: Path, upstreams: Upstreams, *, node: str, script: str, cpu: int | str | None
) -> Iterator[Running]:
    port = free_port()
    cmd = portkey_command(node, script, port)
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "NODE_ENV": "production"}
    with Server("portkey", pinned(cmd, cpu), log=workdir / "portkey.log", env=env, cwd=workdir) as server:
        server.wait_http(base + "/", timeout=60)
        yield Running("portkey", server, base, "gateway", style="portkey", upstreams=upstreams)


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


def default_tensorzero() -> str | None:
    """A Python that can import `tensorzero`: $TENSORZERO_PYTHON, else the one bench/setup-peers made."""
    env = os.environ.get("TENSORZERO_PYTHON")
    if env:
        return env
    candidate = PEERS_DIR / "tensorzero" / "bin" / "python"
    return str(candidate) if candidate.exists() else None


def default_portkey() -> str | None:
    """Portkey's `build/start-server.js`: $PORTKEY_SERVER, else the one bench/setup-peers installed."""
    env = os.environ.get("PORTKEY_SERVER")
    if env:
        return env
    candidate = PEERS_DIR / "portkey" / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    return str(candidate) if candidate.exists() else None
