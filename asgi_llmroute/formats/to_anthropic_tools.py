"""OpenAI ``tools`` and ``tool_choice`` -> Anthropic tool definitions and tool choice."""

from __future__ import annotations

from typing import Any

from .tools import ToolNames, openai_function_tools, openai_tool_choice

__all__ = ["EMPTY_SCHEMA", "tool_choice", "tool_defs"]

#: The input schema of a tool declared without parameters.
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def tool_defs(tools: Any, names: ToolNames) -> list[tuple[str, dict[str, Any]]]:
    """(client name, Anthropic tool without name) for each declared function tool."""
    out: list[tuple[str, dict[str, Any]]] = []
    for _, function in openai_function_tools(tools, "this model's API"):
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


_MODES = {"auto": "auto", "none": "none", "required": "any"}


def tool_choice(choice: Any, names: ToolNames) -> dict[str, Any] | None:
    parsed = openai_tool_choice(choice)
    if parsed is None:
        return None
    mode, listed = parsed
    if mode == "function" and listed:
        return {"type": "tool", "name": names.upstream(listed[0])}
    # An allowed_tools subset cannot be expressed per request: only its mode is kept (documented as lossy).
    return {"type": _MODES[mode]}
