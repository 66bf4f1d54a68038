"""Links notation (.lenv): the link-assistant router's provider files imported, and .lenv gateway configs served."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
import openai
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from asgi_llmroute import build_gateway, load_config
from asgi_llmroute.config import ConfigError
from asgi_llmroute.deferred import MissingExtraError
from asgi_llmroute.importers import ImportFileError, build_plan, detect_format, parse
from tests.providers.support import KEY_A, KEY_B, ROUTER_TOKEN, write_config
from tests.providers.test_cli import llmroute
from tests.support.servers import Upstream, serve

ROUTER_SECRET = "router-token-secret-for-tests"


def router_encrypt(key: str, token_secret: str = ROUTER_SECRET) -> str:
    """A key as the router stores it: AES-256-GCM under SHA-256(TOKEN_SECRET), nonce first, base64."""
    nonce = os.urandom(12)
    sealed = AESGCM(hashlib.sha256(token_secret.encode()).digest()).encrypt(nonce, key.encode(), None)
    return "aes256gcm:" + base64.b64encode(nonce + sealed).decode()


def router_store(*records: Mapping[str, object]) -> str:
    """A providers.lenv as the router writes it: two comment lines, one compact PROVIDER JSON per record."""
    lines = ["# Link.Assistant.Router provider store", "# Each PROVIDER value is JSON; inline API keys are encrypted."]
    lines += ["PROVIDER: " + json.dumps(r, separators=(",", ":")) for r in records]
    return "\n".join(lines) + "\n"


def litellm_record(base_url: str = "http://localhost:4000/v1", **extra: object) -> dict[str, object]:
    return {
        "name": "litellm",
        "kind": "openai-compatible",
        "base_url": base_url,
        "default_model": "claude-sonnet",
        "models": ["claude-sonnet"],
        "encrypted_api_key": router_encrypt(KEY_A),
        "enabled": True,
        **extra,
    }


INDENTED = """
litellm
  kind "openai-compatible"
  base-url "http://litellm:4000/v1"
  model "claude-sonnet"
  models "claude-sonnet,gpt-4o"
  api-key "sk-local-0123456789"

# a second one, its key from a variable
groq
  base_url "https://api.groq.com/openai/v1"
  models "llama-3.3-70b-versatile"
  api_key_env "GROQ_KEY_FOR_TEST"
"""


def test_the_format_is_told_by_the_name() -> None:
    assert detect_format("data/providers.lenv") == "lenv"


def test_router_store_file_keys_decrypted_with_token_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_SECRET", ROUTER_SECRET)
    monkeypatch.setenv("OTHER_KEY_FOR_TEST", KEY_B)
    text = router_store(
        litellm_record(),
        {"name": "other", "kind": "openai", "base_url": "https://o.example.com/v1/", "models": ["m1", "m2"]}
        | {"api_key_env": "OTHER_KEY_FOR_TEST"},
        {"name": "off", "kind": "openai-compatible", "base_url": "https://x.example.com/v1", "enabled": False},
        {"name": "zai", "kind": "z.ai-coding-plan", "base_url": "https://api.z.ai/api/coding/paas/v4"}
        | {"subscriber_id": "owner", "intermediary_risk_acknowledged": True, "enabled": True},
    )
    plan = build_plan(parse(text, "lenv"), {})
    assert plan.errors == []
    by_name = {r.name: r for r in plan.add}
    assert set(by_name) == {"litellm", "other"}
    litellm = by_name["litellm"]
    assert litellm.api == "openai" and litellm.kind is None and litellm.base_url == "http://localhost:4000/v1"
    assert litellm.api_key is not None and litellm.api_key.reveal() == KEY_A
    assert litellm.models == {"claude-sonnet": "claude-sonnet"}
    assert by_name["other"].api_key is not None and by_name["other"].api_key.reveal() == KEY_B
    assert by_name["other"].models == {"m1": "m1", "m2": "m2"}
    skipped = {i.where: i.message for i in plan.skipped}
    assert "disabled" in skipped["line 5 'off'"]
    assert "'z.ai-coding-plan'" in skipped["line 6 'zai'"]
    assert any("default_model 'claude-sonnet'" in str(w) for w in plan.warnings)


def test_router_store_file_problems_name_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKEN_SECRET", raising=False)
    text = router_store(litellm_record()) + 'PROVIDER: {"name": "x", \nOTHER: 1\n'
    plan = build_plan(parse(text, "lenv"), {})
    errors = sorted(str(e) for e in plan.errors)
    assert errors[0].startswith("line 3 'litellm': api key: encrypted with the router's TOKEN_SECRET: set TOKEN_SECRET")
    assert errors[1].startswith("line 4: the PROVIDER value is not JSON (Expecting property name")
    assert errors[2] == "line 5: expected 'PROVIDER: {json}' (a provider store of the router)"
    monkeypatch.setenv("TOKEN_SECRET", "not-the-router-secret")
    plan = build_plan(parse(router_store(litellm_record()), "lenv"), {})
    assert [str(e) for e in plan.errors] == [
        "line 3 'litellm': encrypted_api_key: does not decrypt under TOKEN_SECRET (another router's secret?)"
    ]
    assert ROUTER_SECRET not in str(plan.errors) and "not-the-router-secret" not in str(plan.errors)


def test_indented_provider_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_KEY_FOR_TEST", KEY_B)
    plan = build_plan(parse(INDENTED, "lenv"), {})
    assert plan.errors == []
    litellm, groq = plan.add
    assert (litellm.name, litellm.base_url, litellm.api) == ("litellm", "http://litellm:4000/v1", "openai")
    assert list(litellm.models) == ["claude-sonnet", "gpt-4o"]
    assert litellm.api_key is not None and litellm.api_key.reveal() == "sk-local-0123456789"
    assert groq.base_url == "https://api.groq.com/openai/v1" and groq.api_key is not None
    assert groq.api_key.reveal() == KEY_B


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "litellm\n  base-url http://x/v1\n",
            'line 2: a value with \':\' in it must be quoted ("env:NAME", "https://...")',
        ),
        (
            'litellm\n  base-url "http://x/v1"\n  colour blue\n',
            "line 1 'litellm': line 3: unknown provider field 'colour'",
        ),
        (
            "litellm\n  models a b\n",
            "line 1 'litellm': line 2: models: expected one value (quote values with spaces or ':')",
        ),
        ("litellm openai\n", "line 1: expected a provider name alone on a line, got 'litellm openai'"),
        ('litellm\n  kind nope\n  base-url "http://x/v1"\n', "line 1 'litellm': kind: unknown provider kind 'nope'"),
    ],
)
def test_indented_provider_list_errors(text: str, message: str) -> None:
    try:
        parsed = parse(text, "lenv")
    except ImportFileError as exc:
        problems = [str(exc)]
    else:
        problems = [str(e) for e in build_plan(parsed, {}).errors]
    assert len(problems) == 1 and problems[0].startswith(message), problems


def test_our_schema_in_links_notation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_KEY_FOR_TEST", KEY_A)
    text = """
server
  port 4000
providers
  groq
    kind groq
    api_key "env:GROQ_KEY_FOR_TEST"
    max_in_flight 4
    retry_on 429 503
  local
    api openai
    base_url "http://127.0.0.1:8000/v1"
    models llama qwen
models
  fast
    provider groq
    model "llama-3.3-70b-versatile"
"""
    plan = build_plan(parse(text, "lenv"), {})
    assert plan.errors == [] and [str(s) for s in plan.skipped] == [
        "server: gateway settings, not provider data: not imported"
    ]
    groq, local = plan.add
    assert groq.kind == "groq" and groq.models == {"fast": "llama-3.3-70b-versatile"}
    assert groq.tuning == {"max_in_flight": 4, "retry_on": [429, 503]}
    assert local.models == {"llama": "llama", "qwen": "qwen"}


def test_cli_imports_the_router_store_and_the_gateway_serves_it(tmp_path: Path) -> None:
    write_config(tmp_path)
    upstream = Upstream()
    with serve(upstream) as upstream_url:
        (tmp_path / "providers.lenv").write_text(router_store(litellm_record(f"{upstream_url}/v1")))
        out = llmroute(tmp_path, "providers", "import", "providers.lenv", env={"TOKEN_SECRET": ROUTER_SECRET}).stdout
        assert "add     litellm (openai, " in out and "1 added" in out and KEY_A not in out
        with serve(build_gateway(load_config(tmp_path / "llmroute.toml"))) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=ROUTER_TOKEN, max_retries=0)
            client.chat.completions.create(model="claude-sonnet", messages=[{"role": "user", "content": "hi"}])
            assert upstream.last.headers["authorization"] == f"Bearer {KEY_A}"


# -- llmroute serve --config x.lenv ----------------------------------------------------------------


def gateway_lenv(upstream_url: str) -> str:
    return f"""
# the same schema as llmroute.toml, in Links notation
server
  data_dir "data"
tokens
  alice
    key "env:ROUTER_TOKEN_FOR_TEST"
    models "*"
providers
  local
    api openai
    base_url "{upstream_url}/v1"
    api_key "env:UPSTREAM_KEY_FOR_TEST"
    timeout 30
    headers
      x-team "blue"
models
  fast
    provider local
    model "up-model"
routing
  strategy least_in_flight
"""


def test_a_lenv_config_is_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_TOKEN_FOR_TEST", ROUTER_TOKEN)
    monkeypatch.setenv("UPSTREAM_KEY_FOR_TEST", KEY_A)
    upstream = Upstream()
    with serve(upstream) as upstream_url:
        path = tmp_path / "llmroute.lenv"
        path.write_text(gateway_lenv(upstream_url))
        config = load_config(path)
        assert config.providers[0].timeout == 30.0 and config.routing.strategy == "least_in_flight"
        with serve(build_gateway(config)) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key=ROUTER_TOKEN, max_retries=0)
            client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
            assert upstream.last.headers["authorization"] == f"Bearer {KEY_A}"
            assert upstream.last.headers["x-team"] == "blue"
            assert upstream.last.json()["model"] == "up-model"
            listed = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {ROUTER_TOKEN}"})
            assert "fast" in [m["id"] for m in listed.json()["data"]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server\n  port 99999\n", "line 2: server.port: Input should be less than or equal to 65535"),
        ("server\n  port abc\n", "line 2: server.port: expected a whole number, got 'abc'"),
        ("server 4000\n", "line 1: server: is a table: give its keys on indented lines below it"),
        ("routing\n  strategy\n", "line 2: routing.strategy: expected one value, got no value"),
        ("tokens\n  alice bob\n", "line 2: tokens[0]: write each entry as its name alone on a line"),
        ("providers\n  p\n    api openai\n    base_url http://h/v1\n", "line 4: a value with ':' in it must be quoted"),
        ("logging\n  colour blue\n", "line 2: logging.colour: unknown key"),
    ],
)
def test_lenv_config_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.lenv"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: {message}"), str(caught.value)
    assert "\n" not in str(caught.value)


def test_serve_with_a_bad_lenv_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.lenv").write_text("server\n  port abc\n")
    err = llmroute(tmp_path, "serve", "--config", "bad.lenv", status=2, subprocess_=True).stderr
    assert err.strip().splitlines() == [
        "llmroute: error: bad.lenv: line 2: server.port: expected a whole number, got 'abc'"
    ]


def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "links_notation", None)
    with pytest.raises(MissingExtraError, match=r"needs the 'lenv' extra .*pip install 'asgi-llmroute\[lenv\]'"):
        parse(INDENTED, "lenv")
    path = tmp_path / "x.lenv"
    path.write_text("server\n  port 1\n")
    with pytest.raises(MissingExtraError, match="'lenv' extra"):
        load_config(path)


def test_the_colon_forms_read_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_TOKEN_FOR_TEST", ROUTER_TOKEN)
    path = tmp_path / "colon.lenv"
    path.write_text(
        'server:\n  port 4001\ntokens:\n  alice:\n    key "env:ROUTER_TOKEN_FOR_TEST"\n'
        'providers:\n  local\n    api openai\n    base_url "http://127.0.0.1:9/v1"\n    retry_on 429 503\n'
        "routing:\n  strategy: least_in_flight\n"
    )
    config = load_config(path)
    assert config.server.port == 4001 and config.tokens[0].name == "alice"
    assert config.providers[0].retry_on == [429, 503] and config.routing.strategy == "least_in_flight"
    path.write_text("server:\n  port 4001\nrouting:\n  strategy: sideways\n")
    with pytest.raises(ConfigError, match=r"colon.lenv: line 3: routing.strategy: Input should be 'weighted'"):
        load_config(path)
