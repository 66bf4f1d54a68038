"""Anthropic Messages request -> Bedrock Converse request (OpenAI Chat clients come through the
OpenAI -> Anthropic translation first; see docs/translation.md, "Bedrock Converse")."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from ._json import dumps
from .body import each_block, is_int, is_number, request_messages
from .state import TranslationState
from .tools import ToolNames, anthropic_tool_choice, anthropic_tools
from .types import TranslationError

#: Converse limits tool names to ``[a-zA-Z0-9_-]{1,64}``.
CONVERSE_NAME_MAX = 64
_TOOL_ID = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")
_DOC_NAME_INVALID = re.compile(r"[^a-zA-Z0-9 ()\[\]-]+")
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
_DOC_FORMATS = {
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "csv",
    "text/html": "html",
    "text/markdown": "md",
}
_CACHE_POINT = {"cachePoint": {"type": "default"}}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}

#: Converse request members a client may send as they are (top-level keys of its JSON body):
#: they have no OpenAI or Anthropic meaning, so nothing else can claim them.
PASSTHROUGH_FIELDS = (
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "requestMetadata",
    "performanceConfig",
    "promptVariables",
    "serviceTier",
)


def converse_tool_id(tool_id: str) -> str:
    """A tool id Converse accepts; ids that do not fit become ``t_`` + 40 hex digits of their
    SHA-256, so ``toolUse`` and ``toolResult`` of one pair still match."""
    if _TOOL_ID.fullmatch(tool_id):
        return tool_id
    return "t_" + hashlib.sha256(tool_id.encode()).hexdigest()[:40]


def is_anthropic_model(model_id: str) -> bool:
    """Whether a Bedrock model id (or inference profile) names a Claude model: only those get
    Anthropic-native ``additionalModelRequestFields`` (thinking, top_k, anthropic_beta)."""
    return "anthropic." in model_id or "claude" in model_id.lower()


def _source_bytes(block: dict[str, Any], param: str, kind: str) -> tuple[str, str]:
    """(media type, base64 data) of a base64 image/document source."""
    source = block.get("source")
    if not isinstance(source, dict):
        raise TranslationError(f"{kind} block needs a source", param)
    stype = source.get("type")
    if stype == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise TranslationError(f"{kind} source needs media_type and data", param)
        return media.lower(), data
    if stype == "text" and kind == "document":
        data = source.get("data")
        if not isinstance(data, str):
            raise TranslationError("text document source needs data", param)
        return "text/plain", base64.b64encode(data.encode()).decode()
    if stype == "url":
        raise TranslationError(f"{kind} URLs are not supported by Bedrock: send the data inline (base64)", param)
    raise TranslationError(f"unsupported {kind} source type {stype!r}", param)


class _Builder:
    def __init__(self, names: ToolNames, ctx: TranslationState) -> None:
        self.names = names
        self.ctx = ctx
        self.doc_count = 0
        self.used_names: list[str] = []

    def image(self, block: dict[str, Any], param: str) -> dict[str, Any]:
        media, data = _source_bytes(block, param, "image")
        fmt = _IMAGE_FORMATS.get(media)
        if fmt is None:
            raise TranslationError(f"unsupported image type {media!r} (png, jpeg, gif, webp)", param)
        return {"image": {"format": fmt, "source": {"bytes": data}}}

    def document(self, block: dict[str, Any], param: str) -> dict[str, Any]:
        media, data = _source_bytes(block, param, "document")
        fmt = _DOC_FORMATS.get(media)
        if fmt is None:
            raise TranslationError(f"unsupported document type {media!r}", param)
        self.doc_count += 1
        title = block.get("title")
        # Converse requires a name of letters, digits, single spaces, hyphens, parentheses and
        # brackets, unique within the request.
        name = " ".join(_DOC_NAME_INVALID.sub(" ", title).split())[:180] if isinstance(title, str) else ""
        name = f"{name or 'document'} {self.doc_count}"
        return {"document": {"format": fmt, "name": name, "source": {"bytes": data}}}

    def blocks(self, content: Any, param: str) -> list[dict[str, Any]]:
        if isinstance(content, str):
            return [{"text": content}] if content.strip() else []
        out: list[dict[str, Any]] = []
        for p, block in each_block(content, param):
            kind = block.get("type")
            if kind == "text":
                text = block.get("text")
                if not isinstance(text, str):
                    raise TranslationError("text block needs a string 'text'", p)
                if text.strip():
                    out.append({"text": text})
            elif kind == "image":
                out.append(self.image(block, p))
            elif kind == "document":
                out.append(self.document(block, p))
            elif kind == "tool_use":
                tool_id, name = block.get("id"), block.get("name")
                if not isinstance(tool_id, str) or not isinstance(name, str) or not name:
                    raise TranslationError("tool_use block needs an id and a name", p)
                tool_input = block.get("input")
                self.used_names.append(name)
                out.append(
                    {
                        "toolUse": {
                            "toolUseId": converse_tool_id(tool_id),
                            "name": name,  # replaced by the upstream name once all names are known
                            "input": tool_input if isinstance(tool_input, dict) else {},
                        }
                    }
                )
            elif kind == "tool_result":
                out.append(self.tool_result(block, p))
            elif kind == "thinking":
                signature = block.get("signature")
                thinking = block.get("thinking")
                reasoning: dict[str, Any] = {"text": thinking if isinstance(thinking, str) else ""}
                if isinstance(signature, str) and signature:
                    reasoning["signature"] = signature
                out.append({"reasoningContent": {"reasoningText": reasoning}})
            elif kind == "redacted_thinking":
                data = block.get("data")
                if isinstance(data, str) and data:
                    out.append({"reasoningContent": {"redactedContent": data}})
            elif kind in ("server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "search_result"):
                self.ctx.warnings.append(f"{kind} block dropped: Bedrock Converse has no equivalent")
                continue
            else:
                raise TranslationError(f"unsupported content block type {kind!r}", p)
            if isinstance(block.get("cache_control"), dict):
                out.append(dict(_CACHE_POINT))
        return out

    def tool_result(self, block: dict[str, Any], param: str) -> dict[str, Any]:
        tool_id = block.get("tool_use_id")
        if not isinstance(tool_id, str) or not tool_id:
            raise TranslationError("tool_result block needs a tool_use_id", param)
        content = block.get("content")
        parts: list[dict[str, Any]] = []
        if isinstance(content, str):
            if content:
                parts.append({"text": content})
        elif isinstance(content, list):
            for j, item in enumerate(content):
                p = f"{param}.content[{j}]"
                if not isinstance(item, dict):
                    raise TranslationError("tool_result content must be blocks", p)
                kind = item.get("type")
                if kind == "text" and isinstance(item.get("text"), str):
                    if item["text"]:
                        parts.append({"text": item["text"]})
                elif kind == "image":
                    parts.append(self.image(item, p))
                elif kind == "document":
                    parts.append(self.document(item, p))
                else:
                    raise TranslationError(f"unsupported tool_result content type {kind!r}", p)
        elif content is not None:
            raise TranslationError("tool_result content must be a string or an array", param)
        if not parts:
            parts.append({"text": ""})
        result: dict[str, Any] = {"toolUseId": converse_tool_id(tool_id), "content": parts}
        if block.get("is_error") is True:
            result["status"] = "error"
        return {"toolResult": result}


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"text": system}] if system.strip() else []
    if not isinstance(system, list):
        raise TranslationError("system must be a string or an array of text blocks", "system")
    out: list[dict[str, Any]] = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise TranslationError("system blocks must be text", f"system[{i}]")
        if block["text"].strip():
            out.append({"text": block["text"]})
        if isinstance(block.get("cache_control"), dict):
            out.append(dict(_CACHE_POINT))
    return out


def _tools(tools: Any, names: ToolNames, ctx: TranslationState) -> tuple[list[dict[str, Any]], set[str]]:
    """(Converse tool entries, names of hosted tools that were dropped)."""
    declared, dropped = anthropic_tools(tools)
    for _, kind, _ in dropped:
        ctx.warnings.append(f"hosted tool {kind!r} dropped: Bedrock Converse does not run it")
    specs: list[tuple[str, dict[str, Any], bool]] = []
    for _, tool in declared:
        name = tool["name"]
        schema = tool.get("input_schema")
        spec: dict[str, Any] = {"name": name}
        description = tool.get("description")
        if isinstance(description, str) and description:
            spec["description"] = description
        spec["inputSchema"] = {"json": schema if isinstance(schema, dict) else dict(_EMPTY_SCHEMA)}
        if tool.get("strict") is True:
            spec["strict"] = True
        specs.append((name, spec, isinstance(tool.get("cache_control"), dict)))
    names.register(name for name, _, _ in specs)
    out: list[dict[str, Any]] = []
    for name, spec, cache in specs:
        spec["name"] = names.upstream(name)
        out.append({"toolSpec": spec})
        if cache:
            out.append(dict(_CACHE_POINT))
    return out, {name for _, _, name in dropped if name is not None}


def _tool_choice(choice: Any, names: ToolNames, hosted: set[str], ctx: TranslationState) -> dict[str, Any] | None:
    parsed = anthropic_tool_choice(choice, hosted, "Bedrock")
    if parsed is None:
        return None
    kind, name = parsed
    if name is not None:
        return {"tool": {"name": names.upstream(name)}}
    if kind == "none":
        ctx.warnings.append("tool_choice none cannot be enforced on Bedrock Converse: tools kept, choice left auto")
        return None
    return {kind: {}}


def _merge_roles(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Converse requires strictly alternating roles starting with user: merge same-role runs, put
    each turn's tool results first, and open with a placeholder user turn if needed."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if not message["content"]:
            continue
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1]["content"].extend(message["content"])
        else:
            merged.append({"role": message["role"], "content": list(message["content"])})
    for message in merged:
        content = message["content"]
        if message["role"] == "user" and any("toolResult" in b for b in content):
            units: list[list[dict[str, Any]]] = []  # a block and the cache points that follow it
            for block in content:
                if "cachePoint" in block and units:
                    units[-1].append(block)
                else:
                    units.append([block])
            units.sort(key=lambda unit: "toolResult" not in unit[0])  # stable: results first
            message["content"] = [b for unit in units for b in unit]
    if merged and merged[0]["role"] != "user":
        merged.insert(0, {"role": "user", "content": [{"text": "."}]})
    return merged


def anthropic_to_converse_request(
    body: dict[str, Any],
    model_id: str,
    *,
    betas: list[str] | None = None,
    passthrough: dict[str, Any] | None = None,
    explicit_max_tokens: bool = True,
) -> tuple[dict[str, Any], TranslationState]:
    """Translate an Anthropic Messages request body into a Converse body for ``model_id``.

    The returned context maps Converse tool names back to the body's names. ``betas`` are the
    client's ``anthropic-beta`` values; ``passthrough`` holds Converse members the client sent as
    they are (see :data:`PASSTHROUGH_FIELDS`; the body's own are used if None).
    ``explicit_max_tokens=False`` leaves ``maxTokens`` to the model's default.
    """
    messages = request_messages(body)
    names = ToolNames(CONVERSE_NAME_MAX)
    ctx = TranslationState(tool_names=names)
    builder = _Builder(names, ctx)
    converted: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise TranslationError("messages need a role of user or assistant", f"{param}.role")
        converted.append(
            {"role": message["role"], "content": builder.blocks(message.get("content"), f"{param}.content")}
        )
    tools, hosted = _tools(body.get("tools"), names, ctx)
    names.register(builder.used_names)
    for message in converted:
        for block in message["content"]:
            tool_use = block.get("toolUse")
            if tool_use is not None:
                tool_use["name"] = names.upstream(tool_use["name"])
    turns = _merge_roles(converted)
    if not turns:
        raise TranslationError("messages must contain at least one non-empty message", "messages")

    out: dict[str, Any] = {"messages": turns}
    system = _system(body.get("system"))
    if system:
        out["system"] = system

    inference: dict[str, Any] = {}
    max_tokens = body.get("max_tokens")
    if is_int(max_tokens) and max_tokens > 0 and explicit_max_tokens:
        inference["maxTokens"] = max_tokens
    temperature = body.get("temperature")
    if is_number(temperature):
        inference["temperature"] = min(max(temperature, 0), 1)
    top_p = body.get("top_p")
    if is_number(top_p):
        inference["topP"] = min(max(top_p, 0), 1)
    stop = body.get("stop_sequences")
    if isinstance(stop, list):
        stops = [s for s in stop if isinstance(s, str) and s]
        if stops:
            inference["stopSequences"] = stops
    if inference:
        out["inferenceConfig"] = inference

    used = [names.upstream(n) for n in dict.fromkeys(builder.used_names)]
    if tools:
        tool_config: dict[str, Any] = {"tools": tools}
        choice = _tool_choice(body.get("tool_choice"), names, hosted, ctx)
        if choice is not None:
            tool_config["toolChoice"] = choice
        declared = {t["toolSpec"]["name"] for t in tools if "toolSpec" in t}
        for name in used:  # history may call tools no longer offered: Converse wants them declared
            if name not in declared:
                tools.append({"toolSpec": {"name": name, "inputSchema": {"json": dict(_EMPTY_SCHEMA)}}})
        out["toolConfig"] = tool_config
    elif used:
        out["toolConfig"] = {
            "tools": [{"toolSpec": {"name": n, "inputSchema": {"json": dict(_EMPTY_SCHEMA)}}} for n in used]
        }

    additional: dict[str, Any] = {}
    claude = is_anthropic_model(model_id)
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        if claude:
            additional["thinking"] = thinking
            ctx.thinking_requested = True
        else:
            ctx.warnings.append("thinking dropped: only Claude models on Bedrock take Anthropic's thinking object")
    top_k = body.get("top_k")
    if is_int(top_k):
        if claude:
            additional["top_k"] = top_k
        else:
            ctx.warnings.append("top_k dropped: model-specific on Bedrock")
    output_config = body.get("output_config")
    if isinstance(output_config, dict):
        effort = output_config.get("effort")
        if isinstance(effort, str) and claude:
            additional["output_config"] = {"effort": effort}
        fmt = output_config.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
            out["outputConfig"] = {
                "textFormat": {
                    "type": "json_schema",
                    "structure": {"jsonSchema": {"schema": dumps(fmt["schema"]), "name": "response"}},
                }
            }
    if betas and claude:
        additional["anthropic_beta"] = list(betas)
    if additional:
        out["additionalModelRequestFields"] = additional

    extra = passthrough if passthrough is not None else {k: body[k] for k in PASSTHROUGH_FIELDS if k in body}
    for key, value in extra.items():
        if key == "additionalModelRequestFields" and isinstance(value, dict):
            out[key] = {**out.get(key, {}), **value}  # what the client set explicitly wins
        else:
            out[key] = value

    stream = body.get("stream")
    ctx.stream = stream is True
    return out, ctx
