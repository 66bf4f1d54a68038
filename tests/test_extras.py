"""Optional extras: a missing one is named in one line, never a traceback (pyproject.toml, README)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from asgi_llmroute import GatewayMetrics
from asgi_llmroute.cli import main
from asgi_llmroute.deferred import MissingExtraError, require
from asgi_llmroute.providers.crypto import StoreKey


def _uninstall(monkeypatch: pytest.MonkeyPatch, top: str) -> None:
    """Make ``top`` and its submodules unimportable, as if it were not installed."""
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, top, None)


def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _uninstall(monkeypatch, "yaml")
    with pytest.raises(MissingExtraError) as info:
        require("yaml", "litellm", what="Reading a LiteLLM config.yaml")
    message = str(info.value)
    assert message == (
        "Reading a LiteLLM config.yaml needs the 'litellm' extra (yaml is not installed): "
        "pip install 'asgi-llmroute[litellm]'"
    )
    assert "\n" not in message
    assert isinstance(info.value, ImportError)


def test_require_returns_the_module() -> None:
    assert require("json", "none", what="x") is sys.modules["json"]


def test_a_missing_dependency_of_the_library_is_not_blamed_on_the_extra(tmp_path: Path) -> None:
    # The library is there but one of *its* imports fails: that is a broken install, not a missing extra.
    (tmp_path / "half_installed.py").write_text("import no_such_module_anywhere\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ModuleNotFoundError) as info:
            require("half_installed", "x", what="x")
        assert not isinstance(info.value, MissingExtraError)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("half_installed", None)


def test_metrics_without_the_metrics_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _uninstall(monkeypatch, "prometheus_client")
    with pytest.raises(MissingExtraError, match=r"'metrics' extra .* pip install 'asgi-llmroute\[metrics\]'"):
        GatewayMetrics()


def test_the_store_without_the_store_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _uninstall(monkeypatch, "cryptography")
    with pytest.raises(MissingExtraError, match=r"provider store needs the 'store' extra"):
        StoreKey("a passphrase only this test uses, 7f3e9c")


def test_the_cli_says_which_extra_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("model_list: []\n")
    _uninstall(monkeypatch, "yaml")
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'litellm' extra" in err
    assert "Traceback" not in err


def test_serve_without_the_server_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _uninstall(monkeypatch, "uvicorn")
    monkeypatch.chdir(tmp_path)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "llmroute: error: llmroute serve needs the 'server' extra (uvicorn is not installed): "
        "pip install 'asgi-llmroute[server]'\n"
    )
