"""Provider imports: TOML, JSON and ``.lenv`` (our schema), ``.env`` files, LiteLLM's proxy ``config.yaml``
and the link-assistant router's ``.lenv`` provider files.

``parse(text, format)`` reads a file into a :class:`ParsedFile`; :func:`build_plan` checks it
against the store and the config file and says what would change (a dry run prints just that).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .dotenv import parse_dotenv
from .json_file import parse_json
from .lenv_file import parse_lenv
from .litellm import parse_litellm
from .plan import Entry, ImportFileError, ImportPlan, Issue, KeyRef, ParsedFile, build_plan
from .toml_file import parse_toml

__all__ = [
    "FORMATS",
    "Entry",
    "ImportFileError",
    "ImportPlan",
    "Issue",
    "KeyRef",
    "ParsedFile",
    "build_plan",
    "detect_format",
    "parse",
]

FORMATS: dict[str, Callable[[str], ParsedFile]] = {
    "toml": parse_toml,
    "json": parse_json,
    "env": parse_dotenv,
    "litellm": parse_litellm,
    "lenv": parse_lenv,
}


def detect_format(path: str | Path) -> str:
    """The format a file name suggests; :class:`ImportFileError` when it suggests none."""
    name = Path(path).name.lower()
    suffix = Path(name).suffix
    if suffix == ".toml":
        return "toml"
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "litellm"
    if suffix == ".lenv":
        return "lenv"
    if name == ".env" or name.startswith(".env.") or suffix == ".env":
        return "env"
    raise ImportFileError(f"cannot tell the format of {path} from its name: give --format ({', '.join(FORMATS)})")


def parse(text: str, format: str) -> ParsedFile:
    """Parse ``text`` as ``format`` (one of :data:`FORMATS`)."""
    try:
        parser = FORMATS[format]
    except KeyError:
        raise ImportFileError(f"unknown import format {format!r} (expected one of {', '.join(FORMATS)})") from None
    return parser(text)
