"""asgi-llmroute: composable ASGI middlewares for LLM gateways.

The request path, one middleware each::

    client -> TokenAuthMiddleware -> ProviderResolverMiddleware -> CredentialStripMiddleware
           -> TranslationMiddleware -> Forwarder -> upstream

``build_gateway(config)`` assembles the standard stack; every piece also works alone.
"""

from .__about__ import __version__
from .config import ConfigError, GatewayConfig, load_config
from .context import SCOPE_KEY, ClientAPI, Principal, RequestContext, ensure_context, get_context
from .errors import GatewayError, UpstreamError
from .forward import Forwarder
from .gateway import Gateway, build_gateway
from .middleware import (
    CredentialStripMiddleware,
    ProviderResolverMiddleware,
    TokenAuthMiddleware,
    TokenEntry,
    TokenTable,
    TranslationMiddleware,
)
from .providers import Deployment, Provider, Route, RouteTable
from .secrets import Secret

__all__ = [
    "SCOPE_KEY",
    "ClientAPI",
    "ConfigError",
    "CredentialStripMiddleware",
    "Deployment",
    "Forwarder",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "Principal",
    "Provider",
    "ProviderResolverMiddleware",
    "RequestContext",
    "Route",
    "RouteTable",
    "Secret",
    "TokenAuthMiddleware",
    "TokenEntry",
    "TokenTable",
    "TranslationMiddleware",
    "UpstreamError",
    "__version__",
    "build_gateway",
    "ensure_context",
    "get_context",
    "load_config",
]
