"""Routes from the config file and from the provider store, the store part kept current.

Resolution is on every request's path, so the check for store changes is one clock read, and at
most every ``refresh_interval`` seconds one ``PRAGMA data_version`` (a few microseconds, no disk
I/O). Only when another connection committed is the store read again and the table rebuilt; the new
table replaces the old one in a single assignment, so concurrent requests see one or the other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from .kinds import KindError
from .records import ProviderRecord, merge_routes
from .routing import RouteTable
from .store import ProviderStore, Snapshot, StoreError
from .types import Provider, Route

__all__ = ["LiveRouteTable", "StoreConflictError"]

logger = logging.getLogger("asgi_llmroute.providers")


class StoreConflictError(ValueError):
    """Names defined both in the config file and in the store (refused at start)."""


class LiveRouteTable:
    """A :class:`RouteTable` of config-file routes plus the store's, refreshed when the store changes.

    A name in both the config file and the store is a :class:`StoreConflictError` when the table is
    built (at start); if one appears later, the config file's provider or model wins and the clash is
    logged. A record that cannot
    be decrypted is skipped and logged once; the others keep serving. If the store itself becomes
    unreadable, the last good table keeps serving.
    """

    def __init__(
        self,
        base: RouteTable,
        store: ProviderStore,
        *,
        refresh_interval: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        drop_params: bool = False,
    ) -> None:
        self._base = base
        self._drop_params = drop_params  # for records that set none ([translation] drop_params)
        self._store = store
        self._interval = refresh_interval
        self._clock = clock
        self._table = base
        self._version: tuple[int, int] | None = None
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        # The providers made from the store, by name, with the record each was made from: a record that did
        # not change keeps its provider (and with it a token source's cached token) across refreshes.
        self._made: dict[str, tuple[ProviderRecord, Provider]] = {}
        self.refresh(force=True, raise_errors=True)

    @property
    def store(self) -> ProviderStore:
        return self._store

    # -- the RouteResolver protocol and what /v1/models reads ------------------------------------

    def resolve(self, model: str) -> Route | None:
        return self.current().resolve(model)

    @property
    def routes(self) -> Mapping[str, Route]:
        return self.current().routes

    @property
    def providers(self) -> Mapping[str, Provider]:
        return self.current().providers

    def model_names(self) -> list[str]:
        return self.current().model_names()

    def current(self) -> RouteTable:
        """The table to use now (checking the store for changes if it is time to)."""
        if self._clock() >= self._next_check:
            self.refresh()
        return self._table

    # -- refreshing ------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Check the store on the next request (after a write made in this process)."""
        self._next_check = 0.0

    def refresh(self, *, force: bool = False, raise_errors: bool = False) -> None:
        """Re-read the store if it changed (or if ``force``); never blocks behind another refresh."""
        if not self._lock.acquire(blocking=force):
            return
        try:
            self._next_check = self._clock() + self._interval
            version = self._store.data_version(blocking=force)
            if version is None and not force:
                return
            if version == self._version and not force:
                return
            try:
                snapshot = self._store.load()
            except StoreError as exc:
                if raise_errors:
                    raise
                self._report(f"the provider store cannot be read, serving the last good providers: {exc}")
                return
            conflicts = _conflicts(self._base, snapshot.records)
            if conflicts and raise_errors:
                raise StoreConflictError(f"{self._store.path}: " + "; ".join(conflicts))
            self._install(snapshot, conflicts)
            self._version = version
        finally:
            self._lock.release()

    def _install(self, snapshot: Snapshot, conflicts: list[str]) -> None:
        for error in snapshot.errors:
            self._report(f"skipping stored provider: {error}")
        for message in conflicts:
            self._report(f"store vs config file: {message}; the config file's wins")
        records, made = [], {}
        for record in snapshot.records:
            if record.name in self._base.providers:
                continue
            try:
                made[record.name] = self._provider(record)
            except KindError as exc:  # e.g. an extra missing here that the writing process had
                self._report(f"skipping stored provider {record.name!r}: {exc}")
                continue
            records.append(record)
        self._made = {r.name: (r, made[r.name]) for r in records}
        providers = [*self._base.providers.values(), *made.values()]
        routes = [*self._base.routes.values(), *merge_routes(records, taken=list(self._base.routes), providers=made)]
        self._table = RouteTable(providers, routes)

    def _provider(self, record: ProviderRecord) -> Provider:
        known = self._made.get(record.name)
        if known is not None and known[0] == record:
            return known[1]
        return record.provider(self._drop_params)

    def _report(self, message: str) -> None:
        # Logged once per distinct problem: the check runs on the request path.
        if message not in self._reported:
            self._reported.add(message)
            logger.error("%s", message)


def _conflicts(base: RouteTable, records: list[ProviderRecord]) -> list[str]:
    messages = []
    for record in records:
        if record.name in base.providers:
            messages.append(f"'{record.name}' is also a provider in the config file")
            continue
        taken = sorted(m for m in record.models if m in base.routes)
        if taken:
            messages.append(f"'{record.name}' serves model(s) {', '.join(taken)} also defined in the config file")
    return messages
