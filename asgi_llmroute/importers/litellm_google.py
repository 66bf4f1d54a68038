"""LiteLLM's Google deployments: ``gemini/...``, ``vertex_ai/gemini-*`` and ``vertex_ai/claude-*``.

- ``gemini/<model>`` -> ``kind = "gemini"`` (the Gemini API); the key is ``api_key``, else LiteLLM's
  ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``.
- ``vertex_ai/<model>`` (and ``vertex_ai_beta/``, and a bare ``gemini-*`` id, which LiteLLM sends to
  Vertex) -> ``kind = "vertex_ai"``; ``vertex_ai/claude-*`` (LiteLLM's name for Claude on Vertex,
  ``vertex_ai/claude-sonnet-4-5@20250929``) -> ``kind = "vertex_anthropic"``. Other Model Garden
  models (``vertex_ai/meta/...``, numeric endpoint ids) have no kind and are skipped.
- ``vertex_project`` / ``vertex_ai_project`` (else ``VERTEXAI_PROJECT``, else the ``project_id`` of
  the credentials) -> ``project``; ``vertex_location`` / ``vertex_ai_location`` (else
  ``VERTEXAI_LOCATION``, else LiteLLM's ``us-central1``) -> ``location``.
- ``vertex_credentials`` / ``vertex_ai_credentials`` (else ``VERTEXAI_CREDENTIALS``): the JSON itself
  (a string, or a YAML mapping), the path of a JSON key file, or ``os.environ/NAME`` holding either.
  It becomes the provider's key (a ``file:`` reference for a path). Without it the kind uses
  ``GOOGLE_APPLICATION_CREDENTIALS`` or Application Default Credentials, as LiteLLM does.
- ``api_base``: for Vertex, LiteLLM's full URL (``.../v1/projects/p/locations/l/publishers/...``) is
  cut to its host (and API version); for Gemini, ``.../models/...`` is cut to the version root.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from ..secret import litellm_env_var

__all__ = ["GOOGLE_PARAMS", "GoogleDeployment", "UnsupportedModel", "google_deployment"]

#: ``litellm_params`` read for Google deployments (others are listed as ignored).
GOOGLE_PARAMS = frozenset(
    {
        "vertex_project",
        "vertex_ai_project",
        "vertex_location",
        "vertex_ai_location",
        "vertex_credentials",
        "vertex_ai_credentials",
    }
)
_VERTEX_PREFIXES = ("vertex_ai/", "vertex_ai_beta/")
_VERTEX_PATH = re.compile(r"/(v1|v1beta1)/projects/")
LITELLM_DEFAULT_LOCATION = "us-central1"


class UnsupportedModel(ValueError):
    """A Google model no kind serves (the entry is skipped, not an error)."""


@dataclass(frozen=True)
class GoogleDeployment:
    """What a Google ``model_list`` entry asks for, independent of how the caller stores keys."""

    kind: Literal["gemini", "vertex_ai", "vertex_anthropic"]
    model: str
    options: dict[str, str] = field(default_factory=dict)
    base_url: str | None = None
    #: The key: ("literal", value), ("env", NAME) or ("file", absolute path); None: the kind's default.
    credentials: tuple[Literal["literal", "env", "file"], str] | None = None
    #: LiteLLM's variables for the key when none is given, first set wins.
    key_vars: tuple[str, ...] = ()


def _lookup(name: str, env: Mapping[str, str]) -> str | None:
    return env.get(name) or os.environ.get(name) or None


def _plain(value: Any, name: str, env: Mapping[str, str]) -> str | None:
    """A setting that is not a secret, ``os.environ/NAME`` read now."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be a string")
    variable = litellm_env_var(value)
    if variable is None:
        return value
    found = _lookup(variable, env)
    if found is None:
        raise ValueError(f"{name}: the environment variable {variable} is not set")
    return found


def _first(params: Mapping[str, Any], *names: str) -> tuple[str, Any]:
    for name in names:
        if params.get(name) is not None:
            return name, params[name]
    return names[0], None


def _credentials(
    params: Mapping[str, Any], env: Mapping[str, str], cwd: Path
) -> tuple[Literal["literal", "env", "file"], str] | None:
    name, value = _first(params, "vertex_credentials", "vertex_ai_credentials")
    if value is None:
        return ("env", "VERTEXAI_CREDENTIALS") if _lookup("VERTEXAI_CREDENTIALS", env) else None
    if isinstance(value, Mapping):  # the JSON written as YAML
        return "literal", json.dumps(dict(value))
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: must be a service-account JSON, the path of one, or os.environ/NAME")
    variable = litellm_env_var(value)
    if variable is not None:
        return "env", variable
    text = value.strip()
    if text.startswith("{"):
        return "literal", text
    path = Path(text).expanduser()
    path = path if path.is_absolute() else cwd / path  # LiteLLM opens it from its working directory
    if not path.is_file():
        # Never echo the value: a mangled JSON key would be printed.
        raise ValueError(f"{name}: neither a JSON object nor the path of an existing file")
    return "file", str(path)


def _credentials_project(credentials: tuple[str, str] | None, env: Mapping[str, str]) -> str | None:
    """The ``project_id`` of service-account credentials, when they can be read now (LiteLLM's fallback)."""
    if credentials is None:
        return None
    how, value = credentials
    text = _lookup(value, env) if how == "env" else value
    if text is not None and (how == "file" or not text.lstrip().startswith("{")):
        try:  # a path (given, or held by the variable)
            text = Path(text).read_text(encoding="utf-8")
        except (OSError, ValueError):
            return None
    try:
        info = json.loads(text) if text else None
    except ValueError:
        return None
    project = info.get("project_id") if isinstance(info, dict) else None
    return project if isinstance(project, str) and project else None


def _vertex_base(value: str) -> tuple[str, str | None]:
    """(host, API version or None) of LiteLLM's Vertex ``api_base`` (which may be a whole model URL)."""
    base = value.rstrip("/")
    match = _VERTEX_PATH.search(urlsplit(base).path)
    if match is None:
        return base, None
    return base[: base.index(match.group(0))], match.group(1)


def _gemini_base(value: str) -> str:
    base = value.rstrip("/")
    cut = base.find("/models/")
    return base[:cut] if cut >= 0 else base


def google_deployment(
    model: str, params: Mapping[str, Any], env: Mapping[str, str], *, cwd: Path | None = None
) -> GoogleDeployment | None:
    """The deployment for a Google ``litellm_params.model``, None for other models.

    :class:`ValueError` (naming the parameter, never a secret) for settings that cannot work;
    :class:`UnsupportedModel` for Vertex models no kind serves.
    """
    cwd = cwd or Path.cwd()
    base_value = _plain(params.get("api_base", params.get("base_url")), "api_base", env)
    if model.startswith("gemini/"):
        rest = model.removeprefix("gemini/")
        if not rest:
            raise ValueError("model: gemini/ needs a model id")
        base = _gemini_base(base_value) if base_value else None
        return GoogleDeployment("gemini", rest, base_url=base, key_vars=("GEMINI_API_KEY", "GOOGLE_API_KEY"))
    if model.startswith(_VERTEX_PREFIXES):
        rest = model.partition("/")[2]
    elif model.startswith("gemini-"):
        rest = model  # LiteLLM: a Gemini model without a prefix is a Vertex AI one
    else:
        return None
    if not rest or "/" in rest or rest.isdigit():
        raise UnsupportedModel(
            f"{model!r}: only Gemini and Claude models on Vertex AI are served "
            "(not Model Garden partner models or endpoint ids)"
        )
    kind: Literal["vertex_ai", "vertex_anthropic"] = "vertex_anthropic" if rest.startswith("claude") else "vertex_ai"
    credentials = _credentials(params, env, cwd)
    name, value = _first(params, "vertex_project", "vertex_ai_project")
    project = _plain(value, name, env) or _lookup("VERTEXAI_PROJECT", env) or _credentials_project(credentials, env)
    if not project:
        raise ValueError("vertex_project: not set (nor VERTEXAI_PROJECT, nor a project_id in vertex_credentials)")
    name, value = _first(params, "vertex_location", "vertex_ai_location")
    location = _plain(value, name, env) or _lookup("VERTEXAI_LOCATION", env) or LITELLM_DEFAULT_LOCATION
    options = {"project": project, "location": location}
    base = None
    if base_value:
        base, version = _vertex_base(base_value)
        if version is not None and version != "v1" and kind == "vertex_ai":
            options["api_version"] = version
    return GoogleDeployment(kind, rest, options, base, credentials)
