"""Real agents through ``llmroute serve``: Claude Code (``claude -p``), Codex (``codex exec``) and the Vercel AI
SDK, unmodified, each doing a text turn and a tool round on a same-format and a translated route, against a
fake upstream that refuses what the real APIs refuse (tests/agents/fakes.py).

The agents are npm packages installed by ``scripts/install-agents`` (called by ``scripts/test``) into
``.npm-agents/``; without node, or without them, these tests skip and say why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Served, llmroute_serve
from tests.support.gateway import ANTHROPIC_KEY, OPENAI_KEY, ROUTER_TOKEN
from tests.support.servers import serve

from .fakes import SECRET, SECRET_FILE, FakeAPI

ROOT = Path(__file__).resolve().parents[2]
AGENTS = Path(os.environ.get("LLMROUTE_TEST_AGENTS", ROOT / ".npm-agents"))
BIN = AGENTS / "node_modules" / ".bin"
TIMEOUT = 120


def _need(*names: str) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the real-agent tests need Node.js 18+ (CI installs it)")
    for name in names:
        if not (AGENTS / "node_modules" / name).exists():
            pytest.skip(f"{name} is not installed in {AGENTS}: run scripts/install-agents (scripts/test does)")


CONFIG = """
[[tokens]]
name = "agent"
key = "{token}"

[[providers]]
name = "anthropic"
api = "anthropic"
base_url = "{url}"
api_key = "{anthropic_key}"

[[providers]]
name = "openai"
api = "openai"
base_url = "{url}/v1"
api_key = "{openai_key}"
responses_api = true

[[providers]]
name = "openai-chat"
api = "openai"
base_url = "{url}/v1"
api_key = "{openai_key}"

# Same format, under an alias (the upstream id differs from the name the client asked for).
[[models]]
name = "claude-sonnet-4-5"
provider = "anthropic"
model = "claude-sonnet-4-5-20250929"

# Translated: Anthropic clients to an OpenAI model.
[[models]]
name = "claude-on-gpt"
provider = "openai-chat"
model = "gpt-5-mini"

# Translated to a model without reasoning parameters and a smaller output cap (capabilities).
[[models]]
name = "claude-on-gpt-4o"
provider = "openai-chat"
model = "gpt-4o"

# Responses clients: relayed to a native Responses API, or translated to chat, or to Anthropic.
[[models]]
name = "gpt-5"
provider = "openai"
model = "gpt-5-2025-08-07"

[[models]]
name = "gpt-on-chat"
provider = "openai-chat"
model = "gpt-5-mini"

[[models]]
name = "gpt-on-claude"
provider = "anthropic"
model = "claude-sonnet-4-5-20250929"
"""


@dataclass
class Setup:
    url: str
    fake: FakeAPI
    workdir: Path
    served: Served


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = tmp_path_factory.mktemp("agent-work")
    (workdir / SECRET_FILE).write_text(SECRET + "\n")
    fake = FakeAPI(anthropic_key=ANTHROPIC_KEY, openai_key=OPENAI_KEY, workdir=str(workdir))
    home = tmp_path_factory.mktemp("llmroute")
    with serve(fake) as url:
        config = CONFIG.format(token=ROUTER_TOKEN, url=url, anthropic_key=ANTHROPIC_KEY, openai_key=OPENAI_KEY)
        (home / "llmroute.toml").write_text(config)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with llmroute_serve(["--config", str(home / "llmroute.toml")], cwd=home, env=env) as served:
            yield Setup(served.url, fake, workdir, served)


@pytest.fixture
def fake(gateway: Setup) -> Iterator[FakeAPI]:
    gateway.fake.requests.clear()
    gateway.fake.violations.clear()
    yield gateway.fake


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{args[0]} exited {done.returncode}:\n{output[-4000:]}"
    return done.stdout


def _clean_env(home: Path) -> dict[str, str]:
    keep = {"PATH", "LANG", "LC_ALL", "TERM", "TMPDIR", "SYSTEMROOT"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["HOME"] = str(home)
    return env


# -- Claude Code ---------------------------------------------------------------------------------


def _claude(setup: Setup, model: str, prompt: str, tmp_path: Path) -> str:
    env = _clean_env(tmp_path)
    env.update(
        {
            "ANTHROPIC_BASE_URL": setup.url,
            "ANTHROPIC_AUTH_TOKEN": ROUTER_TOKEN,
            "ANTHROPIC_MODEL": model,
            "ANTHROPIC_SMALL_FAST_MODEL": model,
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_BUG_COMMAND": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_SKIP_BEDROCK_AUTH": "1",
            "CLAUDE_CONFIG_DIR": str(tmp_path / ".claude"),
        }
    )
    args = [str(BIN / "claude"), "-p", prompt, "--model", model, "--allowedTools", "Read", "--output-format", "text"]
    return _run(args, env, setup.workdir)


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-on-gpt"])
def test_claude_code_text_turn(gateway: Setup, fake: FakeAPI, model: str, tmp_path: Path) -> None:
    _need("@anthropic-ai/claude-code")
    out = _claude(gateway, model, "Say hello.", tmp_path)
    assert not fake.violations, fake.violations
    assert out.strip(), out


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-on-gpt", "claude-on-gpt-4o"])
def test_claude_code_tool_round(gateway: Setup, fake: FakeAPI, model: str, tmp_path: Path) -> None:
    _need("@anthropic-ai/claude-code")
    out = _claude(gateway, model, f"Read the file {SECRET_FILE} and tell me what it says.", tmp_path)
    assert not fake.violations, fake.violations
    assert "RESULT:" in out and SECRET in out, out


# -- Codex ---------------------------------------------------------------------------------------

CODEX_CONFIG = """
model = "{model}"
model_provider = "llmroute"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.llmroute]
name = "llmroute"
base_url = "{url}/v1"
env_key = "LLMROUTE_TOKEN"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""


def _codex(setup: Setup, model: str, prompt: str, tmp_path: Path, extra: str = "", tables: str = "") -> str:
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(extra + CODEX_CONFIG.format(model=model, url=setup.url) + tables)
    env = _clean_env(tmp_path)
    env.update({"CODEX_HOME": str(home), "LLMROUTE_TOKEN": ROUTER_TOKEN, "RUST_LOG": "error"})
    args = [str(BIN / "codex"), "exec", "--skip-git-repo-check", "--color", "never", prompt]
    return _run(args, env, setup.workdir)


@pytest.mark.parametrize("model", ["gpt-5", "gpt-on-chat", "gpt-on-claude"])
def test_codex_text_turn(gateway: Setup, fake: FakeAPI, model: str, tmp_path: Path) -> None:
    _need("@openai/codex")
    out = _codex(gateway, model, "Say hello.", tmp_path)
    assert not fake.violations, fake.violations
    assert out.strip(), out


@pytest.mark.parametrize("model", ["gpt-5", "gpt-on-chat", "gpt-on-claude"])
def test_codex_tool_round(gateway: Setup, fake: FakeAPI, model: str, tmp_path: Path) -> None:
    _need("@openai/codex")
    out = _codex(gateway, model, f"Read the file {SECRET_FILE} and tell me what it says.", tmp_path)
    assert not fake.violations, fake.violations
    assert "RESULT:" in out and SECRET in out, out


MCP_SERVER = "vault_server_with_a_name_long_enough_to_matter"


@pytest.mark.parametrize("model", ["gpt-on-claude", "gpt-on-chat"])
def test_codex_mcp_tool_round(gateway: Setup, fake: FakeAPI, model: str, tmp_path: Path) -> None:
    """Codex with a stdio MCP server (tests/agents/mcp_server.py) whose qualified tool name is longer than the
    upstreams allow: the gateway sends a shortened name, names the call back, and the tool round completes."""
    _need("@openai/codex")
    server = Path(__file__).parent / "mcp_server.py"
    tables = f'\n[mcp_servers.{MCP_SERVER}]\ncommand = "{sys.executable}"\nargs = ["{server}", "{SECRET}"]\n'
    out = _codex(gateway, model, "Use the vault tool and tell me the secret.", tmp_path, tables=tables)
    assert not fake.violations, fake.violations
    assert "RESULT:" in out and SECRET in out, out
    if model == "gpt-on-claude":  # Anthropic takes 128 characters; Codex's web_search is Anthropic's own
        first, second = [body for p, body in fake.requests if p == "/v1/messages" and body.get("tools")][:2]
        names = [t["name"] for t in first["tools"]]
        assert {"type": "web_search_20250305", "name": "web_search"} in first["tools"]
        call = next(b for m in second["messages"] for b in m["content"] if b.get("type") == "tool_use")
    else:  # OpenAI takes 64: the 128-character name is shortened, the same way on the next turn
        first, second = [body for p, body in fake.requests if p == "/v1/chat/completions" and body.get("tools")][:2]
        names = [t["function"]["name"] for t in first["tools"]]
        assert max(map(len, names)) <= 64
        call = next(c["function"] for m in second["messages"] for c in m.get("tool_calls") or [])
    (mcp,) = (name for name in names if name.startswith("mcp__"))
    assert call["name"] == mcp


def test_codex_keeps_claude_thinking(gateway: Setup, fake: FakeAPI, tmp_path: Path) -> None:
    """Codex with reasoning on, over /v1/responses to Claude: it gives the reasoning items back with their
    encrypted_content, so the tool-result request keeps thinking on (the fake checks the signed block)."""
    _need("@openai/codex")
    extra = 'model_reasoning_effort = "low"\nmodel_supports_reasoning_summaries = true\n'
    out = _codex(gateway, "gpt-on-claude", f"Read the file {SECRET_FILE} and tell me what it says.", tmp_path, extra)
    assert not fake.violations, fake.violations
    assert "RESULT:" in out and SECRET in out, out
    first, second = (body for path, body in fake.requests if path == "/v1/messages")
    assert "thinking" in first and second.get("thinking") == first["thinking"]
    assert second["messages"][1]["content"][0]["type"] == "thinking"


# -- The Vercel AI SDK ---------------------------------------------------------------------------

AI_SDK = ("ai", "@ai-sdk/openai", "@ai-sdk/anthropic")
# (provider in the AI SDK, model): same format first, then translated.
AI_SDK_ROUTES = [
    ("openai-chat", "gpt-on-chat"),
    ("openai-chat", "gpt-on-claude"),
    ("openai-responses", "gpt-5"),
    ("openai-responses", "gpt-on-chat"),
    ("openai-responses", "gpt-on-claude"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-on-gpt"),
]


def _ai_sdk(
    setup: Setup, provider: str, model: str, mode: str, stream: bool, reasoning: bool = False, store: bool = True
) -> dict[str, Any]:
    script = AGENTS / "ai_sdk_agent.mjs"  # beside node_modules, so that its imports resolve there
    shutil.copyfile(Path(__file__).parent / "ai_sdk_agent.mjs", script)
    env = _clean_env(setup.workdir)
    env.update(
        {
            "LLMROUTE_URL": setup.url,
            "LLMROUTE_TOKEN": ROUTER_TOKEN,
            "AGENT_PROVIDER": provider,
            "AGENT_MODEL": model,
            "AGENT_MODE": mode,
            "AGENT_STREAM": "1" if stream else "0",
            "AGENT_REASONING": "1" if reasoning else "0",
            "AGENT_STORE": "1" if store else "0",
            "AGENT_SECRET": SECRET,
        }
    )
    out = _run(["node", str(script)], env, setup.workdir)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("provider", "model"), AI_SDK_ROUTES)
def test_ai_sdk_text_turn(gateway: Setup, fake: FakeAPI, provider: str, model: str, stream: bool) -> None:
    _need(*AI_SDK)
    result = _ai_sdk(gateway, provider, model, "text", stream)
    assert not fake.violations, fake.violations
    assert result["text"] == "pong", result


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("provider", "model"), AI_SDK_ROUTES)
def test_ai_sdk_tool_round(gateway: Setup, fake: FakeAPI, provider: str, model: str, stream: bool) -> None:
    _need(*AI_SDK)
    result = _ai_sdk(gateway, provider, model, "tool", stream)
    assert not fake.violations, fake.violations
    assert result["toolResults"] == [SECRET] and result["text"] == f"RESULT: {SECRET}", result


@pytest.mark.parametrize(("provider", "model"), [("openai-responses", "gpt-on-claude"), ("anthropic", "claude-on-gpt")])
def test_ai_sdk_tool_round_with_reasoning(gateway: Setup, fake: FakeAPI, provider: str, model: str) -> None:
    _need(*AI_SDK)
    result = _ai_sdk(gateway, provider, model, "tool", stream=True, reasoning=True)
    assert not fake.violations, fake.violations
    assert result["toolResults"] == [SECRET] and result["text"] == f"RESULT: {SECRET}", result


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("store", [False, True], ids=["store-false", "store-default"])
def test_ai_sdk_responses_keeps_claude_thinking(gateway: Setup, fake: FakeAPI, store: bool, stream: bool) -> None:
    """Reasoning + a tool round over /v1/responses to Claude: with store=false the SDK gives the reasoning
    items back whole, their encrypted_content carries the signed thinking and thinking stays on; with its
    default (store on) it sends item_reference, which must not fail (thinking is then off, as documented)."""
    _need(*AI_SDK)
    result = _ai_sdk(gateway, "openai-responses", "gpt-on-claude", "tool", stream, reasoning=True, store=store)
    assert not fake.violations, fake.violations
    assert result["toolResults"] == [SECRET] and result["text"] == f"RESULT: {SECRET}", result
    first, second = (body for path, body in fake.requests if path == "/v1/messages")
    assert "thinking" in first  # the SDK asked for reasoning
    if store:
        assert "thinking" not in second
    else:
        assert second.get("thinking") == first["thinking"]
        assert second["messages"][1]["content"][0]["type"] == "thinking"  # its signature checked by the fake
