"""Imports made when first needed: a package's public names (PEP 562) and the libraries of optional extras.

The base install carries what the middlewares and the forwarder need; the server, the provider store,
metrics and LiteLLM configs each have an extra (pyproject.toml). A module that needs one calls
:func:`require`, which names the extra to install when the library is missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

__all__ = ["MissingExtraError", "lazy_exports", "require"]


class MissingExtraError(ImportError):
    """An optional dependency is not installed; ``str(error)`` is one line naming the extra to install."""


def require(module: str, extra: str, *, what: str) -> ModuleType:
    """Import ``module`` (a library of the ``extra`` extra), needed for ``what``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingExtraError(
            f"{what} needs the '{extra}' extra ({module.split('.')[0]} is not installed): "
            f"pip install 'asgi-llmroute[{extra}]'"
        ) from None


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps a public name to its module (relative)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value  # later lookups do not come here
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
