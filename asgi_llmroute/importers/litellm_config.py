"""Serve a LiteLLM proxy ``config.yaml`` as it is: ``llmroute serve --config litellm_config.yaml``.

One cohesive thing over 400 lines: a LiteLLM ``config.yaml`` to a GatewayConfig, key by key, with what is
ignored named beside what is kept.

The parts we support become a :class:`GatewayConfig`; everything else is named, key by key, in
the list of ignored keys that ``llmroute serve`` prints at start (docs/litellm.md has the table).

- ``model_list``: each entry is a deployment of its ``model_name``; ``litellm_params.model`` of the
  form ``openai/<id>`` or ``anthropic/<id>`` (or a bare ``gpt-*``/``claude-*`` id) picks the API,
  ``api_base``/``api_key``/``timeout``/``extra_headers`` the provider (entries sharing them share
  one), ``weight`` the deployment's weight. Other provider types are ignored, by entry.
- ``api_key: os.environ/NAME`` reads the variable (``environment_variables`` in the file first).
- ``router_settings``: ``fallbacks``, ``num_retries``, ``routing_strategy``, ``timeout``.
- ``litellm_settings``: ``num_retries``, ``request_timeout``, ``fallbacks``.
- ``general_settings.master_key``: the admin token and a router token named ``master``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..config import ConfigError, GatewayConfig, parse_config
from ..providers.kinds import ProviderKind
from ..secret import litellm_env_var
from .litellm import (
    DEFAULT_KEY_VARS,
    LITELLM_KEY_VARS,
    litellm_base_url,
    litellm_environment,
    litellm_kind_base_url,
    litellm_kind_options,
    litellm_provider_name,
    litellm_target,
    read_litellm,
    unique_name,
)
from .litellm_bedrock import BEDROCK_PARAMS, bedrock_provider
from .litellm_google import GoogleDeployment, UnsupportedModel
from .plan import ImportFileError

__all__ = ["is_litellm_config", "load_litellm_config"]

_STRATEGIES = {
    "simple-shuffle": "weighted",
    "least-busy": "least_in_flight",
    "latency-based-routing": "lowest_latency",
}
_PARAMS = {
    *("model", "api_base", "base_url", "api_key", "timeout", "extra_headers", "headers", "weight", "rpm", "tpm"),
    *("drop_params", "max_parallel_requests"),
}
# Azure's own (listed as ignored on other kinds).
_AZURE_PARAMS = frozenset({"api_version", "azure_ad_token", "tenant_id", "client_id", "client_secret"})


def is_litellm_config(path: str | Path) -> bool:
    return Path(path).suffix.lower() in (".yaml", ".yml")


def load_litellm_config(path: str | Path, *, strict: bool = False) -> tuple[GatewayConfig, list[str]]:
    """The gateway configuration for a LiteLLM ``config.yaml``, and the keys it ignored.

    An entry whose provider type has no kind yet is ignored (and listed); with ``strict`` it is an error.
    """
    path = Path(path)
    try:
        data = read_litellm(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except ImportFileError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    origins: dict[str, str] = {}
    translated, ignored = _translate(data, str(path), origins, strict=strict)
    try:
        return parse_config(translated, source=str(path), base_dir=path.resolve().parent), ignored
    except ConfigError as exc:
        raise ConfigError(_in_yaml_terms(str(exc), str(path), origins)) from None


# Where each field of our schema comes from in a LiteLLM model_list entry (relative to the entry).
_PROVIDER_FIELDS = {
    "api": "litellm_params.model",
    "base_url": "litellm_params.api_base",
    "api_key": "litellm_params.api_key",
    "headers": "litellm_params.extra_headers",
    "timeout": "litellm_params.timeout",
    "max_retries": "router_settings.num_retries",
}
_MODEL_FIELDS = {
    "name": "model_name",
    "model": "litellm_params.model",
    "weight": "litellm_params.weight",
    "rpm": "litellm_params.rpm",
    "tpm": "litellm_params.tpm",
    "fallbacks": "router_settings.fallbacks",
}
_GLOBAL_KEYS = {
    "tokens[0].key": "general_settings.master_key",
    "admin.tokens[0]": "general_settings.master_key",
    "routing.strategy": "router_settings.routing_strategy",
}
_INTERNAL_KEY = re.compile(r"^(providers|models)\[(\d+)\](?:\.(\w+))?(.*)$")


def _in_yaml_terms(message: str, source: str, origins: Mapping[str, str]) -> str:
    """``message`` with our schema's keys (``providers[1].base_url``) replaced by the yaml's own ones."""
    lines = []
    for line in message.splitlines():
        rest = line.removeprefix(f"{source}: ")
        key, sep, problem = rest.partition(": ")
        lines.append(f"{source}: {_yaml_key(key, origins)}{sep}{problem}" if sep else line)
    return "\n".join(lines)


def _yaml_key(key: str, origins: Mapping[str, str]) -> str:
    if key in _GLOBAL_KEYS:
        return _GLOBAL_KEYS[key]
    match = _INTERNAL_KEY.match(key)
    if match is None:
        return key
    section, index, field, tail = match.groups()
    entry = origins.get(f"{section}[{index}]")
    if entry is None:
        return key
    fields = _PROVIDER_FIELDS if section == "providers" else _MODEL_FIELDS
    if field is None:
        return entry
    mapped = fields.get(field)
    if mapped is None:
        return f"{entry} ({field}{tail})"
    if mapped.startswith("router_settings."):
        return mapped + tail
    if field == "base_url" and origins.get(f"{section}[{index}].base_url"):
        mapped = "litellm_params.base_url"
    return f"{entry}.{mapped}{tail}"


def _translate(
    data: Mapping[str, Any], source: str, origins: dict[str, str] | None = None, *, strict: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Our schema for ``data``; ``origins`` gets, for each provider and model, the entry it came from."""
    origins = {} if origins is None else origins
    ignored: list[str] = []
    env = litellm_environment(data)
    if env is None:
        raise ConfigError(f"{source}: environment_variables: must be a mapping")

    def key_ref(value: Any, where: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {where}: must be a string")
        name = litellm_env_var(value)
        return value if name is None else env.get(name, f"env:{name}")

    def plain(value: Any, where: str) -> str | None:
        """A setting that is not a secret (tenant_id, api_version): references are read now."""
        ref = key_ref(value if value is None or isinstance(value, str) else str(value), where)
        if ref is None or not ref.startswith("env:"):
            return ref
        found = os.environ.get(ref[4:])
        if not found:
            raise ConfigError(f"{source}: {where}: the environment variable {ref[4:]} is not set")
        return found

    unsupported: list[str] = []

    providers: dict[str, dict[str, Any]] = {}  # identity -> provider table
    models: list[dict[str, Any]] = []
    for i, item in enumerate(data["model_list"]):
        where = f"model_list[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("litellm_params"), Mapping):
            raise ConfigError(f"{source}: {where}: needs model_name and litellm_params")
        name, params = item.get("model_name"), item["litellm_params"]
        if not isinstance(name, str) or not isinstance(params.get("model"), str):
            raise ConfigError(f"{source}: {where}: needs a model_name and a litellm_params.model string")
        if "*" in name or "*" in params["model"]:
            ignored.append(f"{where} ({name}): wildcard routes; clients can use <provider>/<model>")
            continue
        if params["model"].startswith("bedrock/"):  # a kind = "bedrock" provider (litellm_bedrock.py)
            ignored += [f"{where}.litellm_params.{k}" for k in sorted(set(params) - _PARAMS - BEDROCK_PARAMS)]
            models.append(_bedrock_model(providers, name, params, env, key_ref, where))
            continue
        try:
            target = litellm_target(params, env)
        except UnsupportedModel as exc:
            ignored.append(f"{where} ({name}): {exc}")
            unsupported.append(f"{where} ({name}): {exc}")
            continue
        except ValueError as exc:
            raise ConfigError(f"{source}: {where}.litellm_params.{exc}") from None
        api, kind, google, upstream = target.api, target.kind, target.google, target.upstream
        ignored += [f"{where}.litellm_params.{k}" for k in sorted(set(params) - target.known_params(params, _PARAMS))]
        ignored += [f"{where}.{k}" for k in sorted(set(item) - {"model_name", "litellm_params"})]
        if kind is None:
            assert api is not None
            base_url: str | None = litellm_base_url(api, params.get("api_base", params.get("base_url")))
            provider: dict[str, Any] = {"api": api, "base_url": base_url}
            key = key_ref(params.get("api_key"), f"{where}.litellm_params.api_key")
            if key is None and os.environ.get(DEFAULT_KEY_VARS[api]):
                key = f"env:{DEFAULT_KEY_VARS[api]}"  # LiteLLM's default for the provider type
            kind_name = api
        elif google is not None:
            provider, key = _google_provider(google, params, where, key_ref, env)
            base_url, kind_name = provider.get("base_url"), google.kind
        else:
            provider, key = _kind_provider(kind, params, where, key_ref, plain)
            base_url, kind_name = provider.get("base_url"), kind.name
        if key is not None:
            provider["api_key"] = key
        if isinstance(params.get("drop_params"), bool):
            provider["drop_params"] = params["drop_params"]
        if isinstance(params.get("max_parallel_requests"), int) and params["max_parallel_requests"] > 0:
            provider["max_in_flight"] = params["max_parallel_requests"]
        headers = params.get("extra_headers", params.get("headers"))
        if headers:
            provider["headers"] = dict(headers)
        if "timeout" in params:
            provider["timeout"] = params["timeout"]
        identity = repr(sorted(provider.items(), key=lambda kv: kv[0]))
        if identity not in providers:
            unique = unique_name(litellm_provider_name(kind_name, base_url), {p["name"] for p in providers.values()})
            providers[identity] = {"name": unique, **provider}
            index = len(providers) - 1
            origins[f"providers[{index}]"] = where
            if "api_base" not in params and "base_url" in params:
                origins[f"providers[{index}].base_url"] = "base_url"
        model: dict[str, Any] = {"name": name, "provider": providers[identity]["name"], "model": upstream}
        if "weight" in params:
            model["weight"] = params["weight"]
        for limit in ("rpm", "tpm"):  # the deployment's own limits
            if params.get(limit):
                model[limit] = params[limit]
        origins[f"models[{len(models)}]"] = where
        models.append(model)

    if strict and unsupported:
        raise ConfigError("\n".join(f"{source}: {line} (--strict)" for line in unsupported))
    config: dict[str, Any] = {"providers": list(providers.values()), "models": models}
    found: dict[str, Any] = {}
    settings = _settings(data, ignored, found)
    retries, timeout, fallbacks, strategy = settings
    if retries is not None or timeout is not None:
        for provider in config["providers"]:
            if retries is not None:
                provider["max_retries"] = retries
            if timeout is not None:
                provider.setdefault("timeout", timeout)
    known = {m["name"] for m in models}
    for name, targets in fallbacks.items():
        usable = [t for t in targets if t in known]
        ignored += [f"fallbacks: {name} -> {t} (no such model)" for t in targets if t not in known]
        if name in known and usable:
            for model in models:
                if model["name"] == name:
                    model["fallbacks"] = usable
                    break
    if strategy is not None:
        config["routing"] = {"strategy": strategy}
    if "drop_params" in found:  # LiteLLM's: fields a provider refuses are dropped, not refused
        config["translation"] = {"drop_params": found["drop_params"]}
    master = key_ref((data.get("general_settings") or {}).get("master_key"), "general_settings.master_key")
    if master is None:
        raise ConfigError(
            f"{source}: general_settings.master_key: llmroute needs a key to serve with; "
            "set master_key (it becomes the admin token and the router token 'master')"
        )
    config["tokens"] = [{"name": "master", "key": master}]
    config["admin"] = {"tokens": [master]}
    return config, ignored


def _kind_provider(
    kind: ProviderKind,
    params: Mapping[str, Any],
    where: str,
    key_ref: Callable[[Any, str], str | None],
    plain: Callable[[Any, str], str | None],
) -> tuple[dict[str, Any], str | None]:
    """A provider table of ``kind`` for LiteLLM ``litellm_params``, and its key (reference)."""
    at = f"{where}.litellm_params"
    provider: dict[str, Any] = {"kind": kind.name}
    base = plain(params.get("api_base", params.get("base_url")), f"{at}.api_base")
    if base is None and kind.name == "azure":
        base = os.environ.get("AZURE_API_BASE") or None  # LiteLLM's variable for it
    if base:
        provider["base_url"] = litellm_kind_base_url(kind, base)
    key = key_ref(params.get("api_key"), f"{at}.api_key")
    for option, (name, value) in litellm_kind_options(kind, params).items():
        provider[option] = plain(value, f"{at}.{name}")
    if kind.name == "azure":
        version = provider.get("api_version") or os.environ.get("AZURE_API_VERSION")
        if version:
            provider["api_version"] = version
        if params.get("azure_ad_token") is not None:
            key, provider["auth"] = key_ref(params["azure_ad_token"], f"{at}.azure_ad_token"), "bearer"
        if params.get("tenant_id") is not None and params.get("client_id") is not None:
            provider["tenant_id"] = plain(params["tenant_id"], f"{at}.tenant_id")
            provider["client_id"] = plain(params["client_id"], f"{at}.client_id")
            provider["auth"] = "entra"
            key = key_ref(params.get("client_secret"), f"{at}.client_secret")
            if key is None and os.environ.get("AZURE_CLIENT_SECRET"):
                key = "env:AZURE_CLIENT_SECRET"
            return provider, key
    variable = LITELLM_KEY_VARS.get(kind.name)
    if key is None and variable is not None and os.environ.get(variable):
        key = f"env:{variable}"  # LiteLLM's default variable for the kind
    return provider, key


def _google_provider(
    google: GoogleDeployment,
    params: Mapping[str, Any],
    where: str,
    key_ref: Callable[[Any, str], str | None],
    env: Mapping[str, str],
) -> tuple[dict[str, Any], str | None]:
    """A ``gemini`` / ``vertex_ai`` / ``vertex_anthropic`` provider table, and its key (reference)."""
    provider: dict[str, Any] = {"kind": google.kind, **google.options}
    if google.base_url:
        provider["base_url"] = google.base_url
    key: str | None = None
    if google.kind == "gemini":
        key = key_ref(params.get("api_key"), f"{where}.litellm_params.api_key")
        for variable in google.key_vars:
            if key is None and (env.get(variable) or os.environ.get(variable)):
                key = env.get(variable) or f"env:{variable}"
    elif google.credentials is not None:
        how, value = google.credentials
        key = {"env": env.get(value) or f"env:{value}", "file": f"file:{value}"}.get(how, value)
    return provider, key


def _bedrock_model(
    providers: dict[str, dict[str, Any]],
    name: str,
    params: Mapping[str, Any],
    env: Mapping[str, str],
    key_ref: Callable[[Any, str], str | None],
    where: str,
) -> dict[str, Any]:
    """The model entry of a ``bedrock/...`` deployment; its provider is shared by entries with the same settings."""
    provider, upstream = bedrock_provider(params["model"], params, env, key_ref, where)
    if "timeout" in params:
        provider["timeout"] = params["timeout"]
    identity = repr(sorted(provider.items(), key=lambda kv: kv[0]))
    if identity not in providers:
        providers[identity] = {"name": unique_name("bedrock", {p["name"] for p in providers.values()}), **provider}
    model: dict[str, Any] = {"name": name, "provider": providers[identity]["name"], "model": upstream}
    for key in ("weight", *(k for k in ("rpm", "tpm") if k in _PARAMS)):  # the deployment's own settings
        if params.get(key):
            model[key] = params[key]
    return model


def _settings(
    data: Mapping[str, Any], ignored: list[str], found: dict[str, Any]
) -> tuple[int | None, float | None, dict[str, list[str]], str | None]:
    """num_retries, timeout, fallbacks and routing strategy from the settings sections (``drop_params``
    into ``found``)."""
    retries: int | None = None
    timeout: float | None = None
    fallbacks: dict[str, list[str]] = {}
    strategy: str | None = None
    for section in data:
        if section in ("model_list", "environment_variables"):
            continue
        values = data[section]
        if section not in ("router_settings", "litellm_settings", "general_settings") or not isinstance(
            values, Mapping
        ):
            ignored.append(str(section))
            continue
        for key, value in values.items():
            if key == "num_retries" and section != "general_settings":
                retries = int(value)
            elif key in ("timeout", "request_timeout") and section != "general_settings":
                timeout = float(value)
            elif key == "fallbacks" and section != "general_settings" and isinstance(value, list):
                for rule in value:
                    if isinstance(rule, Mapping):
                        for name, targets in rule.items():
                            fallbacks[str(name)] = [
                                str(t) for t in (targets if isinstance(targets, list) else [targets])
                            ]
            elif key == "drop_params" and section == "litellm_settings" and isinstance(value, bool):
                found["drop_params"] = value
            elif key == "routing_strategy" and section == "router_settings" and value in _STRATEGIES:
                strategy = _STRATEGIES[value]
            elif not (section == "general_settings" and key == "master_key"):
                ignored.append(f"{section}.{key}")
    return retries, timeout, fallbacks, strategy
