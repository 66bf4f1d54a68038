"""Per-provider retry policy: a value type the configuration produces and the retry layer applies."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_RETRY_ON", "RetryPolicy"]

#: Request timeout, conflict, rate limited, every 5xx (529 overloaded included).
DEFAULT_RETRY_ON = frozenset({408, 409, 429, *range(500, 600)})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How failures of one provider's deployments are handled.

    ``max_retries``: attempts on a route after each of its deployments has had one (with backoff);
    ``retry_on``: the response statuses worth another attempt (transport failures, which the
    forwarder answers with 502/504, are covered by 5xx); ``cooldown``: seconds a failed deployment
    is left out of rotation while others can serve (0 disables the breaker).
    """

    max_retries: int = 2
    retry_on: frozenset[int] = DEFAULT_RETRY_ON
    cooldown: float = 5.0
