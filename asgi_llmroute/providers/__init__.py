"""Provider records and model resolution."""

from .model import API, Deployment, Provider, Route
from .routing import RouteTable

__all__ = ["API", "Deployment", "Provider", "Route", "RouteTable"]
