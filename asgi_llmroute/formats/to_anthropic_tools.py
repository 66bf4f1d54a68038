"""OpenAI ``tools`` and ``tool_choice`` -> Anthropic tool definitions and tool choice."""

from __future__ import annotations

from typing import Any

from .tools import ToolNames
from .types import TranslationError

__all__ = ["EMPTY_SCHEMA", "tool_choice", "tool_defs"]

#: The input schema of a tool declared without parameters.
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def tool_defs(tools: Any, names: ToolNames) -> list[tuple[str, dict[str, Any]]]:
    """(client name, Anthropic tool without name) for each declared function tool."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise TranslationError("tools must be an array", "tools")
    out: list[tuple[str, dict[str, Any]]] = []
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise TranslationError("tools entries must be objects", param)
        if tool.get("type") != "function":
            raise TranslationError(f"tool type {tool.get('type')!r} is not supported (function tools only)", param)
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise TranslationError("function tools need function.name", f"{param}.function.name")
        params = function.get("parameters")
        schema = dict(params) if isinstance(params, dict) else dict(EMPTY_SCHEMA)
        schema.setdefault("type", "object")
        spec: dict[str, Any] = {}
        description = function.get("description")
        if isinstance(description, str) and description:
            spec["description"] = description
        spec["input_schema"] = schema
        out.append((function["name"], spec))
    return out


def tool_choice(choice: Any, names: ToolNames) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return {"type": "auto"} if choice else None
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "function":
            function = choice.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if isinstance(name, str) and name:
                return {"type": "tool", "name": names.upstream(name)}
        elif kind == "allowed_tools":
            # The tool subset cannot be expressed per request; keep the mode (documented as lossy).
            allowed = choice.get("allowed_tools")
            mode = allowed.get("mode") if isinstance(allowed, dict) else None
            return {"type": "any"} if mode == "required" else {"type": "auto"}
    raise TranslationError("unsupported tool_choice", "tool_choice")
