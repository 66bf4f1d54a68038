"""The Balancer alone: strategies, cooldowns, sessions, with a fake clock."""

from __future__ import annotations

from collections import Counter

import pytest

from asgi_llmroute import Balancer, Deployment, Provider, Route
from asgi_llmroute.middleware.resolve import client_traits
from asgi_llmroute.providers.balance import deployment_key

A = Deployment(Provider(name="a", api="openai", base_url="http://a/v1"), "m-a", weight=3)
B = Deployment(Provider(name="b", api="openai", base_url="http://b/v1"), "m-b", weight=1)
C = Deployment(Provider(name="c", api="anthropic", base_url="http://c"), "m-c", weight=1)
ROUTE = Route("m", (A, B))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def picks(balancer: Balancer, route: Route, n: int, **kwargs: object) -> list[str]:
    out = []
    for _ in range(n):
        chosen = balancer.choose(route, **kwargs)  # type: ignore[arg-type]
        assert chosen is not None
        out.append(chosen.provider.name)
    return out


def test_weighted_round_robin_is_smooth_and_exact() -> None:
    assert picks(Balancer(), ROUTE, 8) == ["a", "a", "b", "a"] * 2
    counts = Counter(picks(Balancer(), Route("m", (A, B, C)), 500))
    assert counts == {"a": 300, "b": 100, "c": 100}


def test_single_deployment_needs_no_state() -> None:
    balancer = Balancer()
    assert balancer.choose(Route("x", (B,))) is B
    assert not balancer._stats  # nothing allocated on the common path


def test_cooling_deployments_are_skipped_while_others_are_available() -> None:
    clock = Clock()
    balancer = Balancer(clock=clock)
    balancer.failed(balancer.stats(A), cooldown=5)
    assert balancer.cooling(A)
    assert picks(balancer, ROUTE, 4) == ["b"] * 4
    assert balancer.choose(Route("x", (A,))) is A  # nothing else: still tried
    assert balancer.choose(Route("x", (A,)), allow_cooling=False) is None
    assert balancer.choose(ROUTE, exclude={deployment_key(B)}) is A
    assert balancer.choose(ROUTE, exclude={deployment_key(B)}, allow_cooling=False) is None
    clock.now += 5
    assert not balancer.cooling(A)
    assert set(picks(balancer, ROUTE, 4)) == {"a", "b"}


def test_zero_cooldown_counts_the_failure_only() -> None:
    balancer = Balancer()
    balancer.failed(balancer.stats(A), cooldown=0)
    assert not balancer.cooling(A) and balancer.stats(A).failures == 1
    balancer.succeeded(balancer.stats(A), None)
    assert balancer.stats(A).failures == 0


def test_least_in_flight_per_weight() -> None:
    balancer = Balancer("least_in_flight")
    balancer.stats(A).in_flight = 3  # 3 / weight 3 = 1.0
    balancer.stats(B).in_flight = 2  # 2 / weight 1 = 2.0
    assert picks(balancer, ROUTE, 3) == ["a"] * 3
    balancer.stats(A).in_flight = 9
    assert picks(balancer, ROUTE, 2) == ["b"] * 2
    balancer.stats(A).in_flight = balancer.stats(B).in_flight = 0
    assert set(picks(balancer, ROUTE, 4)) == {"a", "b"}  # ties rotate


def test_lowest_latency_explores_then_prefers_the_fastest() -> None:
    clock = Clock()
    balancer = Balancer("lowest_latency", clock=clock)
    balancer.succeeded(balancer.stats(A), 0.8)
    first = balancer.choose(ROUTE)
    assert first is B  # never measured: tried first
    balancer.succeeded(balancer.stats(B), 0.2)
    assert picks(balancer, ROUTE, 3) == ["b"] * 3
    for _ in range(10):
        balancer.succeeded(balancer.stats(B), 2.0)  # B got slow: the average follows
    assert picks(balancer, ROUTE, 2) == ["a"] * 2
    clock.now += 61  # every sample stale: both worth measuring again
    assert set(picks(balancer, ROUTE, 4)) == {"a", "b"}


def test_sessions_stick_while_healthy_and_are_bounded() -> None:
    clock = Clock()
    balancer = Balancer(clock=clock, max_sessions=2)
    balancer.remember(ROUTE, "s1", B)
    assert picks(balancer, ROUTE, 5, session="s1") == ["b"] * 5
    balancer.failed(balancer.stats(B), cooldown=10)
    assert picks(balancer, ROUTE, 2, session="s1") == ["a"] * 2  # unhealthy: the session moves
    clock.now += 10
    balancer.remember(ROUTE, "s2", A)
    balancer.remember(ROUTE, "s3", A)  # evicts s1, the least recently used
    assert ("m", "s1") not in balancer._sessions and len(balancer._sessions) == 2


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        Balancer("random")  # type: ignore[arg-type]


def test_route_state_resets_when_the_route_changes() -> None:
    balancer = Balancer()
    picks(balancer, ROUTE, 3)
    assert picks(balancer, Route("m", (B, C)), 2) == ["b", "c"]


@pytest.mark.parametrize(
    ("headers", "litellm", "session"),
    [
        ([], False, None),
        ([(b"user-agent", b"litellm/1.61.0")], True, None),
        ([(b"user-agent", b"LiteLLM/1.0")], True, None),
        ([(b"user-agent", b"python-httpx/0.27")], False, None),
        ([(b"x-litellm-call-id", b"abc")], True, None),
        ([(b"x-litellm-session-id", b" s1 ")], True, "s1"),
        ([(b"x-llmroute-session-id", b"ours")], False, "ours"),
        ([(b"x-litellm-session-id", b"theirs"), (b"x-llmroute-session-id", b"ours")], True, "ours"),
        ([(b"x-llmroute-session-id", b"ours"), (b"x-litellm-session-id", b"theirs")], True, "ours"),
        ([(b"x-llmroute-session-id", b"  ")], False, None),
    ],
)
def test_client_traits(headers: list[tuple[bytes, bytes]], litellm: bool, session: str | None) -> None:
    traits = client_traits(headers)
    if not litellm and session is None:
        assert traits is None
    else:
        assert traits is not None and (traits.litellm, traits.session_id) == (litellm, session)


def test_scores_are_bounded() -> None:
    balancer = Balancer(max_deployments=3)
    provider = Provider(name="p", api="openai", base_url="http://p/v1")
    held = balancer.stats(Deployment(provider, "m0"))
    held.in_flight += 1
    for i in range(1, 10):
        balancer.stats(Deployment(provider, f"m{i}"))
    assert len(balancer._stats) == 3
    held.in_flight -= 1  # a request in flight still holds its own scores
    assert held.in_flight == 0
