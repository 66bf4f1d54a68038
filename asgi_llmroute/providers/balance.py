"""Load balancing across a route's deployments, with health (cooldowns) and session affinity.

One :class:`Balancer` per gateway holds all the state: round-robin weights per route, requests in
flight, a latency average and a cooldown per deployment, and the session -> deployment map. It is
per process: with several workers, each has its own view, unless it is given a shared ``state``
(Redis, docs/scaling.md): then cooldowns and recoveries are told to every instance, and sessions are
remembered for all of them. Everything runs on one event loop, so no locks are needed (every update
happens between two awaits).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

from .types import Deployment, Route

if TYPE_CHECKING:
    from ..state import StateBackend

__all__ = ["STRATEGIES", "Balancer", "DeploymentStats", "Key", "Strategy", "deployment_key"]

Strategy = Literal["weighted", "least_in_flight", "lowest_latency"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)

#: Deployments are told apart by provider name and upstream model (cheap to hash, stable across
#: route table rebuilds).
Key = tuple[str, str]

_EWMA_ALPHA = 0.3  # weight of the newest latency sample
_LATENCY_TTL = 60.0  # seconds after which a latency sample no longer counts (so slow ones get re-measured)


def deployment_key(deployment: Deployment) -> Key:
    return (deployment.provider.name, deployment.model)


@dataclass(slots=True)
class DeploymentStats:
    """What the balancer knows about one deployment."""

    in_flight: int = 0
    latency: float | None = None  # exponentially weighted average, seconds to the first byte
    measured_at: float = 0.0
    cooldown_until: float = 0.0
    failures: int = 0  # consecutive
    key: Key = ("", "")  # the deployment's (provider, model)


@dataclass(slots=True)
class _RouteState:
    deployments: tuple[Deployment, ...]
    current: dict[Key, float] = field(default_factory=dict)  # smooth weighted round robin
    turn: int = 0  # rotates ties for the other strategies


class Balancer:
    """Choose a deployment for a route and keep score of how deployments behave.

    - ``strategy``: ``"weighted"`` (smooth weighted round robin, nginx-style: with weights 3 and 1,
      every four requests go A A B A), ``"least_in_flight"`` (fewest requests in flight per unit
      of weight) or ``"lowest_latency"`` (lowest recent time to first byte; unmeasured or stale
      deployments are tried first).
    - Deployments cooling down after a failure are left out while any other is available.
    - A session id (``x-llmroute-session-id``, ``x-litellm-session-id``) keeps its deployment while
      that deployment is not cooling down; up to ``max_sessions`` sessions are remembered (LRU).
    - Scores are kept for up to ``max_deployments`` deployments (oldest forgotten first).
    """

    def __init__(
        self,
        strategy: Strategy = "weighted",
        *,
        max_sessions: int = 10_000,
        max_deployments: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        state: StateBackend | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self._clock = clock
        self._stats: dict[Key, DeploymentStats] = {}
        self._routes: dict[str, _RouteState] = {}
        self._sessions: OrderedDict[tuple[str, str], Key] = OrderedDict()
        self._max_sessions = max_sessions
        self._max_stats = max_deployments
        self._state = state if state is not None and state.shared else None
        if self._state is not None:
            self._state.on_cooldown(self._remote_cooldown)

    @property
    def shared(self) -> bool:
        """Cooldowns and sessions are shared with other instances."""
        return self._state is not None

    # -- scores ----------------------------------------------------------------------------------

    def stats(self, deployment: Deployment) -> DeploymentStats:
        key = (deployment.provider.name, deployment.model)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = DeploymentStats(key=key)
            if len(self._stats) > self._max_stats:
                # Clients can name any "<provider>/<model>": forget the oldest rather than grow without
                # bound (a request in flight keeps its own reference, so its counts stay right).
                del self._stats[next(iter(self._stats))]
        return stats

    def cooling(self, deployment: Deployment) -> bool:
        stats = self._stats.get((deployment.provider.name, deployment.model))
        return stats is not None and stats.cooldown_until > self._clock()

    def succeeded(self, stats: DeploymentStats, latency: float | None) -> None:
        """A response was committed from the deployment (``latency``: seconds to its first byte)."""
        if stats.failures:
            stats.failures = 0
            if stats.cooldown_until and self._state is not None:
                self._state.cooldown(stats.key, 0.0)
            stats.cooldown_until = 0.0  # a success ends the cooldown at once (half-open breaker)
        if latency is not None and self.strategy == "lowest_latency":
            now = self._clock()
            old = stats.latency
            fresh = old is not None and now - stats.measured_at < _LATENCY_TTL
            stats.latency = latency if not fresh or old is None else old + _EWMA_ALPHA * (latency - old)
            stats.measured_at = now

    def failed(self, stats: DeploymentStats, cooldown: float) -> None:
        """The deployment failed; keep it out of rotation for ``cooldown`` seconds (0: not at all)."""
        stats.failures += 1
        if cooldown > 0:
            stats.cooldown_until = max(stats.cooldown_until, self._clock() + cooldown)
            if self._state is not None:
                self._state.cooldown(stats.key, cooldown)

    def _remote_cooldown(self, key: Key, seconds: float) -> None:
        """Another instance saw ``key`` fail (``seconds`` > 0) or recover (0)."""
        stats = self._stats.get(key)
        if stats is None:
            if seconds <= 0:
                return
            stats = self._stats[key] = DeploymentStats(key=key)
            if len(self._stats) > self._max_stats:
                del self._stats[next(iter(self._stats))]
        if seconds > 0:
            stats.failures = max(stats.failures, 1)
            stats.cooldown_until = max(stats.cooldown_until, self._clock() + seconds)
        else:
            stats.failures = 0
            stats.cooldown_until = 0.0

    # -- sessions --------------------------------------------------------------------------------

    def remember(self, route: Route, session: str, deployment: Deployment) -> None:
        """Keep ``session`` on ``deployment`` for later requests to ``route``."""
        self._remember(route.name, session, deployment_key(deployment))
        if self._state is not None:
            self._state.remember(route.name, session, deployment_key(deployment))

    def _remember(self, route: str, session: str, deployment: Key) -> None:
        key = (route, session)
        self._sessions[key] = deployment
        self._sessions.move_to_end(key)
        if len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)

    async def load_session(self, route: Route, session: str) -> None:
        """Learn which deployment another instance keeps ``session`` on (shared state only)."""
        if self._state is None or len(route.deployments) < 2:
            return
        found = await self._state.session(route.name, session)
        if found is not None:
            self._remember(route.name, session, found)

    # -- choice ----------------------------------------------------------------------------------

    def choose(
        self,
        route: Route,
        *,
        exclude: Collection[Key] = (),
        session: str | None = None,
        allow_cooling: bool = True,
    ) -> Deployment | None:
        """The deployment to try next, or None when every one is excluded.

        Deployments in ``exclude`` are never chosen; cooling ones only when nothing else is left and
        ``allow_cooling`` is true.
        """
        deployments = route.deployments
        if len(deployments) == 1 and not exclude:  # the common case: nothing to weigh
            only = deployments[0]
            return only if allow_cooling or not self.cooling(only) else None
        now = self._clock()
        candidates: list[Deployment] = []
        cooling: list[Deployment] = []
        for d in deployments:
            key = (d.provider.name, d.model)
            if key in exclude:
                continue
            stats = self._stats.get(key)
            (cooling if stats is not None and stats.cooldown_until > now else candidates).append(d)
        if not candidates:
            if not allow_cooling or not cooling:
                return None
            candidates = cooling
        if len(candidates) == 1:
            return candidates[0]
        if session is not None:
            wanted = self._sessions.get((route.name, session))
            for d in candidates:
                if (d.provider.name, d.model) == wanted:
                    return d
        state = self._route_state(route)
        if self.strategy == "weighted":
            return _smooth_weighted(state, candidates)
        state.turn += 1
        if self.strategy == "least_in_flight":
            return _lowest(candidates, state.turn, lambda d: self.stats(d).in_flight / d.weight)
        return _lowest(candidates, state.turn, lambda d: self._latency(d, now))

    def _latency(self, deployment: Deployment, now: float) -> float:
        stats = self.stats(deployment)
        if stats.latency is None or now - stats.measured_at >= _LATENCY_TTL:
            return 0.0  # unmeasured or stale: worth a try
        return stats.latency

    def _route_state(self, route: Route) -> _RouteState:
        state = self._routes.get(route.name)
        if state is None or state.deployments != route.deployments:
            state = self._routes[route.name] = _RouteState(route.deployments)
        return state


def _smooth_weighted(state: _RouteState, candidates: Sequence[Deployment]) -> Deployment:
    # nginx's smooth weighted round robin: each turn every candidate gains its weight, the richest
    # wins and pays the total. Spreads picks evenly (A A B A, not A A A B).
    current = state.current
    total = 0.0
    best: Deployment | None = None
    best_score = 0.0
    for d in candidates:
        key = (d.provider.name, d.model)
        score = current.get(key, 0.0) + d.weight
        current[key] = score
        total += d.weight
        if best is None or score > best_score:
            best, best_score = d, score
    assert best is not None
    current[(best.provider.name, best.model)] = best_score - total
    return best


def _lowest(candidates: Sequence[Deployment], turn: int, score: Callable[[Deployment], float]) -> Deployment:
    # Ties are broken by rotating the starting point, so equal deployments share the load.
    n = len(candidates)
    start = turn % n
    best = candidates[start]
    best_score = score(best)
    for i in range(1, n):
        d = candidates[(start + i) % n]
        s = score(d)
        if s < best_score:
            best, best_score = d, s
    return best
