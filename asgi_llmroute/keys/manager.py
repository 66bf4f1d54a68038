"""The live side of virtual keys: a cached key table, budgets, and spend written in batches.

Authentication looks keys up in memory (an HMAC and a dict probe); the table is re-read from the store
when another process changed it, at most ``refresh`` seconds after the change (and before any lookup
made ``2 * refresh`` seconds after the last read, so an idle worker never serves a revoked key). A
virtual-key secret the table does not know makes the lookup ask the store whether anything changed
(one cheap query), so a key created through another process works at once everywhere.

Spend is recorded in memory when a request ends and written every ``flush`` seconds, in a thread,
priced there (pricing is slow); totals per key, team and day are then re-read from the store, so
several workers (each with its own batch) see each other's spend within one flush. Budgets are
checked before the upstream call against those totals: requests already in flight, and spend not
yet flushed, can overshoot a budget (by at most what they cost); a stream is never cut for its budget.

When the store cannot be reached (PostgreSQL lost), the last table read keeps serving: its keys keep
working and their budgets are judged on the last totals read; spend stays in memory and is written
when the store is back. One line is logged when the store is lost and one when it is back, never a
traceback; a lookup retries the store at most once per ``2 * refresh`` meanwhile. A process that never
read the table answers virtual keys 503 ``store_unavailable`` until it can.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone

import anyio

from ..context import Principal
from ..errors import GatewayError
from ..providers.store import StoreError
from .model import KEY_PREFIX, VirtualKey, budget_window
from .pricing import PriceTable
from .store import KeyStore, KeyTable, SpendRow

__all__ = ["KeyManager", "TeamBudget"]

logger = logging.getLogger("asgi_llmroute.keys")

#: Called for each priced batch: key name, team, model, cost in USD.
SpendCallback = Callable[[str, "str | None", str, float], None]


@dataclass(frozen=True, slots=True)
class TeamBudget:
    """A team's budget in USD per period (``daily``, ``weekly``, ``monthly``, ``"Nd"`` or None)."""

    budget: float
    period: str | None = "monthly"


@dataclass(slots=True)
class _Pending:
    key_id: str
    team: str | None
    model: str
    upstream_model: str | None
    provider: str | None
    ended: float  # POSIX time
    usage: Mapping[str, int]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class KeyManager:
    """Virtual keys for one gateway process (see the module docstring)."""

    def __init__(
        self,
        store: KeyStore,
        prices: PriceTable | None = None,
        *,
        teams: Mapping[str, TeamBudget] | None = None,
        refresh: float = 2.0,
        flush: float = 1.0,
        clock: Callable[[], datetime] = _utcnow,
        on_spend: SpendCallback | None = None,
    ) -> None:
        self.store = store
        self.prices = prices if prices is not None else PriceTable()
        self.teams = dict(teams or {})
        self.refresh = refresh
        self.flush_interval = flush
        self.clock = clock
        self.on_spend = on_spend
        self._table: KeyTable | None = None
        self._by_id: dict[str, VirtualKey] = {}
        self._digests: dict[bytes, bytes] = {}
        self._principals: dict[str, Principal] = {}
        self._version: object = None
        self._loaded = 0.0  # monotonic time of the last read of the table
        self._spent: dict[str, dict[date, float]] = {}  # key id -> day -> USD (flushed, every process)
        self._team_spent: dict[str, dict[date, float]] = {}
        self._pending: list[_Pending] = []
        # Budget verdicts per key id, worked out once per table read (the day can only have changed then).
        self._verdicts: dict[str, GatewayError | None] = {}
        self._verdict_day = 0  # the UTC day (days since 1970) the verdicts are for
        self._lock = threading.Lock()  # the maintenance thread and the loop share the fields above
        self._busy = False
        self._last_maintenance = 0.0
        # Spend is written every `flush` seconds by a thread of its own (started by the first record),
        # so the last requests before a quiet spell are not left unwritten until the next one.
        self._flush_lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        self._lost = False  # the store could not be reached at the last try (logged once)

    # -- lookup ----------------------------------------------------------------------------------

    def principal(self, secret: str) -> Principal | None:
        """The principal of a virtual key's secret, or None (unknown, revoked or expired)."""
        if not secret.startswith(KEY_PREFIX):
            return None
        table = self._current_table()
        digest = table.digest(secret)
        stored = self._digests.get(digest)
        if stored is None and self._changed():
            # A key created moments ago by another process: the store moved, so read it now.
            self._reload_or_keep(force=True)
            table = self._current_table()
            stored = self._digests.get(digest)
        if stored is None or not hmac.compare_digest(stored, digest):
            return None
        key = table.keys[stored]
        if key.expires_at is not None and key.expired(self.clock()):
            return None
        principal = self._principals.get(key.id)
        if principal is None:
            principal = Principal(
                name=key.name,
                models=key.models,
                key_id=key.id,
                team=key.team,
                rpm=key.rpm,
                tpm=key.tpm,
                max_in_flight=key.max_in_flight,
            )
            self._principals[key.id] = principal
        return principal

    def _changed(self) -> bool:
        """Whether the store changed since the table was read (False when that cannot be told at once)."""
        version = self.store.store.data_version(blocking=False)
        return version is not None and version != self._version

    def invalidate(self) -> None:
        """Re-read the keys at the next lookup (this process changed them)."""
        self._version = None
        self._loaded = 0.0

    def key(self, key_id: str) -> VirtualKey | None:
        return self._by_id.get(key_id)

    def _current_table(self) -> KeyTable:
        table = self._table
        if table is None or time.monotonic() - self._loaded > 2 * self.refresh:
            if table is not None or not self._lost or time.monotonic() - self._loaded > 2 * self.refresh:
                self._reload_or_keep(force=table is None)  # (never read, and the store lost just now: not yet)
                table = self._table
            if table is None:
                raise GatewayError(
                    503,
                    "Virtual keys cannot be checked: the key store is unavailable; try again later.",
                    type="server_error",
                    code="store_unavailable",
                )
        return table

    def _reload_or_keep(self, *, force: bool) -> None:
        """Re-read the table on the request path; if the store is lost, keep the last one for now."""
        try:
            self._reload(force=force)
        except StoreError as exc:
            self._store_lost(exc)
            self._loaded = time.monotonic()  # the next try in 2 x refresh, not in every request

    def _store_lost(self, exc: StoreError) -> None:
        if not self._lost:
            self._lost = True
            logger.error(
                "virtual keys: the key store is unavailable (%s); serving the keys last read, spend kept in memory",
                exc,
            )

    def _store_back(self) -> None:
        if self._lost:
            self._lost = False
            logger.warning("virtual keys: the key store is reachable again; spend written, keys re-read")

    def _reload(self, *, force: bool = False) -> None:
        version = self.store.store.data_version(blocking=True)
        if not force and version is not None and version == self._version:
            self._loaded = time.monotonic()
            self._verdicts = {}  # a new day may have begun
            return
        table = self.store.table()
        spent, team_spent = self._read_spend()
        with self._lock:
            self._table = table
            self._by_id = {key.id: key for key in table.keys.values()}
            self._digests = {digest: digest for digest in table.keys}
            self._principals = {}
            self._spent, self._team_spent = spent, team_spent
            self._verdicts = {}
            self._version = self.store.store.data_version(blocking=True)
            self._loaded = time.monotonic()

    def _read_spend(self) -> tuple[dict[str, dict[date, float]], dict[str, dict[date, float]]]:
        spent: dict[str, dict[date, float]] = {}
        team_spent: dict[str, dict[date, float]] = {}
        for key_id, team, _model, day, cost in self.store.daily_spend():
            days = spent.setdefault(key_id, {})
            days[day] = days.get(day, 0.0) + cost
            if team is not None:
                team_days = team_spent.setdefault(team, {})
                team_days[day] = team_days.get(day, 0.0) + cost
        return spent, team_spent

    # -- budgets ---------------------------------------------------------------------------------

    def spent(self, key: VirtualKey, now: datetime | None = None) -> tuple[float, date | None]:
        """USD spent by ``key`` in its current budget period, and the day the period resets."""
        today = (now or self.clock()).astimezone(timezone.utc).date()
        start, reset = budget_window(key.budget_period, key.created_at.astimezone(timezone.utc).date(), today)
        days = self._spent.get(key.id, {})
        return sum(cost for day, cost in days.items() if day >= start), reset

    def refusal(self, principal: Principal) -> GatewayError | None:
        """Why a request of ``principal`` may not go upstream (a budget is used up), or None."""
        key_id = principal.key_id or ""
        day = int(time.time() if self.clock is _utcnow else self.clock().timestamp()) // 86400
        if day != self._verdict_day:
            self._verdicts, self._verdict_day = {}, day
        try:
            return self._verdicts[key_id]
        except KeyError:
            verdict = self._verdicts[key_id] = self._judge(key_id)
            return verdict

    def _judge(self, key_id: str) -> GatewayError | None:
        key = self._by_id.get(key_id)
        if key is None:
            return None
        now = self.clock()
        if key.budget is not None:
            spent, reset = self.spent(key, now)
            if spent >= key.budget:
                return _budget_error(f"key {key.name!r}", spent, key.budget, key.budget_period, reset)
        team = self.teams.get(key.team or "")
        if team is not None:
            today = now.astimezone(timezone.utc).date()
            start, reset = budget_window(team.period, date(1970, 1, 1), today)
            spent = sum(c for day, c in self._team_spent.get(key.team or "", {}).items() if day >= start)
            if spent >= team.budget:
                return _budget_error(f"team {key.team!r}", spent, team.budget, team.period, reset)
        return None

    # -- spend -----------------------------------------------------------------------------------

    def record(
        self,
        principal: Principal,
        model: str,
        usage: Mapping[str, int],
        *,
        upstream_model: str | None = None,
        provider: str | None = None,
    ) -> None:
        """Note a finished request's usage (priced and written at the next flush)."""
        if principal.key_id is None or not usage:
            return
        # A list append is atomic; flush swaps the list before reading it, so nothing is lost.
        ended = time.time() if self.clock is _utcnow else self.clock().timestamp()
        self._pending.append(_Pending(principal.key_id, principal.team, model, upstream_model, provider, ended, usage))
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, name="llmroute-spend", daemon=True)
            self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                if self._pending:
                    self.flush()
                else:
                    with self._flush_lock:
                        self._reload()  # other processes' spend and key changes, when the store moved
                        self._store_back()
            except StoreError as exc:
                self._store_lost(exc)
            except Exception:
                logger.exception("virtual keys: writing spend or reading keys failed; will retry")

    async def maintain(self) -> None:
        """Flush spend and re-read the table if due; one caller at a time, the others return at once."""
        now = time.monotonic()
        if self._busy or now - self._last_maintenance < min(self.flush_interval, self.refresh):
            return
        self._busy = True
        self._last_maintenance = now
        try:
            await anyio.to_thread.run_sync(self.flush)
        except StoreError as exc:
            self._store_lost(exc)
        except Exception:
            logger.exception("virtual keys: writing spend or reading keys failed; will retry")
        finally:
            self._busy = False

    def flush(self) -> None:
        """Price and write the pending spend, then re-read keys and totals (blocking)."""
        with self._flush_lock:
            self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        rows: dict[tuple[str, str, date], SpendRow] = {}
        for item in pending:
            cost = self.prices.cost(item.usage, item.model, item.upstream_model, item.provider)
            key_name = self._by_id[item.key_id].name if item.key_id in self._by_id else item.key_id
            if self.on_spend is not None:
                self.on_spend(key_name, item.team, item.model, cost)
            day = datetime.fromtimestamp(item.ended, timezone.utc).date()
            slot = (item.key_id, item.model, day)
            before = rows.get(slot)
            tokens = dict(item.usage)
            if before is not None:
                for name, count in (before.tokens or {}).items():
                    tokens[name] = tokens.get(name, 0) + count
                cost += before.cost
            rows[slot] = SpendRow(
                item.key_id, item.team, item.model, day, cost, (before.requests + 1) if before else 1, tokens
            )
        try:
            self.store.add_spend(rows.values())
        except BaseException:
            self._pending[:0] = pending  # written next time
            raise
        self._store_back()  # the spend is written: the store is back, whatever the re-read finds
        self._reload(force=bool(rows))

    def close(self) -> None:
        """Write what is pending (on shutdown) and stop the flushing thread."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=10)
        try:
            self.flush()
        except StoreError as exc:
            logger.error("virtual keys: spend could not be written on shutdown: %s", exc)
        except Exception:
            logger.exception("virtual keys: spend could not be written on shutdown")

    def __len__(self) -> int:
        return len(self._by_id)


def _budget_error(who: str, spent: float, budget: float, period: str | None, reset: date | None) -> GatewayError:
    when = f"it resets on {reset.isoformat()} 00:00 UTC" if reset is not None else "it does not reset"
    span = (
        f"this {period} period"
        if period in ("daily", "weekly", "monthly")
        else (f"this {period} period" if period else "in all")
    )
    return GatewayError(
        400,
        f"Budget exceeded for {who}: ${spent:.4f} spent of ${budget:.2f} {span}; {when}.",
        type="budget_exceeded",
        code="budget_exceeded",
    )
