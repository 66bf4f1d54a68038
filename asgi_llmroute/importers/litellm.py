"""LiteLLM proxy ``config.yaml`` import: ``model_list`` deployments become providers with models.

Each ``model_list`` entry is a deployment: ``model_name`` (what clients ask for) and
``litellm_params`` (``model: <provider>/<upstream id>``, ``api_base``, ``api_key``, ...). Entries
that share API format, base URL, key, headers and timeout become one provider, named after the
format (``openai``, ``anthropic``) or, for other base URLs, after the format and host
(``openai-vllm-internal-8000``); their ``model_name -> upstream id`` pairs become its models.

- Every prefix that names a provider kind (``openai/``, ``anthropic/``, ``azure/``, ``groq/`` and the
  rest of the OpenAI-compatible catalog, ``gemini/``, ``vertex_ai/``, ``bedrock/``; and bare
  ``gpt-*``/``o1``/``claude-*`` names, which LiteLLM infers) is imported; a prefix with no kind
  (``sagemaker/``, ...) is skipped with a reason naming the entry and the prefix.
- ``api_key: os.environ/NAME`` is resolved when the import runs (``environment_variables`` in the
  file first, then the environment), never stored as a reference and never printed. Without
  ``api_key``, LiteLLM's default variable (``OPENAI_API_KEY``/``ANTHROPIC_API_KEY``) is used if set.
- ``litellm_params`` with no equivalent (``rpm``, ``api_version``, ...), ``model_info``, wildcard
  routes and the gateway-wide sections (``general_settings``, ``router_settings``, ...) are listed as
  skipped, by name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from ..deferred import require
from ..providers.kinds import ProviderKind, find_kind, get_kind
from .litellm_google import GOOGLE_PARAMS, GoogleDeployment, UnsupportedModel, google_deployment
from .plan import Entry, ImportFileError, Issue, KeyRef, ParsedFile, key_from_string

__all__ = [
    "DEFAULT_KEY_VARS",
    "LiteLLMTarget",
    "litellm_api",
    "litellm_base_url",
    "litellm_environment",
    "litellm_provider_name",
    "litellm_target",
    "parse_litellm",
    "read_litellm",
    "unique_name",
]

_DEFAULT_BASE = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
#: The variable LiteLLM reads a provider type's key from when a deployment gives no ``api_key``.
DEFAULT_KEY_VARS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
_OPENAI_BARE = ("gpt-", "chatgpt-", "o1", "o3", "o4", "text-embedding-", "dall-e", "whisper", "tts-", "omni-moderation")
_IMPORTED_PARAMS = frozenset({"model", "api_base", "base_url", "api_key", "timeout", "extra_headers", "headers"})
_AZURE_PARAMS = frozenset({"api_version", "azure_ad_token", "tenant_id", "client_id", "client_secret"})


def _yaml() -> ModuleType:
    return require("yaml", "litellm", what="Reading a LiteLLM config.yaml")


def read_litellm(text: str) -> Mapping[str, Any]:
    """A LiteLLM proxy ``config.yaml``, parsed: a mapping with a ``model_list`` list.

    :class:`ImportFileError` (one line, with the line number when YAML knows it) otherwise.
    """
    yaml = _yaml()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ImportFileError(f"{where}invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("model_list"), list):
        raise ImportFileError("not a LiteLLM config: expected a mapping with a 'model_list' list")
    return data


def litellm_environment(data: Mapping[str, Any]) -> dict[str, str] | None:
    """The file's ``environment_variables`` (read before the process environment); None if not a mapping."""
    env = data.get("environment_variables") or {}
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, Mapping) else None


def _lines(text: str) -> dict[int, int]:
    """The line of each ``model_list`` item (PyYAML's node marks; ``safe_load`` drops them)."""
    yaml = _yaml()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[int, int] = {}
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "model_list" and isinstance(value, yaml.SequenceNode):
                out = {i: item.start_mark.line + 1 for i, item in enumerate(value.value)}
    return out


def litellm_api(model: str) -> tuple[str | None, str, str]:
    """(api or None, upstream model id, reason when unsupported)."""
    prefix, sep, rest = model.partition("/")
    if sep:
        if prefix in ("openai", "anthropic") and rest:
            return prefix, rest, ""
        return None, model, f"provider type not supported: {prefix}"
    if model.startswith("claude"):
        return "anthropic", model, ""
    if model.startswith(_OPENAI_BARE):
        return "openai", model, ""
    return None, model, f"cannot tell the provider type of {model!r}: write openai/{model} or anthropic/{model}"


#: The variables LiteLLM reads a kind's key from when ``api_key`` is not given (its docs' names).
LITELLM_KEY_VARS = {
    "azure": "AZURE_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "together": "TOGETHERAI_API_KEY",
    "fireworks": "FIREWORKS_AI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "xai": "XAI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
    "cerebras": "CEREBRAS_API_KEY",
    "deepinfra": "DEEPINFRA_API_KEY",
    "nvidia": "NVIDIA_NIM_API_KEY",
    "vllm": "HOSTED_VLLM_API_KEY",
    "lmstudio": "LM_STUDIO_API_KEY",
}
# Local servers whose LiteLLM api_base is the server's root: their OpenAI-compatible API is under /v1.
_ROOT_BASES = frozenset({"ollama", "vllm", "lmstudio"})


def litellm_kind(model: str) -> tuple[ProviderKind | None, str, str]:
    """For a ``<prefix>/<id>`` model that is no ``openai/``/``anthropic/`` one: (kind or None, id, reason)."""
    prefix, sep, rest = model.partition("/")
    if not sep or not rest:
        return None, model, f"cannot tell the provider type of {model!r}: write <provider>/{model}"
    kind = find_kind(prefix)
    if kind is None:
        return None, model, f"kind {prefix!r} is not supported yet: this entry is not served"
    return kind, rest, ""


#: LiteLLM's names for settings that kinds call otherwise.
_OPTION_NAMES = {"vertex_project": "project", "vertex_location": "location", "aws_region_name": "region"}


def litellm_kind_options(kind: ProviderKind, params: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """The kind's own settings in LiteLLM ``litellm_params``: option -> (LiteLLM key, raw value).

    A key with the option's own name (``api_version``) or LiteLLM's name for it (``vertex_project``)."""
    out: dict[str, tuple[str, Any]] = {}
    for key, value in params.items():
        option = _OPTION_NAMES.get(key, key)
        if option in kind.options and value is not None and key not in ("api_key", "model"):
            out[option] = (key, value)
    return out


def litellm_kind_base_url(kind: ProviderKind, value: str) -> str:
    """LiteLLM's ``api_base`` for ``kind`` as our ``base_url`` (local servers: ``/v1`` added)."""
    base = value.rstrip("/")
    if kind.name in _ROOT_BASES and urlsplit(base).path in ("", "/"):
        base += "/v1"
    if kind.name == "azure":
        base = base.removesuffix("/openai")
    return base


def litellm_base_url(api: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        return _DEFAULT_BASE[api]
    base = value.rstrip("/")
    if api == "anthropic":
        # LiteLLM accepts Anthropic bases with or without the path; ours have none.
        base = base.removesuffix("/v1/messages").removesuffix("/v1")
    return base


@dataclass(frozen=True)
class LiteLLMTarget:
    """What serves one ``model_list`` entry: an ``api`` (``openai``/``anthropic``), a kind, or a Google deployment."""

    upstream: str
    api: str | None = None
    kind: ProviderKind | None = None
    google: GoogleDeployment | None = None

    def known_params(self, params: Mapping[str, Any], common: Iterable[str]) -> frozenset[str]:
        """The ``litellm_params`` keys this target reads, besides ``common`` (the reader's own)."""
        known = frozenset(common)
        if self.kind is not None and self.kind.name == "azure":
            known |= _AZURE_PARAMS
        if self.google is not None:
            return known | GOOGLE_PARAMS
        if self.kind is not None:
            return known | {key for key, _ in litellm_kind_options(self.kind, params).values()}
        return known


def litellm_target(params: Mapping[str, Any], env: Mapping[str, str]) -> LiteLLMTarget:
    """The target of an entry's ``litellm_params`` (``model`` a string); the one reading of a LiteLLM model for
    the import and for serving a config. Raises UnsupportedModel (its reason) for a model no kind serves, and
    ValueError (``<param>: <problem>``) for Google settings that cannot be used."""
    model = params["model"]
    api, upstream, reason = litellm_api(model)
    if api is not None:
        return LiteLLMTarget(upstream, api=api)
    google = google_deployment(model, params, env)  # gemini/, vertex_ai/ (litellm_google.py)
    if google is not None:
        return LiteLLMTarget(google.model, kind=get_kind(google.kind), google=google)
    kind, upstream, reason = litellm_kind(model)
    if kind is None:
        raise UnsupportedModel(reason)
    return LiteLLMTarget(upstream, kind=kind)


def unique_name(base: str, taken: Collection[str]) -> str:
    """``base``, or ``base-2``, ``base-3``, ... : the first not in ``taken`` (provider names)."""
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def _kind_entry(
    kind: ProviderKind, params: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], str | KeyRef | None]:
    """Spec fields of a ``kind`` provider for LiteLLM ``litellm_params``, and its key."""
    data: dict[str, Any] = {"kind": kind.name}
    options: dict[str, str] = {}

    def plain(value: Any, name: str) -> str | None:
        if value is None:
            return None
        ref = key_from_string(str(value), env)
        if isinstance(ref, KeyRef):
            found = ref.env.get(ref.target) if ref.kind == "env" else None
            found = found or (os.environ.get(ref.target) if ref.kind == "env" else None)
            if not found:
                raise ValueError(f"litellm_params.{name}: {ref} is not set")
            return found
        return ref

    base = plain(params.get("api_base", params.get("base_url")), "api_base")
    if base:
        data["base_url"] = litellm_kind_base_url(kind, base)
    key: str | KeyRef | None = _key_of(params.get("api_key"), env)
    for option, (name, value) in litellm_kind_options(kind, params).items():
        options[option] = plain(value, name) or ""
    if kind.name == "azure":
        if params.get("azure_ad_token") is not None:
            key, options["auth"] = _key_of(params["azure_ad_token"], env), "bearer"
        if params.get("tenant_id") is not None and params.get("client_id") is not None:
            options["tenant_id"] = plain(params["tenant_id"], "tenant_id") or ""
            options["client_id"] = plain(params["client_id"], "client_id") or ""
            options["auth"] = "entra"
            key = _key_of(params.get("client_secret"), env)
    variable = LITELLM_KEY_VARS.get(kind.name) or kind.default_key_env(options)
    if key is None and variable:
        key = KeyRef("env", variable, optional=True, env=env)
    if options:
        data["options"] = options
    return data, key


def _google_entry(
    google: GoogleDeployment, params: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], str | KeyRef | None]:
    """Spec fields of a ``gemini`` / ``vertex_ai`` / ``vertex_anthropic`` provider, and its key."""
    data: dict[str, Any] = {"kind": google.kind}
    if google.base_url:
        data["base_url"] = google.base_url
    if google.options:
        data["options"] = dict(google.options)
    key: str | KeyRef | None = None
    if google.kind == "gemini":
        key = _key_of(params.get("api_key"), env)
        for variable in google.key_vars:
            if key is None and (env.get(variable) or os.environ.get(variable)):
                key = KeyRef("env", variable, env=env)
        if key is None:
            key = KeyRef("env", google.key_vars[0], optional=True, env=env)
    elif google.credentials is not None:
        how, value = google.credentials
        key = value if how == "literal" else KeyRef(how, value, env=env)
    return data, key


def _key_of(value: Any, env: Mapping[str, str]) -> str | KeyRef | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("litellm_params: keys must be strings")
    return key_from_string(value, env)


def _key(api: str, value: Any, env: Mapping[str, str]) -> str | KeyRef:
    if value is None:
        return KeyRef("env", DEFAULT_KEY_VARS[api], optional=True, env=env)
    if not isinstance(value, str):
        raise ValueError("litellm_params.api_key: must be a string")
    key = key_from_string(value, env)
    assert key is not None
    return key


def litellm_provider_name(api: str, base_url: str | None) -> str:
    if base_url is None or base_url == _DEFAULT_BASE.get(api):
        return api
    parts = urlsplit(base_url)
    host = (parts.hostname or "custom").replace(".", "-")
    return f"{api}-{host}" + (f"-{parts.port}" if parts.port else "")


def parse_litellm(text: str) -> ParsedFile:
    data = read_litellm(text)
    parsed = ParsedFile()
    for key in data:
        if key not in ("model_list", "environment_variables"):
            parsed.skipped.append(Issue(str(key), "LiteLLM proxy settings, not provider data: not imported"))
    env = litellm_environment(data)
    if env is None:
        parsed.errors.append(Issue("environment_variables", "must be a mapping"))
        env = {}
    lines = _lines(text)
    groups: dict[str, Entry] = {}
    for i, item in enumerate(data["model_list"]):
        name = item.get("model_name") if isinstance(item, Mapping) else None
        where = f"model_list[{i}]" + (f" {name!r}" if isinstance(name, str) else "")
        where += f" (line {lines[i]})" if i in lines else ""
        try:
            _entry(item, where, env, groups, parsed)
        except ValueError as exc:
            parsed.errors.append(Issue(where, str(exc)))
    parsed.entries.extend(groups.values())
    return parsed


def _entry(item: Any, where: str, env: Mapping[str, str], groups: dict[str, Entry], parsed: ParsedFile) -> None:
    if not isinstance(item, Mapping):
        raise ValueError("must be a mapping with model_name and litellm_params")
    name, params = item.get("model_name"), item.get("litellm_params")
    if not isinstance(name, str) or not name:
        raise ValueError("needs a model_name string")
    if not isinstance(params, Mapping) or not isinstance(params.get("model"), str):
        raise ValueError("needs litellm_params with a 'model' string")
    if "*" in name or "*" in params["model"]:
        parsed.skipped.append(Issue(where, "wildcard routes are not imported: clients use <provider>/<model>"))
        return
    try:
        target = litellm_target(params, env)
    except UnsupportedModel as exc:
        parsed.skipped.append(Issue(where, str(exc)))
        return
    api, kind, google, upstream = target.api, target.kind, target.google, target.upstream
    ignored = sorted(set(params) - target.known_params(params, _IMPORTED_PARAMS)) + (
        ["model_info"] if "model_info" in item else []
    )
    extra_keys = sorted(set(item) - {"model_name", "litellm_params", "model_info"})
    if extra_keys:
        raise ValueError(f"unknown field(s): {', '.join(extra_keys)}")
    if ignored:
        parsed.skipped.append(Issue(where, f"not imported (no equivalent): {', '.join(ignored)}"))
    headers = params.get("extra_headers", params.get("headers")) or {}
    base_url: str | None
    if kind is None:
        assert api is not None
        base_url = litellm_base_url(api, params.get("api_base", params.get("base_url")))
        key: str | KeyRef | None = _key(api, params.get("api_key"), env)
        data: dict[str, Any] = {"api": api, "base_url": base_url, "headers": headers}
        name_of = api
    elif google is not None:
        data, key = _google_entry(google, params, env)
        data["headers"] = headers
        base_url, name_of = data.get("base_url"), google.kind
    else:
        data, key = _kind_entry(kind, params, env)
        data["headers"] = headers
        base_url, name_of = data.get("base_url"), kind.name
    if "timeout" in params:
        data["timeout"] = params["timeout"]
    # Deployments sharing everything but the model are one provider.
    identity = json.dumps([data, str(key) if isinstance(key, KeyRef) else key], sort_keys=True, default=str)
    entry = groups.get(identity)
    if entry is None:
        provider = unique_name(litellm_provider_name(name_of, base_url), {e.data["name"] for e in groups.values()})
        entry = Entry(f"{where} -> provider {provider!r}", {"name": provider, **data, "models": {}}, key)
        groups[identity] = entry
    models: dict[str, str] = entry.data["models"]
    if name in models:
        prior = models[name]
        detail = "a duplicate deployment" if prior == upstream else f"already mapped to {prior!r}"
        parsed.skipped.append(Issue(where, f"{detail} on provider {entry.data['name']!r}: llmroute keeps one"))
        return
    models[name] = upstream
