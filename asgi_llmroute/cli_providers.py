"""``llmroute providers ...`` and ``llmroute store rotate-secret``: the provider store from the shell.

This module holds the commands' arguments; what each action does is in ``cli_provider_actions.py``,
imported when a ``providers`` or ``store`` command runs (the store, the importers and pydantic's
record models are then loaded, not by ``llmroute serve``).

Keys never go on the command line (shell history, ``ps``): ``--api-key-env NAME``,
``--api-key-file PATH``, ``--api-key-stdin``, or an interactive prompt. Listings redact keys;
``export`` writes them only with ``--include-keys``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import GatewayConfig

__all__ = ["add_commands", "run"]


#: The formats of ``providers import`` (the importers' ``FORMATS``, named here so that building the
#: parser, which ``llmroute serve`` does too, does not import every importer).
IMPORT_FORMATS = ("toml", "json", "env", "litellm", "lenv")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser], *, config_help: str) -> None:
    """Register ``providers`` and ``store`` on the ``llmroute`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help=config_help)

    providers = commands.add_parser(
        "providers", help="manage the encrypted provider store", description="Manage the encrypted provider store."
    )
    sub = providers.add_subparsers(dest="action", required=True, metavar="ACTION")

    ls = sub.add_parser("list", parents=[common], help="list stored providers (keys redacted)")
    ls.add_argument("--json", action="store_true", help="print JSON")

    show = sub.add_parser("show", parents=[common], help="show one provider (key redacted)")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print JSON")

    add = sub.add_parser("add", parents=[common], help="add a provider")
    add.add_argument("name")
    identity = add.add_mutually_exclusive_group(required=True)
    identity.add_argument("--api", choices=["openai", "anthropic"], help="the provider's API format (any server)")
    identity.add_argument("--kind", help="a provider kind (groq, azure, ollama, ...; docs/providers.md)")
    add.add_argument(
        "--base-url", help="e.g. https://api.openai.com/v1 or https://api.anthropic.com (default: the kind's)"
    )
    _record_options(add)

    update = sub.add_parser("update", parents=[common], help="change a provider (e.g. rotate its key)")
    update.add_argument("name")
    update.add_argument("--api", choices=["openai", "anthropic"])
    update.add_argument("--base-url")
    _record_options(update)

    remove = sub.add_parser("remove", parents=[common], help="remove a provider")
    remove.add_argument("name")

    imp = sub.add_parser("import", parents=[common], help="import providers from a file (all or nothing)")
    imp.add_argument("file", help="the file to import ('-' for stdin, with --format)")
    imp.add_argument("--format", choices=IMPORT_FORMATS, help="default: from the file name")
    imp.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    imp.add_argument("--skip-invalid", action="store_true", help="import the valid entries even if some are not")
    imp.add_argument("--strict", action="store_true", help="an entry whose provider type is not supported is an error")

    exp = sub.add_parser("export", parents=[common], help="export providers (without keys unless asked)")
    exp.add_argument("--format", choices=["toml", "json"], default="toml")
    exp.add_argument("--include-keys", action="store_true", help="write the API keys in clear (file mode 0600)")
    exp.add_argument("--output", "-o", metavar="PATH", help="write to PATH instead of stdout")

    store = commands.add_parser("store", help="provider store maintenance", description="Provider store maintenance.")
    store_sub = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    rotate = store_sub.add_parser(
        "rotate-secret",
        parents=[common],
        help="re-encrypt every key under a new secret (all or nothing)",
        description="Re-encrypt every stored key under a new secret. Without --new-secret, a file: secret is "
        "replaced by a newly generated one in place.",
    )
    rotate.add_argument("--new-secret", metavar="REF", help="the new secret as env:NAME or file:PATH")
    store_sub.add_parser(
        "migrate",
        parents=[common],
        help="create or upgrade the store's schema (PostgreSQL), then exit",
        description="Run the store's schema migrations (the gateway also runs them at start).",
    )
    copy = store_sub.add_parser(
        "copy",
        parents=[common],
        help="copy every provider from a SQLite store file into the configured store",
        description="Copy every provider record of a SQLite store file (same [store] secret) into the configured "
        "store, e.g. PostgreSQL, in one transaction. Records already there with the same name are replaced.",
    )
    copy.add_argument("--from", dest="source", required=True, metavar="PATH", help="the SQLite store file")


def _record_options(parser: argparse.ArgumentParser) -> None:
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--api-key-env", metavar="NAME", help="read the key from environment variable NAME")
    keys.add_argument("--api-key-file", metavar="PATH", help="read the key from a file")
    keys.add_argument("--api-key-stdin", action="store_true", help="read the key from standard input")
    keys.add_argument("--no-api-key", action="store_true", help="the provider takes no key (or: remove the key)")
    parser.add_argument("--header", action="append", metavar="NAME=VALUE", help="extra header (repeatable)")
    parser.add_argument(
        "--model", action="append", metavar="CLIENT[=UPSTREAM]", help="a model clients may use (repeatable)"
    )
    parser.add_argument("--timeout", type=float, metavar="SECONDS")
    parser.add_argument(
        "--responses-api",
        action=argparse.BooleanOptionalAction,
        help="the provider serves /v1/responses itself (api openai only)",
    )
    parser.add_argument("--option", action="append", metavar="NAME=VALUE", help="a kind's own setting (repeatable)")
    parser.add_argument(
        "--drop-params",
        action=argparse.BooleanOptionalAction,
        help="drop request fields the kind refuses (with a warning header) instead of a 400 (default: [translation])",
    )
    parser.add_argument("--connect-timeout", type=float, metavar="SECONDS")
    parser.add_argument("--first-byte-timeout", type=float, metavar="SECONDS")
    parser.add_argument("--idle-timeout", type=float, metavar="SECONDS")
    parser.add_argument("--stream-timeout", type=float, metavar="SECONDS", help="a total deadline for streams")
    parser.add_argument("--max-retries", type=int)
    parser.add_argument("--retry-on", metavar="STATUS,...", help="statuses retried, e.g. 429,500,503")
    parser.add_argument("--max-in-flight", type=int, metavar="N")
    parser.add_argument("--cooldown", type=float, metavar="SECONDS")


def run(args: argparse.Namespace, config: GatewayConfig) -> int:
    """Run a ``providers``/``store`` command; errors print ``llmroute: error: ...`` and return 1."""
    from .cli_provider_actions import run as run_action

    return run_action(args, config)
