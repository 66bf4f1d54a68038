"""The gateway's ASGI middlewares, one per module (imported when first used)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..deferred import lazy_exports

if TYPE_CHECKING:
    from .auth import TokenAuthMiddleware, TokenTable
    from .limits import ConcurrencyLimitMiddleware
    from .model_name import ModelNameMiddleware
    from .observe import ObserveMiddleware, UpstreamErrorsMiddleware
    from .ratelimit import InMemoryRateLimitBackend, RateLimit, RateLimitBackend, RateLimitMiddleware
    from .resolve import ProviderResolverMiddleware, RouteResolver
    from .responses import ResponsesMiddleware
    from .retry import Backoff, RetryMiddleware
    from .strip import CredentialStripMiddleware
    from .totals import UsageTotalsMiddleware
    from .translate import TranslationMiddleware
    from .usage import UsageMiddleware

_EXPORTS = {
    "TokenAuthMiddleware": "auth",
    "TokenTable": "auth",
    "ConcurrencyLimitMiddleware": "limits",
    "ModelNameMiddleware": "model_name",
    "ObserveMiddleware": "observe",
    "UpstreamErrorsMiddleware": "observe",
    "InMemoryRateLimitBackend": "ratelimit",
    "RateLimit": "ratelimit",
    "RateLimitBackend": "ratelimit",
    "RateLimitMiddleware": "ratelimit",
    "ProviderResolverMiddleware": "resolve",
    "RouteResolver": "resolve",
    "ResponsesMiddleware": "responses",
    "Backoff": "retry",
    "RetryMiddleware": "retry",
    "CredentialStripMiddleware": "strip",
    "TranslationMiddleware": "translate",
    "UsageMiddleware": "usage",
    "UsageTotalsMiddleware": "totals",
}

__all__ = [
    "Backoff",
    "ConcurrencyLimitMiddleware",
    "CredentialStripMiddleware",
    "InMemoryRateLimitBackend",
    "ModelNameMiddleware",
    "ObserveMiddleware",
    "ProviderResolverMiddleware",
    "RateLimit",
    "RateLimitBackend",
    "RateLimitMiddleware",
    "ResponsesMiddleware",
    "RetryMiddleware",
    "RouteResolver",
    "TokenAuthMiddleware",
    "TokenTable",
    "TranslationMiddleware",
    "UpstreamErrorsMiddleware",
    "UsageMiddleware",
    "UsageTotalsMiddleware",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
