"""The public surface is deliberate: pinned here, as httpx pins its own."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import asgi_llmroute
from asgi_llmroute import formats, middleware

# Adding to the public API is a decision: make it here too.
EXPECTED = {
    "Authenticator",
    "AuthError",
    "RequestSigner",
    "TokenSource",
    "KindError",
    "ProviderKind",
    "WireFormat",
    "get_kind",
    "register_kind",
    "register_wire",
    "make_provider",
    "parse_config",
    "receive_body",
    "receive_json",
    "send_error",
    "DEMO_BASE_URL",
    "DemoProvider",
    "pooled_client",
    "credential_matcher",
    "ProviderSpec",
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
    "ModelNameMiddleware",
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
    # several instances (docs/scaling.md): the state backends, usage totals, the PostgreSQL store
    "MemoryState",
    "RedisState",
    "StateBackend",
    "StateUnavailable",
    "UsageTotalsMiddleware",
    "UsageAdminApp",
    "PostgresProviderStore",
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


def _public_imports_only(text: str) -> list[str]:
    wrong = []
    for line in text.splitlines():
        words = line.strip().split()
        if len(words) >= 2 and words[0] in ("from", "import") and words[1].startswith("asgi_llmroute."):
            wrong += [line.strip()] if words[1].rstrip(",") not in PUBLIC_MODULES else []
    return wrong


# The package root and the pure translation core (docs/architecture.md, "Public API").
PUBLIC_MODULES = {"asgi_llmroute", "asgi_llmroute.formats"}


def test_docs_and_examples_import_only_public_names() -> None:
    root = Path(__file__).resolve().parent.parent
    files = [root / "README.md", *sorted((root / "docs").glob("*.md")), *sorted((root / "examples").glob("*.py"))]
    wrong = [f"{path.relative_to(root)}: {line}" for path in files for line in _public_imports_only(path.read_text())]
    assert not wrong, "\n".join(wrong)


def test_the_root_imports_lazily() -> None:
    code = "import asgi_llmroute, sys; print(sorted(m for m in sys.modules if m.startswith('asgi_llmroute.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['asgi_llmroute.__about__', 'asgi_llmroute.deferred']"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        asgi_llmroute.nope  # noqa: B018


def test_every_root_name_is_in_the_lazy_table() -> None:
    assert set(asgi_llmroute.__all__) == {*asgi_llmroute._EXPORTS, "__version__"}
    assert set(asgi_llmroute.__all__) <= set(dir(asgi_llmroute))
