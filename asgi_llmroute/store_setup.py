"""The provider store as a :class:`GatewayConfig` describes it: opening, serving, rotating its secret.

A ``file:`` secret can be rotated in place: the new secret is written next to the old one as
``<file>.next``, every key is re-encrypted in one transaction, then ``<file>.next`` replaces
``<file>``. While (or if a crash leaves) both files present, the store tries both, and the next
open finishes the rename, so no step of the sequence leaves the store unreadable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .config import ConfigError, GatewayConfig
from .providers.live import LiveRouteTable, StoreConflictError
from .providers.routing import RouteTable
from .providers.store import ProviderStore, SecretSource, StoreError
from .secret import SecretReferenceError

__all__ = ["live_routes", "open_store", "rotate_secret"]


def _secret_file(config: GatewayConfig) -> Path | None:
    assert config.store is not None
    ref = config.store.secret
    if not ref.startswith("file:"):
        return None
    path = Path(ref[5:]).expanduser()
    if config.base_dir is not None and not path.is_absolute():
        path = Path(config.base_dir) / path
    return path


def _next_file(path: Path) -> Path:
    return path.with_name(path.name + ".next")


def _source(config: GatewayConfig) -> SecretSource:
    secret_file = _secret_file(config)

    def candidates() -> list[str]:
        found = []
        try:
            found.append(config.store_secret().reveal())
        except ConfigError as exc:
            if secret_file is None or not _next_file(secret_file).exists():
                raise StoreError(str(exc)) from None
        if secret_file is not None:
            try:
                found.append(_next_file(secret_file).read_text(encoding="utf-8").strip())
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreError(f"cannot read {_next_file(secret_file)}: {exc.strerror or exc}") from None
        return found

    return candidates


def open_store(config: GatewayConfig, *, create: bool = True) -> ProviderStore:
    """The store of ``config`` (which must have a ``[store]`` section), its secret checked."""
    path = config.store_path()
    if path is None:
        raise ConfigError(
            f'{config.source}: there is no [store] section; add one, e.g. [store] secret = "file:store-secret"'
        )
    dsn = config.store_dsn()
    if dsn is not None:
        from .providers.pgstore import PostgresProviderStore  # the `postgres` extra, only when configured

        store: ProviderStore = PostgresProviderStore(dsn, _source(config))
    else:
        store = ProviderStore(path, _source(config), create=create)
    try:
        key_id = store.check_secret()
        _finish_rotation(config, key_id)
    except BaseException:
        store.close()
        raise
    return store


def _finish_rotation(config: GatewayConfig, key_id: str) -> None:
    """Complete a rotation that a crash interrupted after its commit (the store uses ``.next``).

    A ``.next`` whose key the store does not use is left alone: it may belong to a rotation
    running right now, and it is harmless (tried, it just does not match).
    """
    secret_file = _secret_file(config)
    if secret_file is None or not _next_file(secret_file).exists():
        return
    if key_id == _key_id_of(_next_file(secret_file)):
        try:
            os.replace(_next_file(secret_file), secret_file)
        except FileNotFoundError:
            pass  # the rotating process (or another worker) finished it first


def _key_id_of(path: Path) -> str | None:
    from .providers.crypto import StoreKey

    try:
        return StoreKey(path.read_text(encoding="utf-8")).key_id
    except (OSError, ValueError):
        return None


def rotate_secret(config: GatewayConfig, new_secret: str | None = None) -> tuple[int, str]:
    """Re-encrypt every stored key under a new secret; returns (keys re-encrypted, what to do next).

    ``new_secret`` is a reference (``env:NAME`` / ``file:PATH``); without it the configured
    ``file:`` secret is replaced by a freshly generated one.
    """
    store = open_store(config)
    try:
        if new_secret is not None:
            try:
                value = _resolve(config, new_secret)
            except SecretReferenceError as exc:
                raise StoreError(f"--new-secret: {exc}") from None
            count = store.rotate(value)
            return count, f"now set [store] secret = {new_secret!r} in {config.source} and restart the gateway"
        secret_file = _secret_file(config)
        if secret_file is None:
            raise StoreError(
                "the store secret is an env: reference, which this command cannot change: "
                "give --new-secret env:NAME or --new-secret file:PATH"
            )
        pending = _next_file(secret_file)
        value = secrets.token_urlsafe(32)
        _write_private(pending, value)
        try:
            count = store.rotate(value)
        except BaseException:
            pending.unlink(missing_ok=True)
            raise
        try:
            os.replace(pending, secret_file)
        except FileNotFoundError:
            # A gateway starting meanwhile finished the rename; make sure the result is ours.
            if _key_id_of(secret_file) != store.check_secret():
                _write_private(secret_file, value)
        return count, f"the new secret is in {secret_file}; running gateways pick it up on their own"
    finally:
        store.close()


def _resolve(config: GatewayConfig, reference: str) -> str:
    from .secret import resolve_reference

    if not reference.startswith(("env:", "file:")):
        raise SecretReferenceError("must be a reference, 'env:NAME' or 'file:PATH'")
    return resolve_reference(reference, base_dir=Path(config.base_dir) if config.base_dir else None)


def _write_private(path: Path, value: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def live_routes(config: GatewayConfig, base: RouteTable) -> LiveRouteTable:
    """The gateway's resolver for ``config``'s store; start-time problems become :class:`ConfigError`."""
    assert config.store is not None
    try:
        return LiveRouteTable(
            base,
            open_store(config),
            refresh_interval=config.store.refresh_ms / 1000,
            drop_params=config.translation.drop_params,
        )
    except (StoreError, StoreConflictError) as exc:
        raise ConfigError(f"{config.source}: [store]: {exc}") from None
