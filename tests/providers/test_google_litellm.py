"""A LiteLLM ``config.yaml`` with ``gemini/``, ``vertex_ai/gemini-*`` and ``vertex_ai/claude-*`` entries
runs unchanged: under ``llmroute serve --config litellm.yaml``, and imported into the provider store
with ``llmroute providers import``. A local Gemini API, a local Vertex AI (Gemini and Claude) and a
local OAuth2 token endpoint that verifies the service account's signed JWT; the openai and anthropic
SDKs drive it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from asgi_llmroute.config import ConfigError
from asgi_llmroute.importers import build_plan, parse
from asgi_llmroute.importers.litellm_config import load_litellm_config
from tests.providers.support import ROUTER_TOKEN, SECRET, write_config
from tests.support.cli import LLMROUTE, llmroute_serve
from tests.support.google_servers import GoogleUpstream, TokenEndpoint, VertexClaudeUpstream, service_account
from tests.support.servers import serve

pytest.importorskip("google.auth")

ROOT = Path(__file__).parents[2]
MASTER = "sk-litellm-master-google-0123456789"
GEMINI_KEY = "AIza-litellm-SECRET-0123456789"
CONFIG = """
model_list:
  - model_name: flash
    litellm_params:
      model: gemini/gemini-2.5-flash
      api_base: {gemini}/v1beta
  - model_name: vertex-flash
    litellm_params:
      model: vertex_ai/gemini-2.5-flash
      vertex_project: fixture-project
      vertex_location: us-central1
      vertex_credentials: service-account.json
      api_base: {vertex}/v1/projects/fixture-project/locations/us-central1/publishers/google/models/gemini-2.5-flash
  - model_name: claude-vertex
    litellm_params:
      model: vertex_ai/claude-sonnet-4-5@20250929
      vertex_project: os.environ/VTX_PROJECT
      vertex_location: us-east5
      vertex_credentials: os.environ/VERTEX_SA_JSON
      api_base: {claude}
  - model_name: llama-garden
    litellm_params:
      model: vertex_ai/meta/llama-3.1-405b-instruct-maas
      vertex_project: fixture-project
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
"""


@dataclass
class Google:
    folder: Path
    config: Path
    env: dict[str, str]
    gemini: GoogleUpstream
    vertex: GoogleUpstream
    claude: VertexClaudeUpstream
    tokens: TokenEndpoint
    private_key: str


@pytest.fixture(scope="module")
def google(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Google]:
    folder = tmp_path_factory.mktemp("litellm-google")
    tokens = TokenEndpoint()
    gemini, vertex = GoogleUpstream(api_key=GEMINI_KEY), GoogleUpstream(vertex=True, tokens=tokens)
    claude = VertexClaudeUpstream(tokens=tokens)
    with ExitStack() as running:
        urls = {name: running.enter_context(serve(app)) for name, app in (("gemini", gemini), ("vertex", vertex))}
        urls["claude"] = running.enter_context(serve(claude))
        token_url = running.enter_context(serve(tokens))
        info, public_key = service_account(f"{token_url}/token")
        tokens.public_key, tokens.client_email = public_key, info["client_email"]
        (folder / "service-account.json").write_text(json.dumps(info))
        (folder / "service-account.json").chmod(0o600)
        config = folder / "litellm.yaml"
        config.write_text(CONFIG.format(**urls))
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "GEMINI_API_KEY": GEMINI_KEY,  # LiteLLM's default variable for gemini/
            "VTX_PROJECT": "fixture-project",
            "VERTEX_SA_JSON": json.dumps(info),
            "LITELLM_MASTER_KEY": MASTER,
        }
        yield Google(folder, config, env, gemini, vertex, claude, tokens, info["private_key"])


def _drive(url: str, token: str, google: Google) -> None:
    """Every entry through the openai and anthropic SDKs; the upstreams saw Google's own URLs and auth."""
    with openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0) as oa:
        done = oa.chat.completions.create(model="flash", messages=[{"role": "user", "content": "hi"}])
        assert done.choices[0].message.content == "echo: hi"
        chunks = oa.chat.completions.create(
            model="vertex-flash", messages=[{"role": "user", "content": "yo"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: yo"
        claude = oa.chat.completions.create(model="claude-vertex", messages=[{"role": "user", "content": "capital?"}])
        assert (claude.choices[0].message.content or "").startswith("Paris is the capital of France.")
    with anthropic.Anthropic(base_url=url, api_key=token, max_retries=0) as ac:
        message = ac.messages.create(
            model="claude-vertex", max_tokens=50, messages=[{"role": "user", "content": "capital?"}]
        )
        assert message.content[0].type == "text" and message.content[0].text.startswith("Paris")
        with ac.messages.stream(
            model="claude-vertex", max_tokens=50, messages=[{"role": "user", "content": "capital?"}]
        ) as stream:
            assert "".join(stream.text_stream).strip()
        message = ac.messages.create(model="vertex-flash", max_tokens=20, messages=[{"role": "user", "content": "g"}])
        assert message.content[0].type == "text" and message.content[0].text == "echo: g"
    assert google.gemini.requests[-1].path == "/v1beta/models/gemini-2.5-flash:generateContent"
    vertex_root = "/v1/projects/fixture-project/locations/us-central1/publishers/google/models/gemini-2.5-flash"
    assert google.vertex.requests[-1].path == vertex_root + ":generateContent"
    claude_root = "/v1/projects/fixture-project/locations/us-east5/publishers/anthropic/models/"
    claude_root += "claude-sonnet-4-5@20250929"
    paths = {r.path for r in google.claude.requests[-3:]}
    assert paths == {claude_root + ":rawPredict", claude_root + ":streamRawPredict"}
    assert google.tokens.issued and not google.tokens.rejected
    for upstream in (google.gemini, google.vertex, google.claude):
        assert all(token not in json.dumps(r.headers) for r in upstream.requests)


def test_litellm_google_entries_under_llmroute_serve(google: Google) -> None:
    args = ["--config", str(google.config)]
    with llmroute_serve(args, cwd=google.folder, env=google.env) as served:
        assert "model_list[3] (llama-garden): 'vertex_ai/meta/llama-3.1-405b-instruct-maas': only" in served.output
        _drive(served.url, MASTER, google)
        for secret in (GEMINI_KEY, MASTER, google.private_key[40:80]):
            assert secret not in served.output


def test_litellm_google_entries_imported_into_the_store(google: Google, tmp_path: Path) -> None:
    write_config(tmp_path)
    run = subprocess.run(
        [*LLMROUTE, "providers", "import", str(google.config), "--format", "litellm"]
        + ["--config", str(tmp_path / "llmroute.toml")],
        cwd=google.folder,  # vertex_credentials: a path from the working directory, as LiteLLM reads it
        env=google.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "add     gemini-127-0-0-1-" in run.stdout and "add     vertex_anthropic-127-0-0-1-" in run.stdout
    assert "llama-garden" in run.stdout and "3 added" in run.stdout
    assert GEMINI_KEY not in run.stdout + run.stderr and "PRIVATE KEY" not in run.stdout + run.stderr
    with llmroute_serve(["--config", str(tmp_path / "llmroute.toml")], cwd=tmp_path, env=google.env) as served:
        _drive(served.url, ROUTER_TOKEN, google)
        assert SECRET not in served.output and GEMINI_KEY not in served.output


def _translated(text: str, folder: Path, env: dict[str, str]) -> tuple[list[Any], list[str]]:
    path = folder / "c.yaml"
    path.write_text("general_settings: {master_key: sk-m-0123456789}\nmodel_list:\n" + text)
    old = dict(os.environ)
    os.environ.update(env)
    try:
        config, ignored = load_litellm_config(path)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return list(config.providers), ignored


def test_vertex_defaults_follow_litellm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = {"type": "service_account", "project_id": "from-the-key", "client_email": "a@b", "private_key": "x"}
    monkeypatch.delenv("VERTEXAI_PROJECT", raising=False)
    monkeypatch.delenv("VERTEXAI_LOCATION", raising=False)
    entry = f"""
  - model_name: a
    litellm_params:
      model: vertex_ai/gemini-2.5-pro
      vertex_credentials: '{json.dumps(info)}'
  - model_name: b
    litellm_params:
      model: gemini-2.0-flash
      vertex_ai_project: other
      vertex_ai_location: global
      vertex_ai_credentials: {json.dumps(info)}
      api_base: https://proxy.internal/v1beta1/projects/other/locations/global/publishers/google/models/x
"""
    (a, b), ignored = _translated(entry, tmp_path, {})
    assert ignored == []
    # project from the key's project_id, LiteLLM's us-central1; the JSON (string or YAML mapping) is the key
    assert a.kind == "vertex_ai" and a.options() == {"project": "from-the-key", "location": "us-central1"}
    assert json.loads(a.api_key) == info
    assert b.options() == {"project": "other", "location": "global", "api_version": "v1beta1"}
    assert b.base_url == "https://proxy.internal" and json.loads(b.api_key) == info
    (c,), _ = _translated(
        "  - model_name: c\n    litellm_params: {model: vertex_ai/claude-opus-4-1@20250805}\n",
        tmp_path,
        {"VERTEXAI_PROJECT": "env-project", "VERTEXAI_LOCATION": "europe-west1", "VERTEXAI_CREDENTIALS": "/nope.json"},
    )
    assert c.kind == "vertex_anthropic" and c.options() == {"project": "env-project", "location": "europe-west1"}
    assert c.api_key == "env:VERTEXAI_CREDENTIALS"


def test_unusable_google_entries_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _translated(
            "  - model_name: a\n    litellm_params: {model: vertex_ai/gemini-2.5-pro, vertex_project: p,"
            ' vertex_credentials: \'not-a-file-{"private_key": "SECRET-PEM"\'}\n',
            tmp_path,
            {},
        )
    assert "model_list[0].litellm_params.vertex_credentials: neither a JSON object nor the path" in str(info.value)
    assert "SECRET-PEM" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        _translated("  - model_name: a\n    litellm_params: {model: vertex_ai/gemini-2.5-pro}\n", tmp_path, {})
    assert "model_list[0].litellm_params.vertex_project: not set" in str(info.value)


def test_import_plan_keeps_the_key_file_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = {"type": "service_account", "project_id": "p1", "client_email": "a@b", "private_key": "x"}
    (tmp_path / "sa.json").write_text(json.dumps(info))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", GEMINI_KEY)
    text = """
model_list:
  - model_name: v
    litellm_params: {model: vertex_ai/gemini-2.5-flash, vertex_credentials: sa.json, vertex_location: us-east1}
  - model_name: g
    litellm_params: {model: gemini/gemini-2.5-pro}
"""
    plan = build_plan(parse(text, "litellm"), {})
    assert plan.errors == [] and plan.skipped == []
    by_kind = {r.kind: r for r in plan.add}
    vertex, gemini = by_kind["vertex_ai"], by_kind["gemini"]
    assert vertex.options == {"project": "p1", "location": "us-east1"} and vertex.models == {"v": "gemini-2.5-flash"}
    assert vertex.api_key is not None and json.loads(vertex.api_key.reveal()) == info  # the file's content
    assert gemini.api_key is not None and gemini.api_key.reveal() == GEMINI_KEY  # LiteLLM's GOOGLE_API_KEY
