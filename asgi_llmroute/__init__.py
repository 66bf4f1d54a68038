"""asgi-llmroute: composable ASGI middlewares for LLM gateways.

The request path, one middleware each::

    client -> TokenAuthMiddleware -> ProviderResolverMiddleware -> CredentialStripMiddleware
           -> TranslationMiddleware -> Forwarder -> upstream

``build_gateway(config)`` assembles the standard stack; every piece also works alone.

The public API is what this module exports (``__all__``, pinned by ``tests/test_exports.py``) plus
the pure translation core, :mod:`asgi_llmroute.formats`. Names are imported on first use (PEP 562),
so ``import asgi_llmroute.formats`` or one middleware loads only what it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .__about__ import __version__
from .deferred import lazy_exports

if TYPE_CHECKING:
    from .admin import ProviderAdminApp, UsageAdminApp
    from .config import ConfigError, GatewayConfig, load_config, parse_config
    from .context import (
        SCOPE_KEY,
        ClientAPI,
        Principal,
        RequestContext,
        ensure_context,
        get_context,
        receive_body,
        receive_json,
    )
    from .demo import DEMO_BASE_URL, DemoProvider
    from .errors import GatewayError, UpstreamError, send_error
    from .forward import Forwarder, pooled_client
    from .gateway import Gateway, build_gateway
    from .metrics import GatewayMetrics, MetricsEndpoint
    from .middleware.auth import TokenAuthMiddleware, TokenTable
    from .middleware.limits import ConcurrencyLimitMiddleware
    from .middleware.model_name import ModelNameMiddleware
    from .middleware.observe import ObserveMiddleware, UpstreamErrorsMiddleware, credential_matcher
    from .middleware.ratelimit import InMemoryRateLimitBackend, RateLimit, RateLimitBackend, RateLimitMiddleware
    from .middleware.resolve import ProviderResolverMiddleware
    from .middleware.responses import ResponsesMiddleware
    from .middleware.retry import Backoff, RetryMiddleware
    from .middleware.strip import CredentialStripMiddleware
    from .middleware.totals import UsageTotalsMiddleware
    from .middleware.translate import TranslationMiddleware
    from .middleware.usage import UsageMiddleware
    from .providers.auth import Authenticator, AuthError, RequestSigner, TokenSource
    from .providers.balance import Balancer
    from .providers.kinds import KindError, ProviderKind, WireFormat, get_kind, register_kind, register_wire
    from .providers.live import LiveRouteTable
    from .providers.pgstore import PostgresProviderStore
    from .providers.records import ProviderRecord, ProviderSpec
    from .providers.routing import RouteTable
    from .providers.store import ProviderStore, StoreError
    from .providers.types import Deployment, Provider, Route, make_provider
    from .retry_policy import RetryPolicy
    from .secret import Secret
    from .state import MemoryState, StateBackend, StateUnavailable
    from .state.redis import RedisState
    from .timeouts import UpstreamTimeouts
    from .tokens import TokenEntry

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "ProviderAdminApp": "admin",
    "UsageAdminApp": "admin",
    "ConfigError": "config",
    "GatewayConfig": "config",
    "load_config": "config",
    "parse_config": "config",
    "SCOPE_KEY": "context",
    "ClientAPI": "context",
    "Principal": "context",
    "RequestContext": "context",
    "ensure_context": "context",
    "get_context": "context",
    "receive_body": "context",
    "receive_json": "context",
    "DEMO_BASE_URL": "demo",
    "DemoProvider": "demo",
    "GatewayError": "errors",
    "UpstreamError": "errors",
    "send_error": "errors",
    "Forwarder": "forward",
    "pooled_client": "forward",
    "Gateway": "gateway",
    "build_gateway": "gateway",
    "GatewayMetrics": "metrics",
    "MetricsEndpoint": "metrics",
    "TokenAuthMiddleware": "middleware.auth",
    "TokenTable": "middleware.auth",
    "ConcurrencyLimitMiddleware": "middleware.limits",
    "ObserveMiddleware": "middleware.observe",
    "UpstreamErrorsMiddleware": "middleware.observe",
    "credential_matcher": "middleware.observe",
    "InMemoryRateLimitBackend": "middleware.ratelimit",
    "RateLimit": "middleware.ratelimit",
    "RateLimitBackend": "middleware.ratelimit",
    "RateLimitMiddleware": "middleware.ratelimit",
    "ProviderResolverMiddleware": "middleware.resolve",
    "ResponsesMiddleware": "middleware.responses",
    "Backoff": "middleware.retry",
    "RetryMiddleware": "middleware.retry",
    "CredentialStripMiddleware": "middleware.strip",
    "ModelNameMiddleware": "middleware.model_name",
    "TranslationMiddleware": "middleware.translate",
    "UsageMiddleware": "middleware.usage",
    "UsageTotalsMiddleware": "middleware.totals",
    "Authenticator": "providers.auth",
    "AuthError": "providers.auth",
    "RequestSigner": "providers.auth",
    "TokenSource": "providers.auth",
    "Balancer": "providers.balance",
    "KindError": "providers.kinds",
    "ProviderKind": "providers.kinds",
    "WireFormat": "providers.kinds",
    "get_kind": "providers.kinds",
    "register_kind": "providers.kinds",
    "register_wire": "providers.kinds",
    "LiveRouteTable": "providers.live",
    "PostgresProviderStore": "providers.pgstore",
    "ProviderRecord": "providers.records",
    "ProviderSpec": "providers.records",
    "RouteTable": "providers.routing",
    "ProviderStore": "providers.store",
    "StoreError": "providers.store",
    "Deployment": "providers.types",
    "Provider": "providers.types",
    "Route": "providers.types",
    "make_provider": "providers.types",
    "RetryPolicy": "retry_policy",
    "Secret": "secret",
    "MemoryState": "state",
    "StateBackend": "state",
    "StateUnavailable": "state",
    "RedisState": "state.redis",
    "UpstreamTimeouts": "timeouts",
    "TokenEntry": "tokens",
}

__all__ = [
    "AuthError",
    "Authenticator",
    "Backoff",
    "Balancer",
    "ClientAPI",
    "ConcurrencyLimitMiddleware",
    "ConfigError",
    "CredentialStripMiddleware",
    "DEMO_BASE_URL",
    "DemoProvider",
    "Deployment",
    "Forwarder",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "GatewayMetrics",
    "InMemoryRateLimitBackend",
    "KindError",
    "LiveRouteTable",
    "MemoryState",
    "MetricsEndpoint",
    "ModelNameMiddleware",
    "ObserveMiddleware",
    "PostgresProviderStore",
    "Principal",
    "Provider",
    "ProviderAdminApp",
    "ProviderKind",
    "ProviderRecord",
    "ProviderResolverMiddleware",
    "ProviderSpec",
    "ProviderStore",
    "RateLimit",
    "RateLimitBackend",
    "RateLimitMiddleware",
    "RedisState",
    "RequestContext",
    "RequestSigner",
    "ResponsesMiddleware",
    "RetryMiddleware",
    "RetryPolicy",
    "Route",
    "RouteTable",
    "SCOPE_KEY",
    "Secret",
    "StateBackend",
    "StateUnavailable",
    "StoreError",
    "TokenAuthMiddleware",
    "TokenEntry",
    "TokenSource",
    "TokenTable",
    "TranslationMiddleware",
    "UpstreamError",
    "UpstreamErrorsMiddleware",
    "UpstreamTimeouts",
    "UsageAdminApp",
    "UsageMiddleware",
    "UsageTotalsMiddleware",
    "WireFormat",
    "__version__",
    "build_gateway",
    "credential_matcher",
    "ensure_context",
    "get_context",
    "get_kind",
    "load_config",
    "make_provider",
    "parse_config",
    "pooled_client",
    "receive_body",
    "receive_json",
    "register_kind",
    "register_wire",
    "send_error",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
