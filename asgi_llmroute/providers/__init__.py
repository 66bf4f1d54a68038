"""Provider records and model resolution."""

from .routing import RouteTable
from .types import API, Deployment, Provider, Route

__all__ = ["API", "Deployment", "Provider", "Route", "RouteTable"]
