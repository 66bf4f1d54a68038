"""Every snippet in README.md and docs/ runs as written.

- ``toml`` blocks are loaded with the config loader (``env:`` variables they name are set, ``file:``
  references they name are created).
- ``python`` blocks run in a fresh interpreter, in the folder of a running ``llmroute serve`` (the embedded
  default), so that ``.llmroute/router-token`` and the demo models are there; README's ``llmroute.toml`` is in
  that folder too. ``sh`` blocks run with bash the same way.
- The one liberty taken: ``127.0.0.1:4000`` becomes the test server's address (tests use free ports).

A block that cannot run here is listed in ``NOT_RUN`` with the reason, so a new snippet is either run or
explicitly excused.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from asgi_llmroute.config import load_config
from tests.support.cli import llmroute_serve

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_REFERENCE = re.compile(r'"(env|file):([^"]+)"')
RUN = ("python", "toml", "sh")

#: (document, first line of the block) -> why it is not run here.
NOT_RUN = {
    ("README.md", "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[all]' && llmroute serve"): (
        "installs the project into a new venv from the network; CI's scripts/test does exactly this"
    ),
    ("README.md", "./scripts/test"): "it is the command that runs this test",
    ("docs/performance.md", "apt-get install -y wrk nginx-light"): "installs system packages; bench/ is run apart",
    (
        "docs/providers.md",
        '_row("acme", "Acme AI", "https://api.acme.example/v1", "ACME_API_KEY", '
        'frozenset({CHAT}), refused=frozenset({"n"}))',
    ): "a line of source to add to asgi_llmroute/providers/catalog.py, not a program",
}


@dataclass(frozen=True)
class Snippet:
    document: str
    line: int
    language: str
    text: str

    @property
    def key(self) -> tuple[str, str]:
        return self.document, self.text.strip().splitlines()[0]

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


def _snippets() -> list[Snippet]:
    out = []
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            language = match.group(1)
            if language in RUN:
                line = text.count("\n", 0, match.start()) + 2
                out.append(Snippet(str(path.relative_to(ROOT)), line, language, match.group(2)))
    return out


SNIPPETS = _snippets()


def _by_language(language: str) -> list[Snippet]:
    return [s for s in SNIPPETS if s.language == language and s.key not in NOT_RUN]


def test_the_excused_snippets_still_exist() -> None:
    keys = {s.key for s in SNIPPETS}
    assert set(NOT_RUN) <= keys, set(NOT_RUN) - keys


def _references_for(text: str, folder: Path, monkeypatch: pytest.MonkeyPatch | None = None) -> dict[str, str]:
    """Set the variables and create the files a snippet's ``env:``/``file:`` references name."""
    env = {}
    for kind, target in _REFERENCE.findall(text):
        if kind == "env":
            env[target] = f"sk-test-{target.lower()}-0123456789"
        else:
            path = folder / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("6b3f0c1e9a2d4f5b8c7e6d5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\n")
    if monkeypatch is not None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
    return env


@pytest.mark.parametrize("snippet", _by_language("toml"), ids=str)
def test_toml_snippets_load(snippet: Snippet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _references_for(snippet.text, tmp_path, monkeypatch)
    path = tmp_path / "llmroute.toml"
    path.write_text(snippet.text)
    load_config(path)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("snippets")
    with llmroute_serve([], folder) as server:
        yield folder, server.url.removeprefix("http://"), {}


def _run(snippet: Snippet, served: tuple[Path, str, dict[str, str]], command: list[str]) -> None:
    folder, address, extra_env = served
    text = snippet.text.replace("127.0.0.1:4000", address)
    env = {**os.environ, **extra_env, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    # `llmroute` as the snippets call it: the script installed next to this interpreter.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    result = subprocess.run(
        [*command, text], cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{snippet} failed:\n{result.stdout}\n{result.stderr}"


def _python_for(snippet: Snippet) -> list[str] | None:
    if "import litellm" in snippet.text:
        litellm = os.environ.get("LLMROUTE_TEST_LITELLM")
        return [str(Path(litellm) / "python"), "-c"] if litellm else None
    return [sys.executable, "-c"]


@pytest.mark.parametrize("snippet", _by_language("python"), ids=str)
def test_python_snippets_run(snippet: Snippet, served: tuple[Path, str, dict[str, str]]) -> None:
    command = _python_for(snippet)
    if command is None:
        pytest.skip("needs LiteLLM: set LLMROUTE_TEST_LITELLM to its venv's bin (scripts/test does)")
    if '"llmroute.toml"' not in snippet.text:
        _run(snippet, served, command)
        return
    # README's configuration sits next to the snippet that loads it ("Use the pieces"), for that snippet only
    # (the CLI snippets work on the embedded default of the same folder).
    folder, address, _ = served
    readme_toml = next(s for s in SNIPPETS if s.document == "README.md" and s.language == "toml")
    config = folder / "llmroute.toml"
    config.write_text(readme_toml.text)
    try:
        _run(snippet, (folder, address, _references_for(readme_toml.text, folder)), command)
    finally:
        config.unlink()


@pytest.mark.parametrize("snippet", _by_language("sh"), ids=str)
def test_shell_snippets_run(snippet: Snippet, served: tuple[Path, str, dict[str, str]]) -> None:
    if shutil.which("curl") is None and "curl " in snippet.text:
        pytest.skip("curl is not installed")
    _run(snippet, served, ["bash", "-euo", "pipefail", "-c"])


_CITATION = re.compile(r"\bSPEC\.md\b|\bPROVIDERS\.md\b|\bSPEC (?:§|section )?\d|\bPROVIDERS (?:§|section )?\d")


def test_nothing_cites_documents_outside_the_repository() -> None:
    # What the code relies on from the protocol research lives in docs/, in our own words.
    found = []
    for path in sorted([*ROOT.glob("asgi_llmroute/**/*.py"), *ROOT.glob("tests/**/*"), *ROOT.glob("docs/*.md")]):
        if path.is_file() and path.suffix in (".py", ".md", ".txt", ".toml") and path.name != Path(__file__).name:
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _CITATION.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
