"""The gateway's ASGI middlewares, one per module."""

from .auth import TokenAuthMiddleware, TokenEntry, TokenTable
from .resolve import ProviderResolverMiddleware, RouteResolver
from .strip import CredentialStripMiddleware
from .translate import TranslationMiddleware

__all__ = [
    "CredentialStripMiddleware",
    "ProviderResolverMiddleware",
    "RouteResolver",
    "TokenAuthMiddleware",
    "TokenEntry",
    "TokenTable",
    "TranslationMiddleware",
]
