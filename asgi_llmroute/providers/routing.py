"""Model name -> route: configured names and aliases first, then ``provider/model`` prefixes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .types import Deployment, Provider, Route

__all__ = ["RouteTable"]


class RouteTable:
    """An immutable resolution table, built once and shared by every request.

    ``resolve("claude")`` finds a configured model; ``resolve("anthropic/claude-x")`` routes to the
    provider named ``anthropic`` with upstream model ``claude-x`` (LiteLLM's convention) when no
    configured model has that exact name. When no provider has that name, a kind name or alias
    (``groq``, ``hosted_vllm``) routes to the first provider of that kind.
    """

    __slots__ = ("_by_kind", "_providers", "_routes")

    def __init__(self, providers: Iterable[Provider], routes: Iterable[Route]) -> None:
        self._providers: dict[str, Provider] = {p.name: p for p in providers}
        self._routes: dict[str, Route] = {r.name: r for r in routes}
        self._by_kind: dict[str, Provider] = {}
        for provider in self._providers.values():
            for name in (provider.kind.name, *provider.kind.aliases):
                self._by_kind.setdefault(name, provider)

    @property
    def providers(self) -> Mapping[str, Provider]:
        return self._providers

    @property
    def routes(self) -> Mapping[str, Route]:
        return self._routes

    def resolve(self, model: str) -> Route | None:
        route = self._routes.get(model)
        if route is not None:
            return route
        provider_name, sep, upstream_model = model.partition("/")
        # "." and ".." are no model id, and as a URL path segment (an Azure deployment, a Bedrock model
        # id) they would move the request to another path of the provider's host, with its key.
        if sep and upstream_model and upstream_model not in (".", ".."):
            provider = self._providers.get(provider_name) or self._by_kind.get(provider_name)
            if provider is not None:
                return Route(name=model, deployments=(Deployment(provider, upstream_model),))
        return None

    def model_names(self) -> list[str]:
        return list(self._routes)
