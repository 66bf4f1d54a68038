from __future__ import annotations

import json
from pathlib import Path

import pytest

from asgi_llmroute.importers import ImportFileError, ImportPlan, build_plan, detect_format, parse
from asgi_llmroute.importers.export import export_json, export_toml
from asgi_llmroute.providers.records import ProviderRecord
from tests.providers.support import KEY_A, KEY_B, record

FIXTURES = Path(__file__).parent / "fixtures"


def plan_of(text: str, fmt: str, existing: list[ProviderRecord] = (), **options: object) -> ImportPlan:  # type: ignore[assignment]
    return build_plan(parse(text, fmt), {r.name: r for r in existing}, **options)  # type: ignore[arg-type]


def keys(plan: ImportPlan) -> dict[str, str | None]:
    return {r.name: r.api_key.reveal() if r.api_key else None for r in plan.records()}


# -- LiteLLM ---------------------------------------------------------------------------------------


def test_litellm_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_OPENAI_API_KEY", KEY_A)
    monkeypatch.setenv("AZURE_API_KEY_EU", KEY_B)
    plan = plan_of((FIXTURES / "litellm_config.yaml").read_text(), "litellm")
    assert plan.errors == []
    by_name = {r.name: r for r in plan.add}
    vertex = by_name.pop("vertex_ai")  # vertex_project / vertex_location become the kind's options
    assert vertex.kind == "vertex_ai" and vertex.options == {"project": "my-project", "location": "us-central1"}
    azure = by_name.pop("azure-my-endpoint-europe-openai-azure-com")
    assert azure.kind == "azure" and azure.base_url == "https://my-endpoint-europe.openai.azure.com"
    assert azure.options == {"api_version": "2024-02-15-preview"} and azure.models == {"gpt-4o": "gpt-4o-eu"}
    assert azure.api_key is not None and azure.api_key.reveal() == KEY_B
    bedrock = by_name.pop("bedrock")  # aws_region_name becomes the kind's region; credentials: AWS's chain
    assert bedrock.kind == "bedrock" and bedrock.options == {"region": "us-east-1"}
    assert bedrock.models == {"bedrock-claude": "anthropic.claude-3-sonnet-20240229-v1:0"}
    assert set(by_name) == {"openai", "anthropic", "openai-vllm-internal-8000", "anthropic-anthropic-proxy-internal"}
    assert by_name["openai"].models == {"gpt-4o": "gpt-4o", "gpt-3.5-turbo": "gpt-3.5-turbo"}
    assert by_name["openai"].base_url == "https://api.openai.com/v1"
    assert by_name["anthropic"].models == {"claude-3-5-sonnet": "claude-3-5-sonnet-20240620"}
    assert by_name["anthropic"].base_url == "https://api.anthropic.com"
    vllm = by_name["openai-vllm-internal-8000"]
    assert vllm.models == {"llama3": "meta-llama/Meta-Llama-3-8B-Instruct"}
    assert vllm.base_url == "http://vllm.internal:8000/v1" and vllm.timeout == 120
    proxy = by_name["anthropic-anthropic-proxy-internal"]
    assert proxy.base_url == "https://anthropic-proxy.internal"  # /v1/messages is ours to add
    assert proxy.headers == {"anthropic-beta": "prompt-caching-2024-07-31"}
    assert keys(plan) == {
        "vertex_ai": None,  # credentials come from the kind's own sources
        "bedrock": None,
        "azure-my-endpoint-europe-openai-azure-com": KEY_B,
        "openai": KEY_A,
        "anthropic": "sk-ant-from-environment-variables-0123",
        "openai-vllm-internal-8000": "none",
        "anthropic-anthropic-proxy-internal": "sk-ant-literal-in-file-0123456789",
    }
    skipped = {issue.where.split(" (line")[0]: issue.message for issue in plan.skipped}
    assert skipped["model_list[1] 'gpt-4o'"] == "not imported (no equivalent): rpm"
    assert "model_list[3] 'bedrock-claude'" not in skipped  # kind = "bedrock" is served
    assert "wildcard" in skipped["model_list[6] '*'"]
    assert "max_tokens" in skipped["model_list[2] 'claude-3-5-sonnet'"]
    assert "model_info" in skipped["model_list[5] 'llama3'"]
    for section in ("litellm_settings", "router_settings", "general_settings"):
        assert "not imported" in skipped[section]
    rendered = plan.render() + json.dumps(plan.as_json())
    for secret in (KEY_A, "sk-ant-from-environment-variables-0123", "sk-litellm-master-SECRET-1234"):
        assert secret not in rendered
    assert "model_list[1] 'gpt-4o' (line 7)" in plan.render()


def test_litellm_missing_variable_names_the_entry_and_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("AZURE_API_KEY_EU", KEY_B)
    plan = plan_of((FIXTURES / "litellm_config.yaml").read_text(), "litellm")
    (error,) = plan.errors
    assert error.where.startswith("model_list[0] 'gpt-4o' (line 3)")
    assert error.message == "api_key: environment variable TEST_OPENAI_API_KEY is not set"
    assert {r.name for r in plan.add} == {
        "vertex_ai",
        "bedrock",
        "azure-my-endpoint-europe-openai-azure-com",
        "anthropic",
        "openai-vllm-internal-8000",
        "anthropic-anthropic-proxy-internal",
    }


def test_litellm_default_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "model_list:\n  - model_name: gpt\n    litellm_params:\n      model: openai/gpt-4o\n"
    monkeypatch.setenv("OPENAI_API_KEY", KEY_B)
    assert keys(plan_of(text, "litellm")) == {"openai": KEY_B}
    monkeypatch.delenv("OPENAI_API_KEY")
    plan = plan_of(text, "litellm")
    assert keys(plan) == {"openai": None}
    assert "OPENAI_API_KEY is not set" in plan.warnings[0].message


def test_litellm_bad_entries_among_good_ones() -> None:
    text = """
model_list:
  - model_name: good
    litellm_params: {model: openai/gpt-4o, api_key: sk-good-0123456789abcdef}
  - model_name: no-params
  - litellm_params: {model: openai/gpt-4o}
  - model_name: typo
    litellm_parms: {model: openai/gpt-4o}
  - model_name: bad-url
    litellm_params: {model: openai/x, api_base: "ftp://nope"}
"""
    plan = plan_of(text, "litellm")
    wheres = [e.where.split(" (line")[0] for e in plan.errors]
    assert wheres == ["model_list[1] 'no-params'", "model_list[2]", "model_list[3] 'typo'", "model_list[4] 'bad-url'"]
    assert "base_url" in plan.errors[-1].message
    assert [r.name for r in plan.add] == ["openai"]


def test_litellm_duplicate_deployment_is_listed() -> None:
    text = """
model_list:
  - {model_name: gpt, litellm_params: {model: openai/gpt-4o, api_key: sk-a-0123456789abcdef}}
  - {model_name: gpt, litellm_params: {model: openai/gpt-4o-mini, api_key: sk-a-0123456789abcdef}}
  - {model_name: gpt, litellm_params: {model: openai/gpt-4o, api_key: sk-b-0123456789abcdef}}
"""
    plan = plan_of(text, "litellm")
    assert [(r.name, dict(r.models)) for r in plan.add] == [
        ("openai", {"gpt": "gpt-4o"}),
        ("openai-2", {"gpt": "gpt-4o"}),
    ]
    assert "already mapped to 'gpt-4o'" in plan.skipped[0].message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_list: [\n  {a: 1\n", "line 3: invalid YAML"),
        ("general_settings: {}\n", "expected a mapping with a 'model_list' list"),
        ("- 1\n", "not a LiteLLM config"),
    ],
)
def test_litellm_unusable_files(text: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse(text, "litellm")


# -- our TOML and JSON -----------------------------------------------------------------------------


def test_toml_own_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_KEY_A", KEY_A)
    (tmp_path / "b.key").write_text(KEY_B + "\n")
    text = """
[[providers]]
name = "a"
api = "openai"
base_url = "https://a.example.com/v1/"
api_key = "env:TEST_KEY_A"
models = ["gpt-4o"]

[[providers]]
name = "b"
api = "anthropic"
base_url = "https://b.example.com"
api_key = "file:b.key"
headers = { "anthropic-version" = "2023-06-01" }
timeout = 30
models = { claude = "claude-sonnet-4-5" }
"""
    plan = plan_of(text, "toml", base_dir=tmp_path)
    assert plan.errors == []
    a, b = plan.add
    assert a.base_url == "https://a.example.com/v1" and a.models == {"gpt-4o": "gpt-4o"}
    assert b.headers == {"anthropic-version": "2023-06-01"} and b.timeout == 30
    assert keys(plan) == {"a": KEY_A, "b": KEY_B}


def test_a_whole_llmroute_toml_imports_its_providers() -> None:
    text = """
[server]
port = 4000

[[tokens]]
name = "alice"
key = "env:ALICE"

[[providers]]
name = "anthropic"
api = "anthropic"
base_url = "https://api.anthropic.com"
api_key = "sk-ant-literal-0123456789"

[[models]]
name = "claude"
provider = "anthropic"
model = "claude-sonnet-4-5"
"""
    plan = plan_of(text, "toml")
    assert plan.errors == []
    assert [dict(r.models) for r in plan.add] == [{"claude": "claude-sonnet-4-5"}]
    assert sorted(i.where for i in plan.skipped) == ["server", "tokens"]


def test_toml_errors_name_every_bad_entry_and_line() -> None:
    text = """
[[providers]]
name = "ok"
api = "openai"
base_url = "https://ok.example.com/v1"

[[providers]]
name = "typo"
api = "openai"
base_url = "https://x.example.com/v1"
colour = "red"

[[providers]]
name = "ok"
api = "cohere"
base_url = "https://y.example.com"

[[providers]]
name = "nokey"
api = "openai"
base_url = "https://z.example.com/v1"
api_key = "env:SURELY_NOT_SET_ANYWHERE_12345"

[[models]]
name = "m"
provider = "missing"
model = "x"
"""
    plan = plan_of(text, "toml")
    rendered = [str(e) for e in plan.errors]
    assert rendered[0] == "models[0]: no provider named 'missing' in this file"
    assert "providers[1] 'typo' (line 7): colour: unknown field" in rendered
    assert any(r.startswith("providers[2] 'ok' (line 13): api:") for r in rendered)
    assert "providers[3] 'nokey' (line 18): api_key: environment variable SURELY_NOT_SET_ANYWHERE_12345 is not set" in (
        rendered
    )
    assert [r.name for r in plan.add] == ["ok"]


def test_duplicate_names_in_one_file() -> None:
    text = json.dumps(
        [
            {"name": "x", "api": "openai", "base_url": "https://a.example.com/v1"},
            {"name": "x", "api": "openai", "base_url": "https://b.example.com/v1"},
        ]
    )
    plan = plan_of(text, "json")
    assert [str(e) for e in plan.errors] == [
        "providers[1] 'x': the provider name 'x' is used twice (first at providers[0] 'x')"
    ]


def test_json_schema_and_errors() -> None:
    text = json.dumps(
        {"providers": [{"name": "j", "api": "openai", "base_url": "https://j.example.com/v1", "api_key": KEY_A}]}
    )
    assert keys(plan_of(text, "json")) == {"j": KEY_A}
    with pytest.raises(ImportFileError, match="invalid JSON at line 2"):
        parse('{\n  "providers": [,]\n}', "json")
    plan = plan_of(json.dumps({"providers": [], "extra": 1}), "json")
    assert [str(e) for e in plan.errors] == ["extra: unknown top-level key"]


# -- .env ------------------------------------------------------------------------------------------


def test_dotenv() -> None:
    text = f"""
# provider keys
export OPENAI_API_KEY="{KEY_A}"
ANTHROPIC_API_KEY='{KEY_B}'   # trailing comment inside quotes is not part of it
ANTHROPIC_BASE_URL=https://anthropic-gateway.internal  # a comment
GEMINI_API_KEY=AIza-not-supported
DATABASE_URL=postgres://nope
LLMROUTE_PROVIDER_MY_VLLM_API=openai
LLMROUTE_PROVIDER_MY_VLLM_BASE_URL=http://10.0.0.5:8000/v1
LLMROUTE_PROVIDER_MY_VLLM_MODELS=llama=meta-llama/Llama-3.1-8B-Instruct, qwen
LLMROUTE_PROVIDER_MY_VLLM_COLOR=red
"""
    plan = plan_of(text, "env")
    assert plan.errors == []
    by_name = {r.name: r for r in plan.add}
    assert by_name["openai"].base_url == "https://api.openai.com/v1"
    assert by_name["anthropic"].base_url == "https://anthropic-gateway.internal"
    assert by_name["my-vllm"].models == {"llama": "meta-llama/Llama-3.1-8B-Instruct", "qwen": "qwen"}
    assert keys(plan) == {"openai": KEY_A, "anthropic": KEY_B, "my-vllm": None}
    skipped = {i.where: i.message for i in plan.skipped}
    assert skipped["GEMINI_API_KEY (line 6)"] == "provider type not supported: gemini"
    assert skipped["DATABASE_URL (line 7)"] == "not a provider variable"
    assert "unknown field" in skipped["LLMROUTE_PROVIDER_MY_VLLM_COLOR (line 11)"]
    assert "AIza" not in plan.render() and "postgres" not in plan.render()


def test_dotenv_bad_line() -> None:
    with pytest.raises(ImportFileError, match="line 3: expected NAME=VALUE"):
        parse("A=1\n\nthis is not an assignment\n", "env")
    with pytest.raises(ImportFileError, match="line 1: unterminated"):
        parse('OPENAI_API_KEY="abc\n', "env")


def test_dotenv_is_parsed_as_dotenv_files_are() -> None:
    # python-dotenv's own rules: multi-line quoted values, escapes in double quotes, export, comments.
    text = (
        'OPENAI_API_KEY="sk-with-\\"quote\\" # not a comment"\n'
        "ANTHROPIC_API_KEY='sk-ant-\\n-literal'\n"
        "LLMROUTE_PROVIDER_X_API=openai\n"
        'LLMROUTE_PROVIDER_X_BASE_URL="http://10.0.0.5:8000/v1"\n'
        'LLMROUTE_PROVIDER_X_MODELS="a,\nb"\n'
    )
    plan = plan_of(text, "env")
    assert plan.errors == []
    assert keys(plan)["openai"] == 'sk-with-"quote" # not a comment'
    assert keys(plan)["anthropic"] == "sk-ant-\\n-literal"
    assert {r.name: r for r in plan.add}["x"].models == {"a": "a", "b": "b"}
    skipped_lines = [i.where for i in plan.skipped]
    assert skipped_lines == []


def test_dotenv_values_are_not_interpolated_and_references_are_refused() -> None:
    text = "OPENAI_API_KEY=sk-real-0123456789\nTOGETHER_API_KEY=${OPENAI_API_KEY}\n"
    with pytest.raises(ImportFileError, match=r"line 2: TOGETHER_API_KEY: .*\$\{"):
        parse(text, "env")


def test_dotenv_invalid_generic_entry() -> None:
    plan = plan_of("LLMROUTE_PROVIDER_X_API=cohere\nLLMROUTE_PROVIDER_X_BASE_URL=https://x\n", "env")
    assert plan.errors[0].where.startswith("LLMROUTE_PROVIDER_X_* (line 1)")


# -- planning against the store and the config file ------------------------------------------------


def test_plan_classifies_add_update_unchanged_and_keeps_keys() -> None:
    existing = [record("same", KEY_A), record("changed", KEY_A), record("keyless-update", KEY_B)]
    text = json.dumps(
        [
            {"name": "same", "api": "openai", "base_url": "https://api.example.com/v1", "api_key": KEY_A},
            {
                "name": "changed",
                "api": "openai",
                "base_url": "https://api.example.com/v1",
                "api_key": KEY_B,
                "timeout": 5,
            },
            {"name": "keyless-update", "api": "openai", "base_url": "https://api.example.com/v1"},
            {"name": "new", "api": "openai", "base_url": "https://api.example.com/v1"},
        ]
    )
    plan = plan_of(text, "json", existing)
    assert [r.name for r in plan.add] == ["new"]
    assert [(r.name, fields) for r, fields in plan.update] == [("changed", ["api_key", "timeout"])]
    assert plan.unchanged == ["same", "keyless-update"]
    assert KEY_A not in plan.render() and KEY_B not in json.dumps(plan.as_json())


def test_plan_refuses_config_names_unreadable_records_and_references() -> None:
    text = json.dumps(
        [
            {"name": "cfg", "api": "openai", "base_url": "https://a.example.com/v1"},
            {"name": "m", "api": "openai", "base_url": "https://a.example.com/v1", "models": ["claude"]},
            {"name": "broken", "api": "openai", "base_url": "https://a.example.com/v1"},
            {"name": "ref", "api": "openai", "base_url": "https://a.example.com/v1", "api_key": "env:HOME"},
        ]
    )
    plan = plan_of(
        text,
        "json",
        reserved_providers={"cfg"},
        reserved_models={"claude"},
        unreadable={"broken": "the encrypted key is truncated"},
        allow_refs=False,
    )
    messages = [str(e) for e in plan.errors]
    assert "config file" in messages[0] and "'cfg'" in messages[0]
    assert "claude are defined in the config file" in messages[1]
    assert "cannot keep the stored key of 'broken'" in messages[2]
    assert "not resolved here" in messages[3]
    assert plan.records() == []


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_export_imports_back_unchanged(fmt: str) -> None:
    records = [
        record("a", KEY_A, models={"x": "y", 'we"ird': "ü-ß"}, headers={"x-team": "a b"}),
        record("b", None, timeout=12.5),
    ]
    writer = export_toml if fmt == "toml" else export_json
    text = writer(records)
    assert KEY_A not in text
    plan = plan_of(text, fmt, records)
    assert plan.errors == [] and plan.unchanged == ["a", "b"]
    with_keys = writer(records, include_keys=True)
    assert KEY_A in with_keys
    assert keys(plan_of(with_keys, fmt)) == {"a": KEY_A, "b": None}


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("p.toml", "toml"),
        ("p.JSON", "json"),
        ("config.yaml", "litellm"),
        ("x.yml", "litellm"),
        (".env", "env"),
        (".env.production", "env"),
        ("prod.env", "env"),
    ],
)
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_detect_format_unknown() -> None:
    with pytest.raises(ImportFileError, match="give --format"):
        detect_format("providers.txt")
