"""OpenAI Chat Completions request -> Anthropic Messages request (SPEC 5.1, 5.2, 7.5)."""

from __future__ import annotations

from typing import Any, TypeGuard

from .mapping import ADAPTIVE_EFFORTS, ANTHROPIC_MIN_THINKING_BUDGET, THINKING_BUDGETS
from .state import TranslationState
from .tools import ANTHROPIC_NAME_MAX, ToolNames, parse_tool_arguments, sanitize_id
from .types import SAMPLING_REMOVED_VERSION, TranslationError, TranslationOptions

_IMAGE_TYPES = frozenset(("image/jpeg", "image/png", "image/gif", "image/webp"))
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
#: Text used where Anthropic needs non-whitespace text and the client gave none (5.2 step 5).
PLACEHOLDER_TEXT = "."
MISSING_RESULT_TEXT = "no result was provided"
_NO_REASONING = (None, "none")


class _Turn:
    __slots__ = ("role", "results", "blocks")

    def __init__(self, role: str) -> None:
        self.role = role
        self.results: list[dict[str, Any]] = []  # tool_result blocks (user turns), always first
        self.blocks: list[dict[str, Any]] = []


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text_block(text: str, part: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A text block, or None for empty/whitespace-only text (Anthropic rejects those, 2.3)."""
    if not text.strip():
        return None
    block: dict[str, Any] = {"type": "text", "text": text}
    if part is not None and isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _parse_data_url(url: str, param: str) -> tuple[str, str]:
    """``data:<mime>;base64,<data>`` -> (mime, data)."""
    head, sep, data = url[5:].partition(",")
    mime, _, encoding = head.partition(";")
    if not sep or encoding.lower() != "base64":
        raise TranslationError("only base64 data URLs are supported", param)
    return mime.strip().lower(), data


def _image_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise TranslationError("image_url.url must be a string", param)
    if url.startswith("data:"):
        mime, data = _parse_data_url(url, param)
        if mime == "application/pdf":
            return {"type": "document", "source": {"type": "base64", "media_type": mime, "data": data}}
        if mime not in _IMAGE_TYPES:
            raise TranslationError(f"unsupported image type {mime!r} (jpeg, png, gif, webp)", param)
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError("image_url.url must be an http(s) URL or a base64 data URL", param)


def _file_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    file = part.get("file")
    if not isinstance(file, dict):
        raise TranslationError("file part needs a 'file' object", param)
    data = file.get("file_data")
    if not isinstance(data, str) or not data:
        raise TranslationError("only inline file_data is supported (file_id cannot be sent to Anthropic)", param)
    mime, payload = _parse_data_url(data, param) if data.startswith("data:") else ("application/pdf", data)
    if mime == "application/pdf":
        block: dict[str, Any] = {"type": "document", "source": {"type": "base64", "media_type": mime, "data": payload}}
    elif mime in _IMAGE_TYPES:
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": payload}}
    else:
        raise TranslationError(f"unsupported file type {mime!r} (PDF or image)", param)
    filename = file.get("filename")
    if isinstance(filename, str) and filename:
        block["title"] = filename
    return block


def _user_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        block = _text_block(content)
        return [block] if block else []
    if content is None:
        return []
    if not isinstance(content, list):
        raise TranslationError("content must be a string or an array of parts", param)
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        p = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise TranslationError("content parts must be objects", p)
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise TranslationError("text part needs a string 'text'", p)
            block = _text_block(text, part)
            if block:
                blocks.append(block)
        elif kind == "image_url":
            blocks.append(_image_block(part, p))
        elif kind == "file":
            blocks.append(_file_block(part, p))
        elif kind == "input_audio":
            raise TranslationError("audio input is not supported by this model's API", p)
        else:
            raise TranslationError(f"unsupported content part type {kind!r}", p)
    return blocks


def _thinking_blocks(value: Any) -> list[dict[str, Any]]:
    """Signed thinking / redacted_thinking blocks echoed by the client, copied unchanged."""
    out: list[dict[str, Any]] = []
    if not isinstance(value, list):
        return out
    for block in value:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        signature = block.get("signature")
        if kind == "thinking" and isinstance(signature, str) and signature:
            thinking = block.get("thinking")
            out.append(
                {"type": "thinking", "thinking": thinking if isinstance(thinking, str) else "", "signature": signature}
            )
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            out.append({"type": "redacted_thinking", "data": block["data"]})
    return out


class _Converter:
    """Walks the OpenAI ``messages`` array and builds Anthropic ``system`` + turns (SPEC 5.2)."""

    def __init__(self, names: ToolNames) -> None:
        self.names = names
        self.system: list[dict[str, Any]] = []
        self.entries: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = []
        self.legacy_calls: dict[str, list[str]] = {}  # legacy function_call ids by name
        self.legacy_count = 0
        self.tool_names_used: list[str] = []

    def run(self, messages: list[Any]) -> None:
        for i, message in enumerate(messages):
            param = f"messages[{i}]"
            if not isinstance(message, dict):
                raise TranslationError("messages must be objects", param)
            role = message.get("role")
            content = message.get("content")
            if role in ("system", "developer"):
                self._system(content, f"{param}.content")
            elif role == "user":
                self.entries.append(("user", [], _user_blocks(content, f"{param}.content")))
            elif role == "assistant":
                self.entries.append(("assistant", [], self._assistant(message, param)))
            elif role == "tool":
                tool_id = message.get("tool_call_id")
                if not isinstance(tool_id, str):
                    raise TranslationError("tool messages need a string 'tool_call_id'", f"{param}.tool_call_id")
                self.entries.append(("user", [self._result(sanitize_id(tool_id), content, param)], []))
            elif role == "function":
                name = message.get("name")
                pending = self.legacy_calls.get(name) if isinstance(name, str) else None
                legacy_id = pending.pop(0) if pending else f"function_call_orphan_{i}"
                self.entries.append(("user", [self._result(legacy_id, content, param)], []))
            else:
                raise TranslationError(f"unsupported message role {role!r}", f"{param}.role")

    def _system(self, content: Any, param: str) -> None:
        if isinstance(content, str):
            block = _text_block(content)
            if block:
                self.system.append(block)
            return
        if not isinstance(content, list):
            raise TranslationError("system content must be a string or an array of text parts", param)
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise TranslationError("system content parts must be text", f"{param}[{j}]")
            block = _text_block(part["text"], part)
            if block:
                self.system.append(block)

    def _assistant(self, message: dict[str, Any], param: str) -> list[dict[str, Any]]:
        thinking = _thinking_blocks(message.get("thinking_blocks"))
        blocks: list[dict[str, Any]] = []
        content = message.get("content")
        if isinstance(content, str):
            block = _text_block(content)
            if block:
                blocks.append(block)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict):
                    raise TranslationError("content parts must be objects", f"{param}.content[{j}]")
                kind = part.get("type")
                text = part.get("text") if kind == "text" else part.get("refusal") if kind == "refusal" else None
                if isinstance(text, str):
                    block = _text_block(text, part)
                    if block:
                        blocks.append(block)
                elif kind in ("thinking", "redacted_thinking"):
                    thinking.extend(_thinking_blocks([part]))
                else:
                    raise TranslationError(f"unsupported assistant content part {kind!r}", f"{param}.content[{j}]")
        elif content is not None:
            raise TranslationError("content must be a string, an array of parts or null", f"{param}.content")
        refusal = message.get("refusal")
        if isinstance(refusal, str):
            block = _text_block(refusal)
            if block:
                blocks.append(block)
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for j, call in enumerate(calls):
                p = f"{param}.tool_calls[{j}]"
                if not isinstance(call, dict):
                    raise TranslationError("tool_calls entries must be objects", p)
                if call.get("type", "function") != "function":
                    raise TranslationError("only function tool calls are supported", f"{p}.type")
                function = call.get("function")
                call_id = call.get("id")
                if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                    raise TranslationError("tool call needs function.name", f"{p}.function")
                if not isinstance(call_id, str) or not call_id:
                    raise TranslationError("tool call needs an id", f"{p}.id")
                self.tool_names_used.append(function["name"])
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": sanitize_id(call_id),
                        "name": function["name"],
                        "input": parse_tool_arguments(function.get("arguments")),
                    }
                )
        legacy = message.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
            legacy_id = f"function_call_{self.legacy_count}"
            self.legacy_count += 1
            self.legacy_calls.setdefault(legacy["name"], []).append(legacy_id)
            self.tool_names_used.append(legacy["name"])
            blocks.append(
                {
                    "type": "tool_use",
                    "id": legacy_id,
                    "name": legacy["name"],
                    "input": parse_tool_arguments(legacy.get("arguments")),
                }
            )
        return thinking + blocks

    @staticmethod
    def _result(tool_id: str, content: Any, param: str) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id}
        if isinstance(content, str):
            if content.strip():
                block["content"] = content
        else:
            parts = _user_blocks(content, f"{param}.content")
            if parts:
                block["content"] = parts
        return block


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b["text"] for b in content if b.get("type") == "text")
    return ""


def _build_turns(entries: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]) -> list[_Turn]:
    """Merge consecutive same-role messages (tool results first) and apply the 5.2 step 5 repairs."""
    merged: list[_Turn] = []
    for role, results, blocks in entries:
        if role == "assistant" and not blocks:
            continue  # an assistant message without content is dropped (5.2 step 2)
        if not merged or merged[-1].role != role:
            merged.append(_Turn(role))
        merged[-1].results.extend(results)
        merged[-1].blocks.extend(blocks)

    turns: list[_Turn] = []
    pending: list[str] = []  # tool_use ids of the previous assistant turn still waiting for a result
    for turn in merged:
        if turn.role == "assistant":
            if pending:  # cannot happen after merging, kept for safety
                turns.append(_synthetic_results(pending))
            pending = [b["id"] for b in turn.blocks if b["type"] == "tool_use"]
            turns.append(turn)
            continue
        kept: list[dict[str, Any]] = []
        orphans: list[dict[str, Any]] = []
        for result in turn.results:
            if result["tool_use_id"] in pending:
                pending.remove(result["tool_use_id"])
                kept.append(result)
            else:  # not declared by the previous assistant turn: keep the data as text
                text = _text_block(_result_text(result))
                if text:
                    orphans.append(text)
        kept.extend(_synthetic_results(pending).results)
        pending = []
        turn.results = kept
        turn.blocks = orphans + turn.blocks
        if not turn.results and not turn.blocks:
            turn.blocks.append({"type": "text", "text": PLACEHOLDER_TEXT})
        turns.append(turn)
    if pending:
        turns.append(_synthetic_results(pending))
    if turns and turns[0].role == "assistant":
        placeholder = _Turn("user")
        placeholder.blocks.append({"type": "text", "text": PLACEHOLDER_TEXT})
        turns.insert(0, placeholder)
    if turns and turns[-1].role == "assistant":
        _strip_prefill(turns)
    return turns


def _merge_adjacent(turns: list[_Turn]) -> list[_Turn]:
    """Re-merge user turns that became adjacent after an assistant turn was emptied."""
    out: list[_Turn] = []
    for turn in turns:
        if out and out[-1].role == turn.role:
            out[-1].results.extend(turn.results)
            out[-1].blocks.extend(turn.blocks)
        else:
            out.append(turn)
    return out


def _synthetic_results(ids: list[str]) -> _Turn:
    turn = _Turn("user")
    turn.results = [{"type": "tool_result", "tool_use_id": i, "content": MISSING_RESULT_TEXT} for i in ids]
    return turn


def _strip_prefill(turns: list[_Turn]) -> None:
    """A final assistant turn is a prefill and must not end in whitespace (SPEC 2.2)."""
    blocks = turns[-1].blocks
    last = blocks[-1]
    if last["type"] == "text":
        text = last["text"].rstrip()
        if text:
            blocks[-1] = {**last, "text": text}
        else:
            blocks.pop()
    if not blocks:
        turns.pop()


def _turn_content(turn: _Turn) -> str | list[dict[str, Any]]:
    blocks = turn.results + turn.blocks
    if len(blocks) == 1 and blocks[0]["type"] == "text" and len(blocks[0]) == 2:
        return str(blocks[0]["text"])
    return blocks


def _tool_defs(tools: Any, names: ToolNames) -> list[tuple[str, dict[str, Any]]]:
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
        schema = dict(params) if isinstance(params, dict) else dict(_EMPTY_SCHEMA)
        schema.setdefault("type", "object")
        spec: dict[str, Any] = {}
        description = function.get("description")
        if isinstance(description, str) and description:
            spec["description"] = description
        spec["input_schema"] = schema
        out.append((function["name"], spec))
    return out


def _tool_choice(choice: Any, names: ToolNames) -> dict[str, Any] | None:
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


def _thinking(body: dict[str, Any], options: TranslationOptions) -> tuple[dict[str, Any] | None, str | None]:
    """(thinking object, adaptive effort) requested by ``reasoning_effort`` (SPEC 7.5)."""
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


def _last_tool_turn_is_signed(turns: list[_Turn]) -> bool:
    for turn in reversed(turns):
        if turn.role == "assistant" and any(b["type"] == "tool_use" for b in turn.blocks):
            return turn.blocks[0]["type"] in ("thinking", "redacted_thinking")
    return True


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not _is_int(value) or value < 0:
            raise TranslationError(f"{key} must be a non-negative integer", key)
        return int(value)
    return None


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
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("'messages' must be a non-empty array", "messages")
    n = body.get("n")
    if n is not None and n != 1:
        raise TranslationError("only n=1 is supported by this model's API", "n")

    names = ToolNames(ANTHROPIC_NAME_MAX)
    ctx = TranslationState(tool_names=names)
    tool_defs = _tool_defs(body.get("tools"), names)
    converter = _Converter(names)
    converter.run(messages)
    names.register([name for name, _ in tool_defs] + converter.tool_names_used)
    for _, _, blocks in converter.entries:
        for block in blocks:
            if block["type"] == "tool_use":
                block["name"] = names.upstream(block["name"])
    turns = _build_turns(converter.entries)
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
        turns = _merge_adjacent([t for t in turns if t.results or t.blocks])

    max_tokens = _max_tokens(body)
    explicit_cap = max_tokens is not None
    if max_tokens is None:
        max_tokens = options.default_max_tokens
    if thinking is not None and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        budget = budget if _is_int(budget) else ANTHROPIC_MIN_THINKING_BUDGET
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
    out["messages"] = [{"role": t.role, "content": _turn_content(t)} for t in turns]

    tools: list[dict[str, Any]] = [{"name": names.upstream(name), **spec} for name, spec in tool_defs]
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"), names)
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
            out["tools"] = [{"name": n, "input_schema": dict(_EMPTY_SCHEMA)} for n in used]
            out["tool_choice"] = {"type": "none"}

    stop = _stop_sequences(body.get("stop"))
    if stop:
        out["stop_sequences"] = stop

    if options.anthropic_version < SAMPLING_REMOVED_VERSION:
        temperature = body.get("temperature")
        top_p = body.get("top_p")
        if thinking is None and _is_number(temperature):
            out["temperature"] = min(max(temperature, 0), 1)
        elif _is_number(top_p) and (thinking is None or 0.95 <= top_p <= 1):
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
