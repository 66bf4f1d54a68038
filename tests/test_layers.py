"""Layers import downward (docs/architecture.md, "Modules"): checked on the source, import by import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "asgi_llmroute"

# The layer of each module (dotted, below the package); a module not listed takes its package's.
LAYERS: dict[str, int] = {
    "formats": 0,
    # value types
    "__about__": 1,
    "deferred": 1,
    "lenv": 1,
    "secret": 1,
    "tokens": 1,
    "headers": 1,
    "timeouts": 1,
    "retry_policy": 1,
    "providers.types": 1,
    "fields": 1,
    "providers.kinds": 1,
    "providers.auth": 1,
    "keys.model": 1,
    # ASGI plumbing
    "context": 2,
    "errors": 2,
    "send": 2,
    "disconnect": 2,
    "logs": 2,
    "multipart": 2,
    # middlewares, the forwarder, apps, providers, importers
    "middleware": 3,
    "forward": 3,
    "transport": 3,
    "relay": 3,
    "upstream_headers": 3,
    "admin": 3,
    "metrics": 3,
    "demo": 3,
    "providers": 3,
    "state": 3,
    "keys": 3,
    "importers": 3,
    # assembly
    "config": 4,
    "assemble": 4,
    "store_setup": 4,
    "gateway": 4,
    "embedded": 4,
    "importers.litellm_config": 4,
    # CLI
    "cli": 5,
    "cli_providers": 5,
    "cli_provider_actions": 5,
    "cli_keys": 5,
    "serving": 5,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts:  # the package root re-exports everything lazily: it is the API, not a layer
            out[".".join(parts)] = path
    return out


def _layer(module: str) -> int:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        layer = LAYERS.get(".".join(parts[:i]))
        if layer is not None:
            return layer
    raise AssertionError(f"asgi_llmroute.{module} has no layer: add it to LAYERS and docs/architecture.md")


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported name, line): package modules as ``.name`` relative to the package, others by top-level name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                if name == "asgi_llmroute" or name.startswith("asgi_llmroute."):
                    found.append(("." + name.removeprefix("asgi_llmroute").lstrip("."), node.lineno))
                else:
                    found.append((name.split(".")[0], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                name = node.module or ""
                if name == "asgi_llmroute" or name.startswith("asgi_llmroute."):
                    base = name.removeprefix("asgi_llmroute").lstrip(".")
                    found.extend((f".{base}.{a.name}".replace("..", "."), node.lineno) for a in node.names)
                else:
                    found.append((name.split(".")[0], node.lineno))
                continue
            base_parts = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            base = ".".join([*base_parts, *(node.module.split(".") if node.module else [])])
            for alias in node.names:
                # `from . import x` / `from .m import name`: the module is `m` (or `x` when it is one).
                target = f"{base}.{alias.name}" if base else alias.name
                found.append(("." + (target if target in _MODULES else base), node.lineno))
    return found


_MODULES = _modules()


def _package_import(name: str) -> str | None:
    if not name.startswith("."):
        return None
    target = name[1:]
    while target and target not in _MODULES:
        target = target.rpartition(".")[0]
    return target or None


def test_every_module_has_a_layer() -> None:
    for module in _MODULES:
        _layer(module)


def test_layers_import_downward() -> None:
    wrong = []
    for module, path in _MODULES.items():
        own = _layer(module)
        for name, line in _imports(module, path):
            target = _package_import(name)
            if target is not None and _layer(target) > own:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} (layer {own}) imports {target}")
    assert not wrong, "\n".join(wrong)


def test_formats_is_pure() -> None:
    """The translation core imports only the standard library and itself: no ASGI, no I/O libraries."""
    wrong = []
    for module, path in _MODULES.items():
        if module.split(".")[0] != "formats":
            continue
        for name, line in _imports(module, path):
            target = _package_import(name)
            if target is not None:
                ok = target.split(".")[0] == "formats"
            else:
                ok = name in sys.stdlib_module_names and name not in {"asyncio", "socket", "sqlite3", "ssl"}
            if not ok:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {name.lstrip('.')}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("middleware", {"gateway", "config", "assemble", "cli", "cli_providers", "importers"}),
        ("config", {"middleware", "forward", "transport"}),
        ("forward", {"middleware"}),
        ("transport", {"middleware"}),
    ],
)
def test_named_rules(importer: str, forbidden: set[str]) -> None:
    """The rules docs/architecture.md states, checked by name (so a LAYERS edit cannot undo them)."""
    wrong = []
    for module, path in _MODULES.items():
        if module.split(".")[0] != importer:
            continue
        for name, line in _imports(module, path):
            target = _package_import(name)
            if target is not None and target.split(".")[0] in forbidden:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_pure_core_loads_no_third_party_library() -> None:
    code = (
        "import asgi_llmroute.formats, sys; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'starlette','httpx','cryptography','prometheus_client','yaml','uvicorn','pydantic','anyio','httptools'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_large_modules_say_why() -> None:
    """A module over ~400 lines is one cohesive thing, and says which in its first lines (docs/architecture.md).

    The test allows a margin (420) so that a small addition to a module just under 400 lines is not a failure.
    """
    wrong = []
    for path in _MODULES.values():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > 420 and not any("One cohesive thing over 400 lines:" in line for line in lines[:3]):
            wrong.append(f"{path.relative_to(PACKAGE.parent)}: {len(lines)} lines and no 'One cohesive thing' note")
    assert not wrong, "\n".join(wrong)


def test_the_command_line_loads_no_upstream_client_store_or_metrics() -> None:
    """``llmroute`` starts fast: what only a running gateway (or one subcommand) uses is imported then."""
    # Only what the import loads counts: a coverage run's subprocess has coverage (and its sqlite3) loaded before.
    code = (
        "import sys; before = set(sys.modules); import asgi_llmroute.cli; new = set(sys.modules) - before; "
        "print(sorted({m.split('.')[0] for m in new} & "
        "{'httpx','aiohttp','cryptography','prometheus_client','uvicorn','sqlite3','python_multipart','yaml'}), "
        "sorted(m for m in new if m.startswith(('asgi_llmroute.importers', 'asgi_llmroute.keys.', "
        "'asgi_llmroute.formats.bedrock', 'asgi_llmroute.formats.gemini', 'asgi_llmroute.providers.store'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"


def test_the_gateway_loads_no_importer() -> None:
    """Provider imports (the admin API's and the CLI's) load their parsers when a file is imported."""
    code = "import asgi_llmroute.gateway, sys; print(sorted(m for m in sys.modules if 'importers' in m or m == 'yaml'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
