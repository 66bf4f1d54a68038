"""Provider records, provider kinds and model resolution."""

from . import azure as _azure  # noqa: F401  (registers the azure kind)
from . import bedrock as _bedrock  # noqa: F401  (registers the bedrock kind; botocore is imported on use)
from . import catalog as _catalog  # noqa: F401  (registers the OpenAI-compatible catalog)
from . import google as _google  # noqa: F401  (registers the gemini wire format, gemini and vertex_ai kinds)
from .kinds import ProviderKind, WireFormat, find_kind, get_kind, kinds, register_kind, register_wire
from .routing import RouteTable
from .types import API, Deployment, Provider, Route, make_provider

__all__ = [
    "API",
    "Deployment",
    "Provider",
    "ProviderKind",
    "Route",
    "RouteTable",
    "WireFormat",
    "find_kind",
    "get_kind",
    "kinds",
    "make_provider",
    "register_kind",
    "register_wire",
]
