"""Client tools and tool choice -> Gemini ``functionDeclarations`` and ``functionCallingConfig``
(parameter schemas reduced to what Gemini accepts by ``schema.py``)."""

from __future__ import annotations

from typing import Any

from ..tools import anthropic_tool_choice, anthropic_tools, openai_function_tools, openai_tool_choice
from .ids import GeminiToolNames
from .schema import reduce_schema

__all__ = ["anthropic_declarations", "anthropic_calling_config", "openai_calling_config", "openai_declarations"]

_ANTHROPIC_MODES = {"auto": "AUTO", "any": "ANY", "none": "NONE"}


def _declaration(
    names: GeminiToolNames, name: str, description: Any, schema: Any, param: str, warnings: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": names.upstream(name)}
    if isinstance(description, str) and description:
        out["description"] = description
    if schema is not None:
        reduced = reduce_schema(schema, param, warnings)
        if reduced.get("properties") or reduced.get("type") != "object" or len(reduced) > 2:
            out["parametersJsonSchema"] = reduced
    return out


def openai_declarations(tools: Any, names: GeminiToolNames, warnings: list[str]) -> list[dict[str, Any]]:
    """Function declarations of OpenAI Chat ``tools`` (function tools only)."""
    return [
        _declaration(
            names,
            function["name"],
            function.get("description"),
            function.get("parameters"),
            f"{param}.function.parameters",
            warnings,
        )
        for param, function in openai_function_tools(tools, "Gemini")
    ]


def openai_calling_config(choice: Any, names: GeminiToolNames) -> dict[str, Any] | None:
    """``functionCallingConfig`` of an OpenAI ``tool_choice`` (None: Gemini's default)."""
    parsed = openai_tool_choice(choice)
    if parsed is None:
        return None
    mode, listed = parsed
    if mode == "none":
        return {"mode": "NONE"}
    if listed is None:
        return {"mode": "AUTO" if mode == "auto" else "ANY"}
    # AUTO cannot restrict the set; VALIDATED with names can.
    return {
        "mode": "VALIDATED" if mode == "auto" else "ANY",
        "allowedFunctionNames": [names.upstream(n) for n in listed],
    }


def anthropic_declarations(
    tools: Any, names: GeminiToolNames, warnings: list[str]
) -> tuple[list[dict[str, Any]], set[str]]:
    """(function declarations of Anthropic ``tools``, names of the hosted tools dropped)."""
    custom, hosted = anthropic_tools(tools)
    for param, kind, _ in hosted:
        warnings.append(f"{param}: hosted tool {kind!r} has no Gemini equivalent, dropped")
    declarations = [
        _declaration(
            names, tool["name"], tool.get("description"), tool.get("input_schema"), f"{param}.input_schema", warnings
        )
        for param, tool in custom
    ]
    return declarations, {name for _, _, name in hosted if name is not None}


def anthropic_calling_config(choice: Any, names: GeminiToolNames, hosted: set[str]) -> dict[str, Any] | None:
    """``functionCallingConfig`` of an Anthropic ``tool_choice`` (None: Gemini's default)."""
    parsed = anthropic_tool_choice(choice, hosted, "Gemini")
    if parsed is None:
        return None
    kind, name = parsed
    if name is not None:
        return {"mode": "ANY", "allowedFunctionNames": [names.upstream(name)]}
    return {"mode": _ANTHROPIC_MODES[kind]}
