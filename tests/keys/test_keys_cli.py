"""``llmroute keys ...`` (in-process, same code as the command): each action's output, and each
mistake a one-line ``llmroute: error:`` with exit status 1, never a traceback or a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.providers.support import write_config
from tests.providers.test_cli import llmroute


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_config(tmp_path)
    return tmp_path


def test_create_list_show_update_rotate_revoke_spend(project: Path) -> None:
    created = llmroute(
        project,
        "keys", "create", "ci", "--team", "eng", "--models", "gpt-*, claude", "--rpm", "5",
        "--budget", "2", "--budget-period", "daily", "--expires", "30d", "--metadata", "owner=ops",
    )  # fmt: skip
    assert created.stdout.startswith("created ci (")
    secret = created.stdout.split("keep it now): ", 1)[1].strip()
    assert len(secret) > 20

    listed = json.loads(llmroute(project, "keys", "list", "--json").stdout)
    assert [k["name"] for k in listed] == ["ci"]
    assert listed[0]["models"] == ["gpt-*", "claude"] and listed[0]["metadata"] == {"owner": "ops"}
    assert secret not in json.dumps(listed)
    line = llmroute(project, "keys", "list", "--team", "eng").stdout
    assert " ci " in line and "team=eng" in line and "/$2.00 daily" in line

    shown = llmroute(project, "keys", "show", "ci").stdout
    assert "name: ci" in shown and "spend_this_period_usd: 0" in shown
    assert json.loads(llmroute(project, "keys", "show", "ci", "--json").stdout)["rpm"] == 5

    updated = llmroute(project, "keys", "update", "ci", "--name", "ci2", "--tpm", "100", "--expires", "never").stdout
    assert " ci2 " in updated

    rotated = llmroute(project, "keys", "rotate", "ci2", "--quiet").stdout.strip()
    assert rotated != secret and "\n" not in rotated

    revoked = llmroute(project, "keys", "revoke", "ci2").stdout
    assert revoked.startswith("revoked ci2 (")
    key_id = revoked.split("(", 1)[1].rstrip(")\n")
    assert llmroute(project, "keys", "list").stdout == ""
    assert "REVOKED" in llmroute(project, "keys", "list", "--revoked").stdout

    spend = llmroute(project, "keys", "spend", "--key", key_id, "--start", "2000-01-01", "--end", "2999-12-31")
    assert spend.stdout.strip() == "total $0.000000"
    assert json.loads(llmroute(project, "keys", "spend", "--json").stdout) == []
    assert "no virtual key 'ci2'" in llmroute(project, "keys", "show", "ci2", status=1).stderr  # a revoked name is free


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "create", "k", "--metadata", "novalue"], "metadata: 'novalue' is not KEY=VALUE"),
        (["keys", "create", "k", "--expires", "someday"], "expires_at: "),
        (["keys", "create", "k", "--rpm", "-3"], "rpm"),
        (["keys", "update", "k"], "nothing to change"),
        (["keys", "show", "missing"], "missing"),
        (["keys", "rotate", "missing"], "missing"),
    ],
)
def test_mistakes_are_one_line_errors(project: Path, args: list[str], message: str) -> None:
    result = llmroute(project, *args, status=1)
    assert result.stderr.startswith("llmroute: error: ") and message in result.stderr


def test_keys_need_a_store(tmp_path: Path) -> None:
    (tmp_path / "llmroute.toml").write_text('[[tokens]]\nname = "a"\nkey = "sk-router-0123456789abcdef"\n')
    result = llmroute(tmp_path, "keys", "list", status=2)  # a configuration problem
    assert "add a [store] section" in result.stderr
