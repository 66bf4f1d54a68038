"""``llmroute keys ...``: virtual keys in the store, from the shell.

A key's secret is printed once, by ``create`` and ``rotate`` (on stdout, alone on its line with
``--quiet``, so that scripts can capture it); ``list`` and ``show`` print its prefix only.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from .config import ConfigError, GatewayConfig

if TYPE_CHECKING:
    from .keys.manager import KeyManager
    from .keys.model import VirtualKey
    from .keys.store import KeyStore

# The store and the keys are imported when a ``keys`` command runs: ``llmroute serve`` builds this
# parser too, and a gateway without a store never loads them.

__all__ = ["add_commands", "run"]


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser], *, config_help: str) -> None:
    """Register ``keys`` on the ``llmroute`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help=config_help)
    keys = commands.add_parser("keys", help="manage virtual keys", description="Manage virtual keys (in the store).")
    sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = sub.add_parser("create", parents=[common], help="create a key (its secret is printed once)")
    create.add_argument("name")
    _fields(create)
    create.add_argument("--quiet", "-q", action="store_true", help="print only the secret")

    ls = sub.add_parser("list", parents=[common], help="list keys (secrets are never shown)")
    ls.add_argument("--team")
    ls.add_argument("--revoked", action="store_true", help="include revoked keys")
    ls.add_argument("--json", action="store_true", help="print JSON")

    show = sub.add_parser("show", parents=[common], help="show one key and its spend this period")
    show.add_argument("key", help="the key's id or name")
    show.add_argument("--json", action="store_true", help="print JSON")

    update = sub.add_parser("update", parents=[common], help="change a key's settings")
    update.add_argument("key", help="the key's id or name")
    update.add_argument("--name", dest="new_name", help="a new name")
    _fields(update)

    rotate = sub.add_parser("rotate", parents=[common], help="give a key a new secret (the old one stops working)")
    rotate.add_argument("key", help="the key's id or name")
    rotate.add_argument("--quiet", "-q", action="store_true", help="print only the secret")

    revoke = sub.add_parser("revoke", parents=[common], help="revoke a key")
    revoke.add_argument("key", help="the key's id or name")

    spend = sub.add_parser("spend", parents=[common], help="spend per key, model and day")
    spend.add_argument("--key", help="one key (id or name)")
    spend.add_argument("--team")
    spend.add_argument("--model")
    spend.add_argument("--start", type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    spend.add_argument("--end", type=date.fromisoformat, help="last day (YYYY-MM-DD)")
    spend.add_argument("--json", action="store_true", help="print JSON")


def _fields(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--team")
    parser.add_argument("--models", help="comma-separated glob patterns (default: every model)")
    parser.add_argument("--rpm", type=int, help="requests per minute")
    parser.add_argument("--tpm", type=int, help="tokens per minute")
    parser.add_argument("--max-in-flight", type=int, help="requests in flight at once")
    parser.add_argument("--budget", type=float, help="USD per budget period")
    parser.add_argument("--budget-period", help="daily, weekly, monthly, none, or a number of days ('30d')")
    parser.add_argument("--expires", help="an ISO 8601 time or a duration from now ('30d'); 'never' for none")
    parser.add_argument("--metadata", action="append", metavar="KEY=VALUE", help="free-form metadata (repeatable)")


def _changes(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    from .keys.model import KeyInvalid, parse_expiry

    changes: dict[str, Any] = {}
    for name in ("team", "rpm", "tpm", "max_in_flight", "budget", "budget_period"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.models is not None:
        changes["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.expires is not None:
        try:
            changes["expires_at"] = parse_expiry(args.expires, now)
        except ValueError as exc:
            raise KeyInvalid([f"expires_at: {exc}"]) from None
    if args.metadata:
        metadata = {}
        for item in args.metadata:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise KeyInvalid([f"metadata: {item!r} is not KEY=VALUE"])
            metadata[name] = value
        changes["metadata"] = metadata
    return changes


def run(args: argparse.Namespace, config: GatewayConfig) -> int:
    """Run a ``keys`` command; errors print ``llmroute: error: ...`` and return 1."""
    from .keys.model import KeyInvalid
    from .keys.store import KeyStore
    from .providers.store import StoreError
    from .store_setup import open_store

    if config.store is None:
        raise ConfigError(f"{config.source}: virtual keys live in the store; add a [store] section")
    store = open_store(config)
    keys = KeyStore(store)
    now = datetime.now(timezone.utc)
    try:
        action = args.action
        if action == "create":
            key, secret = keys.create({"name": args.name, **_changes(args, now)}, now)
            _print_secret(args, key, secret, "created")
        elif action == "list":
            listed = keys.list_keys(include_revoked=args.revoked, team=args.team)
            manager = _manager(keys)
            if args.json:
                print(json.dumps([_shown(manager, k) for k in listed], indent=2))
            for key in [] if args.json else listed:
                print(_line(manager, key))
        elif action == "show":
            key = keys.get(args.key)
            shown = _shown(_manager(keys), key)
            print(json.dumps(shown, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in shown.items()))
        elif action == "update":
            changes = _changes(args, now)
            if args.new_name is not None:
                changes["name"] = args.new_name
            if not changes:
                raise KeyInvalid(["nothing to change: give at least one option"])
            print(_line(_manager(keys), keys.update(args.key, changes, now)))
        elif action == "rotate":
            key, secret = keys.rotate(args.key, now)
            _print_secret(args, key, secret, "rotated")
        elif action == "revoke":
            key = keys.revoke(args.key, now)
            print(f"revoked {key.name} ({key.id})")
        elif action == "spend":
            key_id = keys.get(args.key).id if args.key else None
            rows = keys.spend_report(key_id=key_id, team=args.team, model=args.model, start=args.start, end=args.end)
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                for row in rows:
                    print(
                        f"{row['day']}  {row['key_name'] or row['key_id']}  {row['model']}  ${row['cost_usd']:.6f}"
                        f"  {row['requests']} requests"
                    )
                print(f"total ${sum(r['cost_usd'] for r in rows):.6f}")
        return 0
    except KeyInvalid as exc:
        for problem in exc.problems:
            print(f"llmroute: error: {problem}", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"llmroute: error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _manager(keys: KeyStore) -> KeyManager:
    from .keys.manager import KeyManager

    manager = KeyManager(keys)
    manager.flush()  # reads the current totals
    return manager


def _shown(manager: KeyManager, key: VirtualKey) -> dict[str, Any]:
    shown = key.public()
    spent, reset = manager.spent(key)
    shown["spend_this_period_usd"] = round(spent, 6)
    shown["resets_on"] = reset.isoformat() if reset else None
    return shown


def _line(manager: KeyManager, key: VirtualKey) -> str:
    spent, _ = manager.spent(key)
    budget = f"${spent:.4f}/${key.budget:.2f} {key.budget_period or 'total'}" if key.budget is not None else "no budget"
    state = " REVOKED" if key.revoked_at else ""
    return f"{key.id}  {key.name}  {key.prefix}  team={key.team or '-'}  {budget}{state}"


def _print_secret(args: argparse.Namespace, key: VirtualKey, secret: str, verb: str) -> None:
    if args.quiet:
        print(secret)
        return
    print(f"{verb} {key.name} ({key.id})")
    print(f"secret (shown once, keep it now): {secret}")
