"""``llmroute providers ...`` and ``llmroute store rotate-secret``, run as subprocesses."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from asgi_llmroute import build_gateway, load_config
from asgi_llmroute.cli import main
from tests.conftest import ROOT
from tests.providers.support import ADMIN_TOKEN, KEY_A, KEY_B, ROUTER_TOKEN, SECRET, store_bytes, write_config
from tests.support.servers import Upstream, serve


def llmroute(
    cwd: Path,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    status: int = 0,
    subprocess_: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``llmroute *args`` in ``cwd``: as a real subprocess, or in-process (same code, ~100x faster)."""
    if subprocess_:
        result = subprocess.run(
            [sys.executable, "-m", "asgi_llmroute.cli", *args],
            cwd=cwd,
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            timeout=30,
        )
    else:
        result = _in_process(cwd, list(args), input or "", env or {})
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for secret in (KEY_A, KEY_B, SECRET):
        assert secret not in result.stderr
    return result


def _in_process(cwd: Path, args: list[str], input: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd, saved_stdin = dict(os.environ), Path.cwd(), sys.stdin
    os.environ.update(env)
    os.chdir(cwd)
    sys.stdin = io.StringIO(input)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        sys.stdin = saved_stdin
    return subprocess.CompletedProcess(["llmroute", *args], code, out.getvalue(), err.getvalue())


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM providers ORDER BY name").fetchall()


def add(
    cwd: Path, name: str, *extra: str, key: str | None = None, base_url: str = "https://a.example.com/v1", **kw: object
) -> subprocess.CompletedProcess[str]:
    """``llmroute providers add NAME --api openai --base-url URL`` with the key (if any) from a variable."""
    key_args = ["--api-key-env", "K"] if key else ["--no-api-key"]
    args = ["providers", "add", name, "--api", "openai", "--base-url", base_url, *key_args, *extra]
    return llmroute(cwd, *args, env={"K": key} if key else None, **kw)  # type: ignore[arg-type]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_config(tmp_path)
    return tmp_path


def test_add_list_show_update_remove(project: Path) -> None:
    models = ["--model", "gpt=gpt-4o", "--model", "gpt-4o-mini", "--header", "X-Team=blue"]
    out = add(project, "oa", *models, key=KEY_A, base_url="https://api.openai.com/v1", subprocess_=True).stdout
    assert "added oa" in out and "sk-...6789" in out and KEY_A not in out
    listing = llmroute(project, "providers", "list", subprocess_=True).stdout
    assert "oa" in listing and "sk-...6789" in listing and KEY_A not in listing
    shown = json.loads(llmroute(project, "providers", "show", "oa", "--json").stdout)
    assert shown["api_key"] == "sk-...6789" and shown["models"] == {"gpt": "gpt-4o", "gpt-4o-mini": "gpt-4o-mini"}
    assert shown["headers"] == {"x-team": "blue"}

    llmroute(project, "providers", "update", "oa", "--api-key-stdin", input=KEY_B + "\n", subprocess_=True)
    assert "sk-...6789" in llmroute(project, "providers", "list").stdout  # KEY_B also ends in 6789
    db = project / "data" / "providers.db"
    assert db.stat().st_mode & 0o777 == 0o600
    assert KEY_A.encode() not in store_bytes(db) and KEY_B.encode() not in store_bytes(db)

    key_file = project / "k"
    key_file.write_text("sk-from-a-file-0123456789zz\n")
    llmroute(project, "providers", "update", "oa", "--api-key-file", str(key_file), "--timeout", "12")
    assert json.loads(llmroute(project, "providers", "show", "oa", "--json").stdout)["api_key"] == "sk-...89zz"

    assert "removed oa" in llmroute(project, "providers", "remove", "oa").stdout
    err = llmroute(project, "providers", "show", "oa", status=1, subprocess_=True).stderr
    assert err == "llmroute: error: no provider named 'oa' in the store\n"


def test_add_errors(project: Path) -> None:
    base = ["providers", "add", "x", "--api", "openai", "--base-url", "https://x.example.com/v1"]
    err = llmroute(project, *base, status=1).stderr
    assert "--api-key-env NAME, --api-key-file PATH or --api-key-stdin" in err
    err = llmroute(project, *base, "--api-key-env", "NOT_SET_ANYWHERE_XYZ", status=1).stderr
    assert "environment variable NOT_SET_ANYWHERE_XYZ is not set" in err
    llmroute(project, *base, "--no-api-key")
    err = llmroute(project, *base, "--no-api-key", status=1).stderr
    assert err == "llmroute: error: a provider named 'x' is already in the store\n"
    err = llmroute(
        project, "providers", "add", "y", "--api", "openai", "--base-url", "nope", "--no-api-key", status=1
    ).stderr
    assert "provider 'y': base_url: " in err
    err = llmroute(
        project, *base, "--api-key", KEY_A, status=2
    ).stderr  # no such option: keys stay off the command line
    assert "unrecognized arguments" in err or "ambiguous option" in err


def test_config_file_names_are_reserved(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        '[[providers]]\nname = "cfg"\napi = "openai"\nbase_url = "https://c.example.com/v1"\n'
        '[[models]]\nname = "gpt"\nprovider = "cfg"\nmodel = "gpt-4o"\n',
    )
    base = ["--api", "openai", "--base-url", "https://x.example.com/v1", "--no-api-key"]
    assert "'cfg' is a provider in" in llmroute(tmp_path, "providers", "add", "cfg", *base, status=1).stderr
    err = llmroute(tmp_path, "providers", "add", "x", *base, "--model", "gpt", status=1).stderr
    assert "model(s) gpt are defined in" in err


def test_import_dry_run_failure_and_success(project: Path) -> None:
    good = {"name": "a", "api": "openai", "base_url": "https://a.example.com/v1", "api_key": "env:KEY_FOR_A"}
    bad = [good, {"name": "b", "api": "openai"}, {"name": "c", "api": "nope", "base_url": "https://c.example.com"}]
    (project / "good.json").write_text(json.dumps([good]))
    (project / "bad.json").write_text(json.dumps(bad))
    env = {"KEY_FOR_A": KEY_A}

    out = llmroute(project, "providers", "import", "good.json", "--dry-run", env=env).stdout
    assert "add     a (openai" in out and "dry run: nothing was written" in out
    assert not (project / "data" / "providers.db").exists()  # a dry run creates nothing

    llmroute(
        project, "providers", "add", "keep", "--api", "openai", "--base-url", "https://k.example.com/v1", "--no-api-key"
    )
    db = project / "data" / "providers.db"
    before = _rows(db)
    result = llmroute(project, "providers", "import", "bad.json", env=env, status=1, subprocess_=True)
    assert "error   providers[1] 'b': base_url: required with api" in result.stdout
    assert "error   providers[2] 'c': api: " in result.stdout
    assert "bad.json: nothing imported: 2 invalid entries" in result.stderr
    assert _rows(db) == before

    out = llmroute(project, "providers", "import", "bad.json", "--skip-invalid", env=env).stdout
    assert "1 added, 0 updated" in out
    out = llmroute(project, "providers", "import", "good.json", env=env).stdout
    assert "0 added, 0 updated, 1 unchanged" in out
    err = llmroute(project, "providers", "import", "good.json", status=1).stderr
    assert "environment variable KEY_FOR_A is not set" not in err  # the plan (stdout) names it
    assert "nothing imported: 1 invalid entry" in err


def test_import_litellm_from_stdin(project: Path) -> None:
    text = (Path(__file__).parent / "fixtures" / "litellm_config.yaml").read_text()
    out = llmroute(
        project,
        "providers",
        "import",
        "-",
        "--format",
        "litellm",
        input=text,
        env={"TEST_OPENAI_API_KEY": KEY_A, "AZURE_API_KEY_EU": KEY_B},
    ).stdout
    assert "add     bedrock (bedrock, " in out and "not supported yet" not in out  # kind = "bedrock" is served
    assert "7 added" in out
    assert "sk-litellm-master" not in out


def test_export(project: Path) -> None:
    args = ["--api", "anthropic", "--base-url", "https://api.anthropic.com", "--model", "claude=claude-sonnet-4-5"]
    llmroute(project, "providers", "add", "a", *args, "--api-key-env", "K", env={"K": KEY_A})
    out = llmroute(project, "providers", "export").stdout
    assert KEY_A not in out and 'models = { "claude" = "claude-sonnet-4-5" }' in out
    assert KEY_A not in llmroute(project, "providers", "export", "--format", "json").stdout
    llmroute(project, "providers", "export", "--include-keys", "-o", "keys.toml")
    exported = project / "keys.toml"
    assert exported.stat().st_mode & 0o777 == 0o600 and KEY_A in exported.read_text()
    # The export imports back with nothing to change.
    assert "1 unchanged" in llmroute(project, "providers", "import", "keys.toml").stdout


def test_rotate_secret_in_place(project: Path) -> None:
    add(project, "a", key=KEY_A)
    secret_file = project / "store-secret"
    out = llmroute(project, "store", "rotate-secret", subprocess_=True).stdout
    assert "re-encrypted 1 key(s)" in out
    new_secret = secret_file.read_text().strip()
    assert new_secret != SECRET and secret_file.stat().st_mode & 0o777 == 0o600
    assert not (project / "store-secret.next").exists()
    assert "sk-...6789" in llmroute(project, "providers", "list").stdout
    secret_file.write_text(SECRET + "\n")  # the old secret no longer opens the store
    err = llmroute(project, "providers", "list", status=1).stderr
    assert "the store secret does not match this store" in err


def test_rotate_secret_to_an_env_reference(project: Path) -> None:
    add(project, "a", key=KEY_A)
    new = "a-brand-new-secret-from-the-environment-0123"
    out = llmroute(project, "store", "rotate-secret", "--new-secret", "env:NEW_SECRET", env={"NEW_SECRET": new}).stdout
    assert "now set [store] secret = 'env:NEW_SECRET'" in out
    config = project / "llmroute.toml"
    config.write_text(config.read_text().replace('secret = "file:store-secret"', 'secret = "env:NEW_SECRET"'))
    assert "sk-...6789" in llmroute(project, "providers", "list", env={"NEW_SECRET": new}).stdout
    err = llmroute(project, "store", "rotate-secret", env={"NEW_SECRET": new}, status=1).stderr
    assert "give --new-secret" in err


def test_interrupted_rotation_is_finished_on_next_open(project: Path) -> None:
    """The crash window after the commit and before the rename: the store is readable, then repaired."""
    from asgi_llmroute.providers.store import ProviderStore

    add(project, "a", key=KEY_A)
    new = "secret-of-an-interrupted-rotation-0123456789"
    (project / "store-secret.next").write_text(new + "\n")
    store = ProviderStore(project / "data" / "providers.db", SECRET)
    store.rotate(new)
    store.close()
    assert "sk-...6789" in llmroute(project, "providers", "list").stdout
    assert (project / "store-secret").read_text().strip() == new
    assert not (project / "store-secret.next").exists()


def test_store_problems_are_one_line_errors(project: Path, tmp_path: Path) -> None:
    llmroute(
        project, "providers", "add", "a", "--api", "openai", "--base-url", "https://a.example.com/v1", "--no-api-key"
    )
    db = project / "data" / "providers.db"
    db.write_bytes(b"this is not a database" * 100)
    err = llmroute(project, "providers", "list", status=1, subprocess_=True).stderr
    assert err.startswith("llmroute: error: ") and "providers.db" in err and "corrupt" in err
    (project / "store-secret").unlink()
    err = llmroute(project, "providers", "list", status=2).stderr
    assert "store.secret: cannot read" in err

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "llmroute.toml").write_text('[[tokens]]\nname = "a"\nkey = "sk-0123456789abcdef"\n')
    err = llmroute(plain, "providers", "list", status=2).stderr
    assert "there is no [store] section" in err
    assert sorted(p.name for p in plain.iterdir()) == ["llmroute.toml"]


def test_embedded_default_store(tmp_path: Path) -> None:
    add(tmp_path, "a", key=KEY_A)
    data = tmp_path / ".llmroute"
    for name in ("store-secret", "admin-token", "router-token", "providers.db"):
        assert (data / name).stat().st_mode & 0o777 == 0o600, name
    assert KEY_A.encode() not in store_bytes(data / "providers.db")
    assert "sk-...6789" in llmroute(tmp_path, "providers", "list").stdout


def test_a_running_gateway_serves_what_the_cli_adds(project: Path) -> None:
    upstream = Upstream()
    with serve(upstream) as upstream_url, serve(build_gateway(load_config(project / "llmroute.toml"))) as url:
        body = {"model": "cli-model", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Authorization": f"Bearer {ROUTER_TOKEN}"}
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.post("/v1/chat/completions", json=body, headers=headers).status_code == 404
            add(project, "cli", "--model", "cli-model=up", key=KEY_A, base_url=f"{upstream_url}/v1", subprocess_=True)
            assert client.post("/v1/chat/completions", json=body, headers=headers).status_code == 200
            assert upstream.last.headers["authorization"] == f"Bearer {KEY_A}"
            listed = client.get("/api/providers", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert [p["name"] for p in listed.json()["data"]] == ["cli"] and KEY_A not in listed.text
            llmroute(project, "providers", "remove", "cli")
            assert client.post("/v1/chat/completions", json=body, headers=headers).status_code == 404


def test_cli_import_killed_at_any_moment_is_all_or_nothing(project: Path) -> None:
    providers = [
        {
            "name": f"p{i}",
            "api": "openai",
            "base_url": f"https://p{i}.example.com/v1",
            "api_key": f"sk-{i:04}-0123456789",
        }
        for i in range(3000)
    ]
    (project / "big.json").write_text(json.dumps(providers))
    llmroute(
        project, "providers", "add", "keep", "--api", "openai", "--base-url", "https://k.example.com/v1", "--no-api-key"
    )
    db = project / "data" / "providers.db"
    before = _rows(db)
    for delay in (0.4, 0.8, 1.2):
        child = subprocess.Popen(
            [sys.executable, "-m", "asgi_llmroute.cli", "providers", "import", "big.json"],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)  # our own child
        child.wait(10)
        rows = _rows(db)
        assert len(rows) in (1, 3001)
        if len(rows) == 1:
            assert rows == before
        else:
            break
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_every_command_reads_the_config_named_by_llmroute_config(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    config = write_config(tmp_path / "conf")
    work = tmp_path / "work"
    work.mkdir()
    entry = {"name": "a", "api": "openai", "base_url": "https://a.example.com/v1", "api_key": "env:KEY_FOR_A"}
    (work / "providers.json").write_text(json.dumps([entry]))
    env = {"LLMROUTE_CONFIG": str(config), "KEY_FOR_A": KEY_A}
    out = llmroute(work, "providers", "import", "providers.json", env=env, subprocess_=True).stdout
    assert f"imported into {tmp_path / 'conf' / 'data' / 'providers.db'}: 1 added" in out
    assert "https://a.example.com/v1" in llmroute(work, "providers", "list", env=env).stdout
    assert llmroute(work, "keys", "create", "k1", env=env).returncode == 0
    assert "k1" in llmroute(work, "keys", "list", env=env).stdout
    assert not (work / ".llmroute").exists()  # not the embedded default
    # --config wins over the variable; a variable naming no file is one clear line.
    other = write_config(work)
    assert "no providers" in llmroute(work, "providers", "list", "--config", str(other), env=env).stdout
    missing = {"LLMROUTE_CONFIG": str(tmp_path / "nope.toml")}
    err = llmroute(work, "providers", "import", "providers.json", env=missing, status=2).stderr
    assert err == f"llmroute: error: {tmp_path / 'nope.toml'} (from LLMROUTE_CONFIG): no such file\n"
