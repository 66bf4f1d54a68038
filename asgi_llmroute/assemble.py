"""From a :class:`GatewayConfig` to the runtime objects the layers take.

The configuration is only a schema (``config.py``); this module is where its sections become token
entries, providers, routes, timeouts and retry policies. ``gateway.py`` calls it to build the
standard stack; a gateway of your own can call it too. References (``env:``/``file:``) are
resolved here, when the objects are made, and a failure is a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from .config import ConfigError, GatewayConfig
from .formats.capabilities import ModelCapabilities, default_capabilities
from .providers.kinds import KindError, options_tuple
from .providers.types import Deployment, Provider, Route, make_provider
from .retry_policy import DEFAULT_RETRY_ON, RetryPolicy
from .secret import Secret
from .state import MemoryState, StateBackend
from .timeouts import UpstreamTimeouts
from .tokens import TokenEntry

__all__ = [
    "admin_tokens",
    "provider_records",
    "retry_policies",
    "routes",
    "state_backend",
    "token_entries",
    "upstream_timeouts",
]


def token_entries(config: GatewayConfig) -> list[TokenEntry]:
    """The router tokens of ``[[tokens]]``, keys resolved and hashed."""
    entries = []
    for i, token in enumerate(config.tokens):
        if token.key is not None:
            key = config.resolve(f"tokens[{i}].key", token.key)
            if not key.strip():
                raise ConfigError(f"{config.source}: tokens[{i}].key: the key is empty")
            entries.append(TokenEntry.from_key(token.name, key.strip(), token.models))
        else:
            assert token.key_sha256 is not None
            entries.append(TokenEntry(token.name, bytes.fromhex(token.key_sha256), tuple(token.models)))
    return entries


def admin_tokens(config: GatewayConfig) -> list[Secret]:
    """The ``[admin] tokens``, resolved."""
    return [Secret(config.resolve(f"admin.tokens[{i}]", t)) for i, t in enumerate(config.admin.tokens)]


def provider_records(config: GatewayConfig) -> list[Provider]:
    """The ``[[providers]]`` as the forwarder takes them: keys resolved (or read from the kind's
    variable), kind defaults filled in, authenticators made."""
    providers = []
    for i, p in enumerate(config.providers):
        key = config.provider_key(i)
        secret = Secret(key) if key else None
        headers = tuple((k.lower(), v) for k, v in p.headers.items())
        drop = p.drop_params if p.drop_params is not None else config.translation.drop_params
        if p.kind is None:
            assert p.api is not None and p.base_url is not None  # the schema checked
            provider = Provider(
                name=p.name,
                api=p.api,
                base_url=p.base_url,
                api_key=secret,
                headers=headers,
                timeout=p.timeout,
                responses_api=bool(p.responses_api),
                drop_params=drop,
            )
        else:
            try:
                provider = make_provider(
                    p.name,
                    p.provider_kind(),
                    base_url=config.provider_base_url(i),
                    api_key=secret,
                    headers=headers,
                    timeout=p.timeout,
                    options=options_tuple(p.options()),
                    responses_api=p.responses_api,
                    drop_params=drop,
                )
            except KindError as exc:
                raise ConfigError(f"{config.source}: providers[{i}] ({p.name}): {exc}") from None
        providers.append(provider)
    return providers


def routes(config: GatewayConfig, providers: Iterable[Provider]) -> list[Route]:
    """The ``[[models]]`` as routes over ``providers`` (from :func:`provider_records`)."""
    by_name = {p.name: p for p in providers}
    deployments: dict[str, list[Deployment]] = {}
    for m in config.models:
        deployments.setdefault(m.name, []).append(Deployment(by_name[m.provider], m.model, m.weight))
    fallbacks = {m.name: tuple(m.fallbacks) for m in config.models if m.fallbacks}
    return [Route(name, tuple(d), fallbacks.get(name, ())) for name, d in deployments.items()]


def upstream_timeouts(config: GatewayConfig) -> dict[str, UpstreamTimeouts]:
    """Each configured provider's timeouts, for the forwarder."""
    out = {}
    for p in config.providers:
        default = UpstreamTimeouts.from_total(p.timeout)
        out[p.name] = default._replace(
            connect=p.connect_timeout or default.connect,
            first_byte=p.first_byte_timeout,
            idle=p.idle_timeout or default.idle,
            stream_total=p.stream_timeout,
        )
    return out


def retry_policies(config: GatewayConfig) -> dict[str, RetryPolicy]:
    """Each configured provider's retry policy, for the retry layer."""
    return {
        p.name: RetryPolicy(
            max_retries=p.max_retries,
            retry_on=frozenset(p.retry_on) if p.retry_on is not None else DEFAULT_RETRY_ON,
            cooldown=p.cooldown,
        )
        for p in config.providers
    }


def state_backend(config: GatewayConfig) -> StateBackend:
    """The runtime state of ``[state]``: this process's (the default), or a Redis shared by every instance."""
    url = config.state_url()
    if url is None:
        return MemoryState()
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"{config.source}: [state] backend = \"redis\" needs redis-py: pip install 'asgi-llmroute[redis]'"
        ) from None
    from .state.redis import RedisState

    s = config.state
    return RedisState(
        url,
        prefix=s.prefix,
        when_down=s.when_down,
        on_error=s.on_error,
        lease_ttl=s.lease_ttl,
        timeout=s.timeout_ms / 1000,
    )


def model_capabilities(config: GatewayConfig) -> Callable[[Deployment], ModelCapabilities]:
    """What each deployment's model accepts: its family's defaults, overridden by ``[[models]] capabilities``."""
    overrides: dict[tuple[str, str], ModelCapabilities] = {}
    for model in config.models:
        if model.capabilities is not None:
            changes = {k: v for k, v in model.capabilities.model_dump().items() if v is not None}
            overrides[(model.provider, model.model)] = dataclasses.replace(default_capabilities(model.model), **changes)

    def resolve(deployment: Deployment) -> ModelCapabilities:
        found = overrides.get((deployment.provider.name, deployment.model))
        return found if found is not None else default_capabilities(deployment.model)

    return resolve
