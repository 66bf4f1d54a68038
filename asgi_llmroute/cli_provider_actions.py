"""What ``llmroute providers ...`` and ``llmroute store ...`` do; their arguments are in ``cli_providers.py``.

A key is read from a variable, a file, stdin or a hidden prompt, never from the command line;
listings redact keys and ``export`` writes them only with ``--include-keys``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .config import ConfigError, GatewayConfig
from .importers import ImportFileError, build_plan, detect_format, parse
from .importers.export import export_json, export_toml
from .providers.kinds import KindError, ProviderKind, get_kind
from .providers.records import TUNING_KEYS, ProviderRecord, ProviderSpec, describe_validation
from .providers.store import ProviderStore, Snapshot, StoreError
from .store_setup import open_store, rotate_secret

__all__ = ["CommandError", "run"]


class CommandError(Exception):
    """A problem the command reports as ``llmroute: error: ...`` (exit status 1)."""


def run(args: argparse.Namespace, config: GatewayConfig) -> int:
    """Run a ``providers``/``store`` command; errors print ``llmroute: error: ...`` and return 1."""
    try:
        if args.command == "store":
            if args.action == "migrate":
                return _migrate(config)
            if args.action == "copy":
                return _copy(args, config)
            count, advice = rotate_secret(config, args.new_secret)
            print(f"re-encrypted {count} key(s) under the new secret; {advice}")
            return 0
        return _ACTIONS[args.action](args, config)
    except (StoreError, CommandError, ImportFileError) as exc:
        print(f"llmroute: error: {exc}", file=sys.stderr)
        return 1
    except ConfigError:
        raise  # cli.main prints it (status 2)


def _migrate(config: GatewayConfig) -> int:
    store = _store(config)  # opening a store runs its migrations (SQLite: creates the schema)
    try:
        print(f"{store.path}: the schema is up to date")
    finally:
        store.close()
    return 0


def _copy(args: argparse.Namespace, config: GatewayConfig) -> int:
    source_path = Path(args.source)
    if not source_path.is_file():
        raise CommandError(f"--from {source_path}: no such file")
    store = _store(config)
    try:
        if Path(str(store.path)).resolve() == source_path.resolve():
            raise CommandError("--from is the configured store itself")
        source = ProviderStore(source_path, lambda: [config.store_secret().reveal()], create=False)
        try:
            snapshot = source.load()
        finally:
            source.close()
        if snapshot.errors:
            raise CommandError("nothing was copied: " + "; ".join(str(e) for e in snapshot.errors))
        store.apply(snapshot.records)  # decrypted here, encrypted again for the target: one transaction
    finally:
        store.close()
    print(f"copied {len(snapshot.records)} provider(s) from {source_path} to {store.path}")
    return 0


def _store(config: GatewayConfig, *, create: bool = True) -> ProviderStore:
    return open_store(config, create=create)


# -- reading -----------------------------------------------------------------------------------


def _snapshot(config: GatewayConfig, warning: str) -> tuple[Path, Snapshot]:
    """The store's path and readable records; a ``warning`` line on stderr for each unreadable one."""
    store = _store(config, create=False)
    try:
        snapshot = store.load()
    finally:
        store.close()
    for error in snapshot.errors:
        print(f"llmroute: warning: {warning}{error}", file=sys.stderr)
    return store.path, snapshot


def _list(args: argparse.Namespace, config: GatewayConfig) -> int:
    path, snapshot = _snapshot(config, "")
    if args.json:
        views = [r.view() for r in snapshot.records]
        unreadable = [{"name": e.name, "error": e.problem} for e in snapshot.errors]
        print(json.dumps({"providers": views, "unreadable": unreadable}, indent=2))
        return 0
    if not snapshot.records:
        print(f"no providers in {path}")
        return 0
    rows = [("NAME", "API", "BASE URL", "KEY", "MODELS")]
    for r in snapshot.records:
        key = r.api_key.redacted() if r.api_key is not None else "-"
        rows.append((r.name, r.kind or r.api, r.base_url, key, ", ".join(r.models) or f"({r.name}/<model>)"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4])
    return 0


def _show(args: argparse.Namespace, config: GatewayConfig) -> int:
    store = _store(config, create=False)
    try:
        view = store.get(args.name).view()
    finally:
        store.close()
    if args.json:
        print(json.dumps(view, indent=2))
    else:
        for key, value in view.items():
            print(f"{key}: {json.dumps(value) if isinstance(value, dict) else value}")
    return 0


def _export(args: argparse.Namespace, config: GatewayConfig) -> int:
    _, snapshot = _snapshot(config, "not exported: ")
    write = export_json if args.format == "json" else export_toml
    text = write(snapshot.records, include_keys=args.include_keys)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    # Owner-only when it holds keys; replaced atomically so a reader never sees half a file.
    path = Path(args.output)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if args.include_keys else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    print(f"exported {len(snapshot.records)} provider(s) to {path}" + (" (with keys)" if args.include_keys else ""))
    return 0


# -- writing -----------------------------------------------------------------------------------


def _read_key(args: argparse.Namespace, *, required: bool) -> tuple[bool, str | None]:
    """(whether a key was given, the key): from a variable, a file, stdin or a prompt."""
    if args.no_api_key:
        return True, None
    if args.api_key_env:
        value = os.environ.get(args.api_key_env)
        if value is None:
            raise CommandError(f"--api-key-env: environment variable {args.api_key_env} is not set")
        return True, value
    if args.api_key_file:
        try:
            return True, Path(args.api_key_file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CommandError(f"--api-key-file: cannot read {args.api_key_file}: {exc.strerror or exc}") from None
    if args.api_key_stdin:
        return True, sys.stdin.readline().strip()
    if not required:
        return False, None
    if sys.stdin.isatty():
        return True, getpass.getpass(f"API key for {args.name} (input hidden, empty for none): ").strip() or None
    raise CommandError("give the key with --api-key-env NAME, --api-key-file PATH or --api-key-stdin (or --no-api-key)")


def _kind(name: str) -> ProviderKind:
    try:
        return get_kind(name)
    except KindError as exc:
        raise CommandError(f"--kind: {exc}") from None


def _tuning(args: argparse.Namespace) -> dict[str, Any]:
    """The per-provider settings given on the command line, in ProviderSpec's names."""
    out: dict[str, Any] = {}
    names = ("timeout", "responses_api", "drop_params", *(k for k in TUNING_KEYS if k != "retry_on"))
    for name in names:
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    if getattr(args, "retry_on", None) is not None:
        try:
            out["retry_on"] = [int(v) for v in args.retry_on.split(",") if v.strip()]
        except ValueError:
            raise CommandError(f"--retry-on {args.retry_on!r}: expected statuses like 429,500,503") from None
    return out


def _pairs(values: list[str] | None, option: str, *, default_same: bool) -> dict[str, str]:
    out = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not name.strip() or (not sep and not default_same):
            raise CommandError(f"{option} {item!r}: expected NAME=VALUE")
        out[name.strip()] = value.strip() if sep else name.strip()
    return out


def _check_names(config: GatewayConfig, name: str, models: Any) -> None:
    if any(p.name == name for p in config.providers):
        raise CommandError(f"{name!r} is a provider in {config.source}; a name may be in one place only")
    taken = sorted(set(models or ()) & {m.name for m in config.models})
    if taken:
        raise CommandError(f"model(s) {', '.join(taken)} are defined in {config.source}")


def _validation(name: str, exc: ValidationError) -> CommandError:
    return CommandError(f"provider {name!r}: " + "; ".join(describe_validation(exc)))


def _add(args: argparse.Namespace, config: GatewayConfig) -> int:
    kind = _kind(args.kind) if args.kind else None
    options = _pairs(args.option, "--option", default_same=False)
    given = args.no_api_key or args.api_key_env or args.api_key_file or args.api_key_stdin
    variable = kind.default_key_env(options) if kind is not None else None
    if kind is not None and not given and (not kind.key_required or (variable and os.environ.get(variable))):
        key = (os.environ.get(variable, "").strip() or None) if variable else None  # the kind's usual variable
    else:
        _, key = _read_key(args, required=True)
    identity = {"kind": args.kind} if args.kind else {"api": args.api}
    data: dict[str, Any] = {"name": args.name, **identity, "api_key": key}
    if args.base_url is not None:
        data["base_url"] = args.base_url
    data["headers"] = _pairs(args.header, "--header", default_same=False)
    data["models"] = _pairs(args.model, "--model", default_same=True)
    if options:
        data["options"] = options
    data.update(_tuning(args))
    try:
        record = ProviderSpec.model_validate(data).record()
    except ValidationError as exc:
        raise _validation(args.name, exc) from None
    _check_names(config, record.name, record.models)
    store = _store(config)
    try:
        store.add(record)
    finally:
        store.close()
    print(f"added {_summary(record)}")
    return 0


def _update(args: argparse.Namespace, config: GatewayConfig) -> int:
    given, key = _read_key(args, required=False)
    changes: dict[str, Any] = {}
    if given:
        changes["api_key"] = key
    for field in ("api", "base_url"):
        if getattr(args, field) is not None:
            changes[field] = getattr(args, field)
    changes.update(_tuning(args))
    if args.option is not None:
        changes["options"] = _pairs(args.option, "--option", default_same=False)
    if args.header is not None:
        changes["headers"] = _pairs(args.header, "--header", default_same=False)
    if args.model is not None:
        changes["models"] = _pairs(args.model, "--model", default_same=True)
    if not changes:
        raise CommandError("nothing to change: give --api-key-*, --base-url, --api, --header, --model or --timeout")
    _check_names(config, args.name, changes.get("models"))
    store = _store(config)
    try:
        record = store.update(args.name, changes)
    finally:
        store.close()
    print(f"updated {_summary(record)}")
    return 0


def _remove(args: argparse.Namespace, config: GatewayConfig) -> int:
    store = _store(config, create=False)
    try:
        store.remove(args.name)
    finally:
        store.close()
    print(f"removed {args.name}")
    return 0


def _import(args: argparse.Namespace, config: GatewayConfig) -> int:
    if args.file == "-":
        if args.format is None:
            raise CommandError("reading from stdin: give --format")
        text, base_dir = sys.stdin.read(), Path.cwd()
    else:
        path = Path(args.file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        base_dir = path.resolve().parent
    fmt = args.format or detect_format(args.file)
    try:
        parsed = parse(text, fmt)
    except ImportFileError as exc:
        raise CommandError(f"{args.file}: {exc}") from None
    unsupported = [issue for issue in parsed.skipped if "is not supported yet" in issue.message]
    if args.strict and unsupported:
        raise CommandError(f"{args.file}: " + "; ".join(str(i) for i in unsupported) + " (--strict): nothing imported")
    store = _store(config, create=not args.dry_run)
    try:
        snapshot = store.load()
        plan = build_plan(
            parsed,
            {r.name: r for r in snapshot.records},
            unreadable={e.name: e.problem for e in snapshot.errors},
            reserved_providers=[p.name for p in config.providers],
            reserved_models=[m.name for m in config.models],
            base_dir=base_dir,
        )
        print(plan.render())
        if plan.errors and not args.skip_invalid:
            count = len(plan.errors)
            raise CommandError(
                f"{args.file}: nothing imported: {count} invalid entr{'y' if count == 1 else 'ies'}"
                " (listed above; fix them or use --skip-invalid)"
            )
        if args.dry_run:
            print("dry run: nothing was written")
            return 0
        records = plan.records()
        if records:
            store.apply(records)
    finally:
        store.close()
    counts = f"{len(plan.add)} added, {len(plan.update)} updated, {len(plan.unchanged)} unchanged"
    print(f"imported into {store.path}: {counts}")
    return 0


def _summary(record: ProviderRecord) -> str:
    key = f"key {record.api_key.redacted()}" if record.api_key is not None else "no key"
    models = ", ".join(record.models) or f"{record.name}/<model>"
    what = f"kind {record.kind}" if record.kind is not None else record.api
    return f"{record.name} ({what}, {record.base_url}, {key}, models {models})"


_ACTIONS = {
    "list": _list,
    "show": _show,
    "add": _add,
    "update": _update,
    "remove": _remove,
    "import": _import,
    "export": _export,
}
