"""Constant mapping tables shared by both directions."""

from __future__ import annotations

from typing import Any

# Anthropic stop_reason -> OpenAI finish_reason; anything else (null, unknown) -> "stop".
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}

# OpenAI finish_reason -> Anthropic stop_reason; anything else -> "end_turn" (never null).
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop_reason: Any) -> str:
    """OpenAI ``finish_reason`` for an Anthropic ``stop_reason``."""
    return _FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def stop_reason(finish: Any, *, saw_tool: bool = False, saw_refusal: bool = False) -> str:
    """Anthropic ``stop_reason`` for an OpenAI ``finish_reason``.

    ``tool_use`` whenever tool calls were emitted (unless the output was cut by the token cap),
    ``refusal`` when the upstream sent a refusal (unless cut by the token cap).
    """
    reason = _STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
    if reason == "max_tokens":
        return reason
    if saw_tool:
        return "tool_use"
    if saw_refusal:
        return "refusal"
    return reason


# reasoning_effort -> thinking budget (LiteLLM's defaults; configuration, not protocol).
THINKING_BUDGETS = {
    "minimal": 1024,
    "low": 1024,
    "medium": 2048,
    "high": 4096,
    "xhigh": 8192,
    "max": 16384,
}

# reasoning_effort -> output_config.effort for adaptive-thinking models.
ADAPTIVE_EFFORTS = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
    "max": "max",
}

ANTHROPIC_MIN_THINKING_BUDGET = 1024
_OPENAI_EFFORTS = frozenset(("minimal", "low", "medium", "high", "xhigh", "max"))


def reasoning_effort(thinking: Any, output_config: Any) -> str | None:
    """OpenAI ``reasoning_effort`` for an Anthropic ``thinking`` object, or None."""
    if not isinstance(thinking, dict):
        return None
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            return "medium"
        if budget >= 4096:
            return "high"
        if budget >= 2048:
            return "medium"
        if budget >= 1024:
            return "low"
        return "minimal"
    if kind == "adaptive":
        effort = output_config.get("effort") if isinstance(output_config, dict) else None
        return effort if isinstance(effort, str) and effort in _OPENAI_EFFORTS else "medium"
    return None
