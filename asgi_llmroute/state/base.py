"""What the middlewares see of runtime state, wherever it lives (this process, or Redis).

A :class:`StateBackend` holds everything that must be one value for the whole gateway when it runs
as several workers or instances: rate-limit windows, concurrency slots, deployment cooldowns,
session affinity, usage totals, and "the provider store changed" notices. The in-memory backend
(:mod:`.memory`) is the embedded default; :mod:`.redis` shares it through one Redis.

Calls on the request path are one round trip at most; notices (cooldowns, sessions, usage) are
queued and written in the background, so a request never waits for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "CooldownListener",
    "DeploymentKey",
    "Lease",
    "RateLimit",
    "Rejection",
    "StateBackend",
    "StateUnavailable",
    "UsageRow",
]

#: A deployment: provider name and upstream model.
DeploymentKey = tuple[str, str]

#: Called with a deployment and the seconds it cools down from now (0: it recovered).
CooldownListener = Callable[[DeploymentKey, float], None]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A router token's (or a deployment's) limits; None is unlimited."""

    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request was refused (``"rpm"`` or ``"tpm"``) and whole seconds until it could pass.

    ``limit`` is ``"unavailable"`` when the shared state is down and limits fail closed.
    """

    limit: str
    retry_after: int


@dataclass(frozen=True, slots=True, order=True)
class UsageRow:
    """Token usage summed per router token, client-facing model and UTC day (``YYYY-MM-DD``)."""

    day: str
    token: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int


class StateUnavailable(Exception):
    """The shared state cannot be reached (``str(error)`` names the server, never a password)."""


class Lease(Protocol):
    """A concurrency slot held by one request; give it back with :meth:`release` (idempotent)."""

    async def release(self) -> None: ...


class StateBackend(Protocol):
    """Runtime state shared by every worker and instance that uses the same backend."""

    #: True when the state is shared beyond this process (the middlewares then ask it, not their own).
    shared: bool
    #: What limits do while a shared backend is unreachable: ``"open"`` (admit), ``"closed"``
    #: (refuse with 503), ``"local"`` (count in this process until it is back).
    when_down: Literal["open", "closed", "local"]

    async def start(self) -> None:
        """Connect and start background work (raises :class:`StateUnavailable` if it cannot)."""

    async def aclose(self) -> None: ...

    # -- rate limits: one call per request, then one to settle ---------------------------------

    async def admit(self, key: str, limit: RateLimit, reserve: int = 0) -> Rejection | None:
        """Count one request of ``key`` (reserving ``reserve`` tokens), or refuse it (not counted)."""

    async def settle(self, key: str, used: int, reserved: int = 0) -> None:
        """Replace the ``reserved`` estimate of a finished request by the ``used`` tokens."""

    # -- concurrency ---------------------------------------------------------------------------

    async def acquire(self, name: str, limit: int, max_wait: float) -> Lease | None:
        """A slot among ``limit`` for ``name``, waiting up to ``max_wait`` seconds; None if none came free."""

    # -- cooldowns and session affinity ---------------------------------------------------------

    def cooldown(self, deployment: DeploymentKey, seconds: float) -> None:
        """Tell every instance that ``deployment`` cools down for ``seconds`` (0: it recovered)."""

    def on_cooldown(self, listener: CooldownListener) -> None:
        """Call ``listener`` for every cooldown another instance reports."""

    async def session(self, route: str, session: str) -> DeploymentKey | None:
        """The deployment a session of ``route`` is kept on, if any instance remembered one."""

    def remember(self, route: str, session: str, deployment: DeploymentKey) -> None: ...

    # -- usage ---------------------------------------------------------------------------------

    def add_usage(self, token: str, model: str, usage: Mapping[str, int]) -> None:
        """Add one finished request's counts to today's totals of ``token`` and ``model``."""

    async def usage(self, day: str | None = None) -> list[UsageRow]:
        """The totals of one UTC day (``YYYY-MM-DD``, default today)."""

    # -- provider store changes ----------------------------------------------------------------

    def store_changed(self) -> None:
        """Tell every instance to re-read the provider store."""

    def on_store_change(self, listener: Callable[[], None]) -> None: ...
