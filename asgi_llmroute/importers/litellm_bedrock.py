"""LiteLLM ``bedrock/...`` model entries -> ``kind = "bedrock"`` provider tables.

``bedrock/<model id>`` uses the kind's default API choice, ``bedrock/converse/<id>`` forces Converse
and ``bedrock/invoke/<id>`` InvokeModel (Claude's Anthropic body). LiteLLM's AWS parameters map to
the kind's settings: ``aws_region_name`` -> ``region``, ``aws_access_key_id`` (with
``aws_secret_access_key`` as the key), ``aws_session_token``, ``aws_profile_name``,
``aws_role_name`` / ``aws_session_name``; ``aws_bedrock_runtime_endpoint`` or ``api_base`` ->
``base_url``; an ``api_key`` without AWS keys is a Bedrock API key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from ..secret import litellm_env_var

__all__ = ["BEDROCK_PARAMS", "bedrock_provider"]

#: ``litellm_params`` this import reads for ``bedrock/`` entries (others are listed as ignored).
BEDROCK_PARAMS = frozenset(
    {
        "aws_region_name",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_profile_name",
        "aws_role_name",
        "aws_session_name",
        "aws_bedrock_runtime_endpoint",
    }
)


def _plain(value: Any, env: Mapping[str, str]) -> str | None:
    """A non-secret setting, with ``os.environ/NAME`` read now (the gateway's options are literal)."""
    if not isinstance(value, str) or not value:
        return None
    name = litellm_env_var(value)
    if name is None:
        return value
    return env.get(name) or os.environ.get(name)


def bedrock_provider(
    model: str,
    params: Mapping[str, Any],
    env: Mapping[str, str],
    key_ref: Callable[[Any, str], str | None],
    where: str,
) -> tuple[dict[str, Any], str]:
    """(provider table without its name, upstream model id) for a ``bedrock/...`` entry."""
    rest = model.removeprefix("bedrock/")
    provider: dict[str, Any] = {"kind": "bedrock"}
    route, _, tail = rest.partition("/")
    if route in ("converse", "invoke") and tail:
        provider["anthropic_api"] = provider["openai_api"] = route
        rest = tail
    region = _plain(params.get("aws_region_name"), env)
    if region:
        provider["region"] = region
    base = params.get("aws_bedrock_runtime_endpoint") or params.get("api_base") or params.get("base_url")
    if isinstance(base, str) and base:
        provider["base_url"] = base.rstrip("/")
    key_id = _plain(params.get("aws_access_key_id"), env)
    if key_id:
        provider["aws_access_key_id"] = key_id
        secret = key_ref(params.get("aws_secret_access_key"), f"{where}.litellm_params.aws_secret_access_key")
        if secret is not None:
            provider["api_key"] = secret
    else:
        bearer = key_ref(params.get("api_key"), f"{where}.litellm_params.api_key")
        if bearer is not None:
            provider["api_key"] = bearer
            provider["auth"] = "api-key"
        else:
            provider["auth"] = "sigv4"  # AWS's own chain: environment, profiles, roles
    token = params.get("aws_session_token")
    if isinstance(token, str) and token:
        name = litellm_env_var(token)
        provider["aws_session_token"] = f"env:{name}" if name is not None else token
    for source, target in (
        ("aws_profile_name", "aws_profile_name"),
        ("aws_role_name", "aws_role_name"),
        ("aws_session_name", "aws_session_name"),
    ):
        value = _plain(params.get(source), env)
        if value:
            provider[target] = value
    return provider, rest
