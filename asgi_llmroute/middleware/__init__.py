"""The gateway's ASGI middlewares, one per module."""

from .auth import TokenAuthMiddleware, TokenTable
from .limits import ConcurrencyLimitMiddleware
from .observe import ObserveMiddleware, UpstreamErrorsMiddleware
from .ratelimit import InMemoryRateLimitBackend, RateLimit, RateLimitBackend, RateLimitMiddleware
from .resolve import ProviderResolverMiddleware, RouteResolver
from .responses import ResponsesMiddleware
from .retry import Backoff, RetryMiddleware
from .strip import CredentialStripMiddleware
from .translate import TranslationMiddleware
from .usage import UsageMiddleware

__all__ = [
    "Backoff",
    "ConcurrencyLimitMiddleware",
    "CredentialStripMiddleware",
    "InMemoryRateLimitBackend",
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
]
