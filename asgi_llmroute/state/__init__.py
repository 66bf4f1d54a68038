"""Runtime state that must be one for the whole gateway: in this process, or shared through Redis.

See :mod:`.base` for what the middlewares ask of it, and docs/scaling.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import DeploymentKey, Lease, RateLimit, Rejection, StateBackend, StateUnavailable, UsageRow
from .memory import InMemoryRateLimitBackend, Limiter, MemoryState

if TYPE_CHECKING:
    from .redis import RedisState

__all__ = [
    "DeploymentKey",
    "InMemoryRateLimitBackend",
    "Lease",
    "Limiter",
    "MemoryState",
    "RateLimit",
    "RedisState",
    "Rejection",
    "StateBackend",
    "StateUnavailable",
    "UsageRow",
]


def __getattr__(name: str) -> Any:
    # RedisState needs the `redis` extra: imported only when asked for.
    if name == "RedisState":
        from .redis import RedisState

        return RedisState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
