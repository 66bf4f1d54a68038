"""OpenAI Chat Completions request -> Anthropic Messages request.

This module maps the request's parameters (max_tokens, thinking, sampling, stop, metadata, output
format) and puts the pieces together; the messages are ``to_anthropic_turns.py``, their content
blocks ``to_anthropic_content.py``, the tools ``to_anthropic_tools.py``.
"""

from __future__ import annotations

from typing import Any

from .body import is_int, is_number, request_messages, single_choice, token_cap
from .mapping import ADAPTIVE_EFFORTS, ANTHROPIC_MIN_THINKING_BUDGET, THINKING_BUDGETS
from .state import TranslationState
from .to_anthropic_tools import EMPTY_SCHEMA, tool_choice, tool_defs
from .to_anthropic_turns import MessageConverter, Turn, build_turns, merge_adjacent, turn_content
from .tools import ANTHROPIC_NAME_MAX, ToolNames
from .types import SAMPLING_REMOVED_VERSION, TranslationError, TranslationOptions
from .web_search import ANTHROPIC_NAME, anthropic_tool, is_web_search_choice

_NO_REASONING = (None, "none")


def _thinking(body: dict[str, Any], options: TranslationOptions) -> tuple[dict[str, Any] | None, str | None]:
    """(thinking object, adaptive effort) requested by ``reasoning_effort``."""
    explicit = body.get("thinking")  # LiteLLM-style pass-through of an Anthropic thinking object
    if isinstance(explicit, dict) and explicit.get("type") in ("enabled", "adaptive"):
        return dict(explicit), None
    effort = body.get("reasoning_effort")
    if effort in _NO_REASONING:
        return None, None
    if not isinstance(effort, str) or effort not in THINKING_BUDGETS:
        raise TranslationError(f"unsupported reasoning_effort {effort!r}", "reasoning_effort")
    if options.thinking_style == "adaptive":
        return {"type": "adaptive"}, ADAPTIVE_EFFORTS[effort]
    return {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}, None


def _last_tool_turn_is_signed(turns: list[Turn]) -> bool:
    for turn in reversed(turns):
        if turn.role == "assistant" and any(b["type"] == "tool_use" for b in turn.blocks):
            return turn.blocks[0]["type"] in ("thinking", "redacted_thinking")
    return True


def _stop_sequences(stop: Any) -> list[str]:
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list):
        return []
    return [s for s in stop if isinstance(s, str) and s.strip()]


def openai_to_anthropic_request(
    body: dict[str, Any], options: TranslationOptions
) -> tuple[dict[str, Any], TranslationState]:
    """Translate an OpenAI Chat Completions request body into an Anthropic Messages request body."""
    messages = request_messages(body)
    single_choice(body, "this model's API")

    names = ToolNames(ANTHROPIC_NAME_MAX)
    ctx = TranslationState(tool_names=names)
    search = anthropic_tool(body.get("web_search_options"), ctx.warnings)
    if search is not None:
        names.reserve(ANTHROPIC_NAME)  # the server tool's fixed name: a client function of that name is renamed
    declared = tool_defs(body.get("tools"), names)
    converter = MessageConverter(names)
    converter.run(messages)
    names.register([name for name, _ in declared] + converter.tool_names_used)
    for _, _, blocks in converter.entries:
        for block in blocks:
            if block["type"] == "tool_use":
                block["name"] = names.upstream(block["name"])
    turns = build_turns(converter.entries)
    if not turns:
        raise TranslationError("messages must contain at least one user or assistant message", "messages")

    out: dict[str, Any] = {}
    if "model" in body:
        out["model"] = body["model"]

    thinking, effort = _thinking(body, options)
    if thinking is not None and not _last_tool_turn_is_signed(turns):
        # 5.2 step 6: Anthropic rejects a tool-use continuation without the signed thinking block.
        ctx.warnings.append("thinking disabled: the last tool-use turn carries no signed thinking block")
        thinking = effort = None
    if thinking is None:
        for turn in turns:  # unsigned history only matters with thinking on; drop it otherwise
            if turn.role == "assistant":
                turn.blocks = [b for b in turn.blocks if b["type"] not in ("thinking", "redacted_thinking")]
        turns = merge_adjacent([t for t in turns if t.results or t.blocks])

    max_tokens = token_cap(body, ("max_completion_tokens", "max_tokens"))
    explicit_cap = max_tokens is not None
    if max_tokens is None:
        max_tokens = options.default_max_tokens
    if thinking is not None and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        budget = budget if is_int(budget) else ANTHROPIC_MIN_THINKING_BUDGET
        if max_tokens <= budget:
            if not explicit_cap:
                max_tokens = budget + options.default_max_tokens
            elif max_tokens > ANTHROPIC_MIN_THINKING_BUDGET:
                thinking["budget_tokens"] = max(ANTHROPIC_MIN_THINKING_BUDGET, max_tokens // 2)
            else:
                ctx.warnings.append("thinking disabled: max_tokens leaves no room for the minimum budget")
                thinking = effort = None
    out["max_tokens"] = max_tokens

    system = converter.system
    if system:
        if len(system) == 1 and len(system[0]) == 2:
            out["system"] = system[0]["text"]
        else:
            out["system"] = system
    out["messages"] = [{"role": t.role, "content": turn_content(t)} for t in turns]

    tools: list[dict[str, Any]] = [{"name": names.upstream(name), **spec} for name, spec in declared]
    if search is not None:
        tools.append(search)
    if is_web_search_choice(body.get("tool_choice")) and search is None:
        raise TranslationError("tool_choice names the hosted web search, which is not enabled", "tool_choice")
    if tools:
        out["tools"] = tools
        if search is not None and is_web_search_choice(body.get("tool_choice")):
            choice: dict[str, Any] | None = {"type": "tool", "name": ANTHROPIC_NAME}
        else:
            choice = tool_choice(body.get("tool_choice"), names)
        if thinking is not None and choice is not None and choice["type"] in ("any", "tool"):
            ctx.warnings.append("forced tool_choice downgraded to auto: Anthropic rejects it with thinking (D-2)")
            choice = {"type": "auto"}
        if body.get("parallel_tool_calls") is False:
            choice = choice or {"type": "auto"}
            if choice["type"] != "none":
                choice["disable_parallel_tool_use"] = True
        if choice is not None:
            out["tool_choice"] = choice
    else:
        used = [names.upstream(n) for n in dict.fromkeys(converter.tool_names_used)]
        if used:  # tool blocks in history need declared tools (5.2 step 5); forbid new calls
            out["tools"] = [{"name": n, "input_schema": dict(EMPTY_SCHEMA)} for n in used]
            out["tool_choice"] = {"type": "none"}

    stop = _stop_sequences(body.get("stop"))
    if stop:
        out["stop_sequences"] = stop

    if options.anthropic_version < SAMPLING_REMOVED_VERSION:
        temperature = body.get("temperature")
        top_p = body.get("top_p")
        if thinking is None and is_number(temperature):
            out["temperature"] = min(max(temperature, 0), 1)
        elif is_number(top_p) and (thinking is None or 0.95 <= top_p <= 1):
            out["top_p"] = top_p

    user = body.get("user")
    if not isinstance(user, str) or not user:
        user = body.get("safety_identifier")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}

    if thinking is not None:
        out["thinking"] = thinking
        ctx.thinking_requested = True
    output_config: dict[str, Any] = {}
    if effort is not None:
        output_config["effort"] = effort
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec_ = response_format.get("json_schema")
        schema = spec_.get("schema") if isinstance(spec_, dict) else None
        if isinstance(schema, dict):
            output_config["format"] = {"type": "json_schema", "schema": schema}
    if output_config:
        out["output_config"] = output_config

    stream = body.get("stream")
    if isinstance(stream, bool):
        out["stream"] = stream
        ctx.stream = stream
    stream_options = body.get("stream_options")
    ctx.include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return out, ctx
