"""Client sampling, limits, output format and reasoning settings -> Gemini ``generationConfig``."""

from __future__ import annotations

from typing import Any

from ..body import is_int, is_number, token_cap
from ..mapping import THINKING_BUDGETS
from ..types import TranslationError
from .schema import reduce_schema

__all__ = ["MAX_STOP_SEQUENCES", "anthropic_generation_config", "openai_generation_config", "thinking_levels"]

#: Stop sequences Gemini accepts per request; more are dropped (with a warning).
MAX_STOP_SEQUENCES = 5

_THINKING_LEVELS = {
    "none": "MINIMAL",
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
    "max": "HIGH",
}


def thinking_levels(model: str) -> bool:
    """Gemini 3 and later take ``thinkingLevel``; 2.x models ``thinkingBudget``."""
    name = model.rsplit("/", 1)[-1]
    return name.startswith("gemini-") and name[7:8].isdigit() and int(name[7:8]) >= 3


def _stop(value: Any, param: str, warnings: list[str]) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise TranslationError("stop sequences must be strings", param)
    stops = [s for s in value if s]
    if len(stops) > MAX_STOP_SEQUENCES:
        warnings.append(f"{param}: Gemini takes at most {MAX_STOP_SEQUENCES} stop sequences, the rest dropped")
        stops = stops[:MAX_STOP_SEQUENCES]
    return stops


def _sampling(body: dict[str, Any], config: dict[str, Any], pairs: tuple[tuple[str, str], ...]) -> None:
    for client_key, gemini_key in pairs:
        value = body.get(client_key)
        if value is None:
            continue
        if not is_number(value, finite=True):
            raise TranslationError(f"{client_key} must be a number", client_key)
        config[gemini_key] = value


def _integer(body: dict[str, Any], config: dict[str, Any], client_key: str, gemini_key: str) -> None:
    value = body.get(client_key)
    if value is not None:
        if not is_int(value):
            raise TranslationError(f"{client_key} must be an integer", client_key)
        config[gemini_key] = value


def _common(
    body: dict[str, Any], config: dict[str, Any], max_keys: tuple[str, ...], stop_key: str, warnings: list[str]
) -> None:
    """temperature, top_p, the output-token cap and the stop sequences, named alike by both APIs."""
    _sampling(body, config, (("temperature", "temperature"), ("top_p", "topP")))
    cap = token_cap(body, max_keys)
    if cap is not None:
        config["maxOutputTokens"] = cap
    stops = _stop(body.get(stop_key), stop_key, warnings)
    if stops:
        config["stopSequences"] = stops


def _response_format(value: Any, config: dict[str, Any], param: str, warnings: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise TranslationError("response_format must be an object", param)
    kind = value.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
        return
    if kind == "json_schema":
        spec = value.get("json_schema") if "json_schema" in value else value
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise TranslationError("json_schema needs a 'schema' object", f"{param}.json_schema.schema")
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = reduce_schema(schema, f"{param}.json_schema.schema", warnings)
        return
    raise TranslationError(f"response_format type {kind!r} cannot be sent to Gemini", f"{param}.type")


def _effort_thinking(effort: Any, levels: bool, include: bool) -> dict[str, Any] | None:
    if effort is None:
        return None
    if not isinstance(effort, str) or (effort not in THINKING_BUDGETS and effort != "none"):
        raise TranslationError(f"unsupported reasoning_effort {effort!r}", "reasoning_effort")
    if levels:
        config: dict[str, Any] = {"thinkingLevel": _THINKING_LEVELS[effort]}
    else:
        config = {"thinkingBudget": 0 if effort == "none" else THINKING_BUDGETS[effort]}
    if include and effort != "none":
        config["includeThoughts"] = True
    return config


def _anthropic_thinking(body: dict[str, Any], levels: bool) -> dict[str, Any] | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    if not isinstance(thinking, dict):
        raise TranslationError("thinking must be an object", "thinking")
    kind = thinking.get("type")
    if kind == "disabled":
        return None
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not is_int(budget) or budget < 0:
            raise TranslationError("thinking.budget_tokens must be a non-negative integer", "thinking.budget_tokens")
        if levels:
            level = "LOW" if budget <= 1024 else "MEDIUM" if budget <= 8192 else "HIGH"
            return {"thinkingLevel": level, "includeThoughts": True}
        return {"thinkingBudget": budget, "includeThoughts": True}
    if kind == "adaptive":
        output_config = body.get("output_config")
        effort = output_config.get("effort") if isinstance(output_config, dict) else None
        if levels:
            level = _THINKING_LEVELS.get(effort, "HIGH") if isinstance(effort, str) else "HIGH"
            return {"thinkingLevel": level, "includeThoughts": True}
        return {"thinkingBudget": -1, "includeThoughts": True}
    raise TranslationError(f"unsupported thinking type {kind!r}", "thinking.type")


def openai_generation_config(
    body: dict[str, Any], levels: bool, include_thoughts: bool, warnings: list[str]
) -> dict[str, Any]:
    """``generationConfig`` of an OpenAI Chat request (``thinkingConfig`` from ``reasoning_effort``)."""
    config: dict[str, Any] = {}
    _common(body, config, ("max_completion_tokens", "max_tokens"), "stop", warnings)
    _integer(body, config, "seed", "seed")
    _sampling(body, config, (("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")))
    _response_format(body.get("response_format"), config, "response_format", warnings)
    thinking = _effort_thinking(body.get("reasoning_effort"), levels, include_thoughts)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


def anthropic_generation_config(body: dict[str, Any], levels: bool, warnings: list[str]) -> dict[str, Any]:
    """``generationConfig`` of an Anthropic Messages request (``thinkingConfig`` from ``thinking``)."""
    config: dict[str, Any] = {}
    _common(body, config, ("max_tokens",), "stop_sequences", warnings)
    _integer(body, config, "top_k", "topK")
    output_config = body.get("output_config")
    if isinstance(output_config, dict) and output_config.get("format") is not None:
        _response_format(output_config["format"], config, "output_config.format", warnings)
    thinking = _anthropic_thinking(body, levels)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config
