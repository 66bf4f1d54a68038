"""docs/providers.md lists every provider kind with the defaults the code has."""

from __future__ import annotations

from pathlib import Path

from asgi_llmroute.providers import ProviderKind, kinds

DOC = Path(__file__).parents[2] / "docs" / "providers.md"


def row(kind: ProviderKind) -> str:
    """The kind's line in the docs table."""
    if kind.default_base_url:
        base = f"`{kind.default_base_url}`"
    else:
        base = f"required (`{kind.base_url_env}`)" if kind.base_url_env else "required"
    key = f"`{kind.key_env}`" if kind.key_env else "none"
    if kind.key_env and not kind.key_required:
        key += " (optional)"
    cells = [
        f"`{kind.name}`",
        kind.title,
        ", ".join(f"`{a}`" for a in kind.aliases) or "-",
        kind.wire,
        base,
        key,
        ", ".join(sorted(kind.capabilities)),
        ", ".join(f"`{r}`" for r in sorted(kind.refused_params)) or "-",
        "yes" if kind.reasoning_content else "no",
    ]
    return "| " + " | ".join(cells) + " |"


def test_every_kind_is_in_the_docs_table() -> None:
    lines = set(DOC.read_text(encoding="utf-8").splitlines())
    missing = [row(kind) for kind in kinds() if kind.name != "example-kind" and row(kind) not in lines]
    assert not missing, "docs/providers.md: add or fix these rows:\n" + "\n".join(missing)
