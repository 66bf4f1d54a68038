"""The public surface is deliberate: pinned here, as httpx pins its own."""

from __future__ import annotations

import importlib

import asgi_llmroute
from asgi_llmroute import formats, middleware

# Adding to the public API is a decision: make it here too.
EXPECTED = {
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
    "SCOPE_KEY",
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
}


def test_root_exports() -> None:
    assert len(asgi_llmroute.__all__) == len(set(asgi_llmroute.__all__))
    assert set(asgi_llmroute.__all__) == EXPECTED
    for name in asgi_llmroute.__all__:
        assert getattr(asgi_llmroute, name) is not None


def test_every_middleware_is_importable_from_the_package_root() -> None:
    for name in middleware.__all__:
        if name.endswith("Middleware"):
            assert getattr(asgi_llmroute, name) is getattr(middleware, name)
    assert {"Forwarder", "build_gateway", "get_context", "ensure_context"} <= set(asgi_llmroute.__all__)


def test_formats_exports_resolve() -> None:
    for name in formats.__all__:
        assert getattr(formats, name) is not None
    importlib.import_module("asgi_llmroute.formats.sse")
