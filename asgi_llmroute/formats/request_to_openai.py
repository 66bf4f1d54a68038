"""Anthropic Messages request -> OpenAI Chat Completions request."""

from __future__ import annotations

from typing import Any

from ._json import dumps
from .body import each_block, each_message
from .mapping import reasoning_effort
from .state import TranslationState
from .tools import OPENAI_NAME_MAX, ToolNames, anthropic_tool_choice, anthropic_tools
from .types import TranslationError, TranslationOptions

MAX_OPENAI_STOP = 4
MISSING_RESULT_TEXT = "no result was provided"
ERROR_PREFIX = "Error: "  # D-14: OpenAI tool messages have no is_error flag


def _text_of(blocks: Any) -> str:
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        return ""
    return "\n\n".join(
        b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str) and b["text"]
    )


def _image_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, dict):
        kind = source.get("type")
        if kind == "base64" and isinstance(source.get("data"), str):
            media = source.get("media_type") if isinstance(source.get("media_type"), str) else "image/png"
            return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{source['data']}"}}
        if kind == "url" and isinstance(source.get("url"), str):
            return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise TranslationError("only base64 and url image sources can be sent to this upstream", param)


def _document_parts(block: dict[str, Any], param: str) -> list[dict[str, Any]]:
    source = block.get("source")
    if isinstance(source, dict):
        kind = source.get("type")
        if kind == "base64" and isinstance(source.get("data"), str):
            media = source.get("media_type") if isinstance(source.get("media_type"), str) else "application/pdf"
            title = block.get("title")
            filename = title if isinstance(title, str) and title else "document.pdf"
            return [
                {"type": "file", "file": {"filename": filename, "file_data": f"data:{media};base64,{source['data']}"}}
            ]
        if kind == "text" and isinstance(source.get("data"), str):
            return [{"type": "text", "text": source["data"]}] if source["data"] else []
        if kind == "content":
            content = source.get("content")
            text = _text_of(content)
            return [{"type": "text", "text": text}] if text else []
    raise TranslationError("only base64 and text document sources can be sent to this upstream", param)


class _Converter:
    """Builds the OpenAI ``messages`` array from Anthropic turns."""

    def __init__(self, names: ToolNames) -> None:
        self.names = names
        self.out: list[dict[str, Any]] = []

    def run(self, messages: list[Any]) -> None:
        for _, param, message in each_message(messages):
            role = message.get("role")
            content = message.get("content")
            if role == "user":
                self._user(content, f"{param}.content")
            elif role == "assistant":
                self._assistant(content, f"{param}.content")
            elif role == "system":  # 2.x API: mid-conversation system turn, kept in place
                text = _text_of(content)
                if text:
                    self.out.append({"role": "system", "content": text})
            else:
                raise TranslationError(f"unsupported message role {role!r}", f"{param}.role")

    def _user(self, content: Any, param: str) -> None:
        if isinstance(content, str):
            self.out.append({"role": "user", "content": content})
            return
        tools: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        for p, block in each_block(content, param):
            kind = block.get("type")
            if kind == "tool_result":
                tools.append(self._tool_result(block, p, parts))
            else:
                parts.extend(self._part(block, p))
        # Tool messages must directly follow the assistant tool_calls message: user content goes after.
        self.out.extend(tools)
        if len(parts) == 1 and parts[0]["type"] == "text":
            self.out.append({"role": "user", "content": parts[0]["text"]})
        elif parts:
            self.out.append({"role": "user", "content": parts})

    def _part(self, block: dict[str, Any], param: str) -> list[dict[str, Any]]:
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            return [{"type": "text", "text": text}] if isinstance(text, str) and text else []
        if kind == "image":
            return [_image_part(block, param)]
        if kind == "document":
            return _document_parts(block, param)
        # thinking echoed in a user turn, search results, unknown future blocks: no counterpart.
        return []

    def _tool_result(self, block: dict[str, Any], param: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
        tool_id = block.get("tool_use_id")
        if not isinstance(tool_id, str):
            raise TranslationError("tool_result needs a string tool_use_id", f"{param}.tool_use_id")
        content = block.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            texts: list[str] = []
            for k, item in enumerate(content):
                if not isinstance(item, dict):
                    continue
                if item.get("type") == "text" and isinstance(item.get("text"), str):
                    texts.append(item["text"])
                else:  # images/documents cannot go into a tool message: the user message carries them
                    parts.extend(self._part(item, f"{param}.content[{k}]"))
            text = "\n".join(texts)
        else:
            text = ""
        if block.get("is_error") is True:
            text = ERROR_PREFIX + text
        return {"role": "tool", "tool_call_id": tool_id, "content": text}

    def _assistant(self, content: Any, param: str) -> None:
        if isinstance(content, str):
            if content:
                self.out.append({"role": "assistant", "content": content})
            return
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for p, block in each_block(content, param):
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif kind == "tool_use":
                tool_id, name = block.get("id"), block.get("name")
                if not isinstance(tool_id, str) or not isinstance(name, str):
                    raise TranslationError("tool_use needs string id and name", p)
                tool_input = block.get("input")
                calls.append(
                    {
                        "id": tool_id,
                        "type": "function",
                        "function": {
                            "name": self.names.upstream(name),
                            "arguments": dumps(tool_input if tool_input is not None else {}),
                        },
                    }
                )
            # thinking / redacted_thinking / server-tool blocks: dropped for OpenAI upstreams (6.3 step 4).
        text = "".join(texts)
        if not text and not calls:
            return
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        self.out.append(message)


def _repair(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI wants every tool call answered by tool messages right after it; add/drop as needed."""
    out: list[dict[str, Any]] = []
    pending: list[str] = []
    for message in messages:
        role = message["role"]
        if role == "tool":
            if message["tool_call_id"] in pending:
                pending.remove(message["tool_call_id"])
                out.append(message)
            elif message["content"]:  # undeclared result: keep the data as user text
                out.append({"role": "user", "content": message["content"]})
            continue
        if pending:
            out.extend({"role": "tool", "tool_call_id": i, "content": MISSING_RESULT_TEXT} for i in pending)
            pending = []
        if role == "assistant" and "tool_calls" in message:
            pending = [c["id"] for c in message["tool_calls"]]
        out.append(message)
    return out


def _tools(tools: Any, names: ToolNames) -> tuple[list[dict[str, Any]], set[str]]:
    """Function tools for OpenAI, and the names of hosted tools that were dropped."""
    declared, dropped = anthropic_tools(tools)
    # Anthropic-hosted tools cannot run on an OpenAI upstream.
    hosted = {name for _, _, name in dropped if name is not None}
    names.register(t["name"] for _, t in declared)
    out: list[dict[str, Any]] = []
    for _, tool in declared:
        schema = tool.get("input_schema")
        function: dict[str, Any] = {"name": names.upstream(tool["name"])}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        function["parameters"] = schema if isinstance(schema, dict) else {"type": "object", "properties": {}}
        out.append({"type": "function", "function": function})
    return out, hosted


_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def _tool_choice(choice: Any, names: ToolNames, hosted: set[str]) -> Any:
    if not isinstance(choice, dict):
        return None
    parsed = anthropic_tool_choice(choice, hosted, "this upstream")
    assert parsed is not None
    kind, name = parsed
    if name is not None:
        return {"type": "function", "function": {"name": names.upstream(name)}}
    return _CHOICES[kind]


def anthropic_to_openai_request(
    body: dict[str, Any], options: TranslationOptions
) -> tuple[dict[str, Any], TranslationState]:
    """Translate an Anthropic Messages request body into an OpenAI Chat Completions request body."""
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise TranslationError("'messages' must be an array", "messages")
    names = ToolNames(OPENAI_NAME_MAX)
    ctx = TranslationState(tool_names=names)
    tools, hosted = _tools(body.get("tools"), names)
    # Names used in history must map like the declared ones (register them after declared tools).
    names.register(
        b["name"]
        for m in messages
        if isinstance(m, dict) and isinstance(m.get("content"), list)
        for b in m["content"]
        if isinstance(b, dict) and b.get("type") == "tool_use" and isinstance(b.get("name"), str)
    )

    out: dict[str, Any] = {}
    if "model" in body:
        out["model"] = body["model"]
    converter = _Converter(names)
    system = body.get("system")
    system_text = _text_of(system)
    if system_text:
        converter.out.append({"role": "system", "content": system_text})
    converter.run(messages)
    out["messages"] = _repair(converter.out)

    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"), names, hosted)
        if choice is not None:
            out["tool_choice"] = choice
        tc = body.get("tool_choice")
        if isinstance(tc, dict) and tc.get("disable_parallel_tool_use") is True and choice != "none":
            out["parallel_tool_calls"] = False
    elif hosted:
        ctx.warnings.append("hosted tools dropped: " + ", ".join(sorted(hosted)))
        _tool_choice(body.get("tool_choice"), names, hosted)  # 400 if it names one of them

    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        out[options.max_tokens_field] = max_tokens
    stop = body.get("stop_sequences")
    if isinstance(stop, list):
        kept = [s for s in stop if isinstance(s, str) and s]
        if len(kept) > MAX_OPENAI_STOP:
            ctx.warnings.append(f"stop_sequences truncated to the first {MAX_OPENAI_STOP}")
        if kept:
            out["stop"] = kept[:MAX_OPENAI_STOP]

    thinking = body.get("thinking")
    effort = reasoning_effort(thinking, body.get("output_config"))
    ctx.thinking_requested = effort is not None
    send_effort = effort is not None and options.send_reasoning_effort
    if not send_effort:  # reasoning models reject sampling parameters
        for key in ("temperature", "top_p"):
            value = body.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = value
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str) and metadata["user_id"]:
        out["user"] = metadata["user_id"]
    if send_effort:
        out["reasoning_effort"] = effort

    output_config = body.get("output_config")
    fmt = output_config.get("format") if isinstance(output_config, dict) else body.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": fmt["schema"], "strict": True},
        }

    if body.get("stream") is True:
        out["stream"] = True
        # Anthropic clients always expect usage: ask for it whatever the client said (6.2).
        out["stream_options"] = {"include_usage": True}
        ctx.stream = True
        ctx.include_usage = True
    elif body.get("stream") is False:
        out["stream"] = False
    return out, ctx
