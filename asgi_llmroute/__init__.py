"""asgi-llmroute: composable ASGI middlewares for LLM gateways.

The request path, one middleware each::

    client -> TokenAuthMiddleware -> ProviderResolverMiddleware -> CredentialStripMiddleware
           -> TranslationMiddleware -> Forwarder -> upstream

``build_gateway(config)`` assembles the standard stack; every piece also works alone.
"""

from .__about__ import __version__
from .admin import ProviderAdminApp
from .config import ConfigError, GatewayConfig, load_config
from .context import SCOPE_KEY, ClientAPI, Principal, RequestContext, ensure_context, get_context
from .errors import GatewayError, UpstreamError
from .forward import Forwarder, UpstreamTimeouts
from .gateway import Gateway, build_gateway
from .metrics import GatewayMetrics, MetricsEndpoint
from .middleware import (
    Backoff,
    ConcurrencyLimitMiddleware,
    CredentialStripMiddleware,
    InMemoryRateLimitBackend,
    ObserveMiddleware,
    ProviderResolverMiddleware,
    RateLimit,
    RateLimitBackend,
    RateLimitMiddleware,
    ResponsesMiddleware,
    RetryMiddleware,
    RetryPolicy,
    TokenAuthMiddleware,
    TokenEntry,
    TokenTable,
    TranslationMiddleware,
    UpstreamErrorsMiddleware,
    UsageMiddleware,
)
from .providers import Deployment, Provider, Route, RouteTable
from .providers.balance import Balancer
from .providers.live import LiveRouteTable
from .providers.records import ProviderRecord
from .providers.store import ProviderStore, StoreError
from .secrets import Secret

__all__ = [
    "SCOPE_KEY",
    "Backoff",
    "Balancer",
    "ClientAPI",
    "ConcurrencyLimitMiddleware",
    "ConfigError",
    "CredentialStripMiddleware",
    "Deployment",
    "Forwarder",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "GatewayMetrics",
    "InMemoryRateLimitBackend",
    "LiveRouteTable",
    "MetricsEndpoint",
    "ObserveMiddleware",
    "Principal",
    "Provider",
    "ProviderAdminApp",
    "ProviderRecord",
    "ProviderResolverMiddleware",
    "ProviderStore",
    "RateLimit",
    "RateLimitBackend",
    "RateLimitMiddleware",
    "RequestContext",
    "ResponsesMiddleware",
    "RetryMiddleware",
    "RetryPolicy",
    "Route",
    "RouteTable",
    "Secret",
    "StoreError",
    "TokenAuthMiddleware",
    "TokenEntry",
    "TokenTable",
    "TranslationMiddleware",
    "UpstreamError",
    "UpstreamErrorsMiddleware",
    "UpstreamTimeouts",
    "UsageMiddleware",
    "__version__",
    "build_gateway",
    "ensure_context",
    "get_context",
    "load_config",
]
