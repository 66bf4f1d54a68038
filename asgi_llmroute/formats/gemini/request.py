"""OpenAI Chat Completions and Anthropic Messages requests -> Gemini ``generateContent`` requests.

The body never carries the model or the stream flag: both go in the URL (``models/{model}:
generateContent`` or ``:streamGenerateContent?alt=sse``); :class:`GeminiRequest` returns them
beside the body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from ..mapping import THINKING_BUDGETS
from ..tools import parse_tool_arguments
from ..types import TranslationError, TranslationOptions
from .ids import GeminiToolNames, split_call_id
from .schema import reduce_schema

#: Stop sequences Gemini accepts per request; more are dropped (with a warning).
MAX_STOP_SEQUENCES = 5
MISSING_RESULT = "no result was provided"
#: Thought signature Google documents for model turns it did not produce (other providers'
#: history, replayed traces); Gemini 3 rejects function calls without any signature.
PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"

_THINKING_LEVELS = {
    "none": "MINIMAL",
    "minimal": "MINIMAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "high": "HIGH",
    "xhigh": "HIGH",
    "max": "HIGH",
}
_AUDIO = {"wav": "audio/wav", "mp3": "audio/mp3"}


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def thinking_levels(model: str) -> bool:
    """Gemini 3 and later take ``thinkingLevel``; 2.x models ``thinkingBudget``."""
    name = model.rsplit("/", 1)[-1]
    return name.startswith("gemini-") and name[7:8].isdigit() and int(name[7:8]) >= 3


@dataclass(slots=True)
class GeminiRequest:
    """One translated request: the Gemini body and what the URL needs."""

    body: dict[str, Any]
    model: str | None
    stream: bool
    include_usage: bool = False
    thinking_requested: bool = False
    tool_names: GeminiToolNames = field(default_factory=GeminiToolNames)
    warnings: list[str] = field(default_factory=list)


# -- contents ------------------------------------------------------------------------------------


class _Contents:
    """Builds ``contents`` so that every model turn with N function calls is followed by one user
    content holding exactly its N function responses (in call order), as Gemini requires."""

    def __init__(self, placeholder_signatures: bool) -> None:
        self.contents: list[dict[str, Any]] = []
        self._placeholder = placeholder_signatures
        self._model: dict[str, Any] | None = None  # the model content being built
        self._pending: list[tuple[str, str]] = []  # (client call id, Gemini name) awaiting results
        self._results: dict[str, dict[str, Any]] = {}
        self._after: list[dict[str, Any]] = []  # orphan results / media from results: user parts
        self.names: dict[str, str] = {}  # client call id -> Gemini function name

    def model(self, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if self._model is None or self._results or self._after:
            self._flush()
            self._model = {"role": "model", "parts": []}
            self.contents.append(self._model)
        self._model["parts"].extend(parts)

    def call(self, call_id: str, name: str, args: dict[str, Any]) -> None:
        _, signature = split_call_id(call_id)
        part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
        if signature is not None:
            part["thoughtSignature"] = signature
        self.model([part])
        self._pending.append((call_id, name))
        self.names[call_id] = name

    def result(self, call_id: str, response: dict[str, Any], media: list[dict[str, Any]]) -> None:
        if any(call_id == pending for pending, _ in self._pending) and call_id not in self._results:
            self._results[call_id] = response
            self._after.extend(media)
            return
        # A result for no pending call: keep its content as text for the model.
        value = response.get("output", response.get("error"))
        text = value if isinstance(value, str) else _json_text(value)
        self._flush()
        self.user([{"text": f"Tool result ({call_id}): {text}"}, *media])

    def user(self, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        self._flush()
        last = self.contents[-1] if self.contents else None
        if last is not None and last["role"] == "user" and not _has_responses(last):
            last["parts"].extend(parts)
        else:
            self.contents.append({"role": "user", "parts": parts})

    def finish(self) -> list[dict[str, Any]]:
        self._flush()
        return self.contents

    def _flush(self) -> None:
        model, self._model = self._model, None
        if model is not None and self._placeholder:
            calls = [p for p in model["parts"] if "functionCall" in p]
            if calls and not any("thoughtSignature" in p for p in calls):
                calls[0]["thoughtSignature"] = PLACEHOLDER_SIGNATURE
        if self._pending:
            parts = []
            for call_id, name in self._pending:
                response = self._results.get(call_id, {"output": MISSING_RESULT})
                parts.append({"functionResponse": {"name": name, "response": response}})
            self.contents.append({"role": "user", "parts": parts})
        self._pending = []
        self._results = {}
        if self._after:
            after, self._after = self._after, []
            self.contents.append({"role": "user", "parts": after})


def _has_responses(content: dict[str, Any]) -> bool:
    return any("functionResponse" in p for p in content["parts"])


def _json_text(value: Any) -> str:
    from .._json import dumps

    return dumps(value)


# -- media ---------------------------------------------------------------------------------------


def _data_url(url: str, param: str) -> dict[str, Any]:
    head, sep, data = url[5:].partition(",")
    mime, _, encoding = head.partition(";")
    if not sep or encoding.lower() != "base64":
        raise TranslationError("only base64 data URLs can be sent to Gemini", param)
    mime = mime.strip().lower()
    if not mime:
        raise TranslationError("the data URL has no media type", param)
    return {"inlineData": {"mimeType": mime, "data": data}}


def _inline(mime: Any, data: Any, param: str) -> dict[str, Any]:
    if not isinstance(data, str) or not data:
        raise TranslationError("inline data must be a non-empty base64 string", param)
    if not isinstance(mime, str) or not mime:
        raise TranslationError("inline data needs a media type", param)
    return {"inlineData": {"mimeType": mime.lower(), "data": data}}


def _no_urls(param: str) -> TranslationError:
    return TranslationError(
        "Gemini cannot fetch media by URL through the gateway; send the data inline (base64)", param
    )


# -- OpenAI Chat Completions ---------------------------------------------------------------------


def _openai_parts(content: Any, param: str, *, system: bool = False) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if content is None:
        return []
    if not isinstance(content, list):
        raise TranslationError("content must be a string or an array of parts", param)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        p = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise TranslationError("content parts must be objects", p)
        kind = part.get("type")
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise TranslationError(f"{kind} part needs a string '{kind}'", p)
            if text:
                parts.append({"text": text})
        elif system:
            raise TranslationError("system content parts must be text", p)
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise TranslationError("image_url.url must be a string", f"{p}.image_url.url")
            if not url.startswith("data:"):
                raise _no_urls(f"{p}.image_url.url")
            parts.append(_data_url(url, f"{p}.image_url.url"))
        elif kind == "file":
            file = part.get("file")
            data = file.get("file_data") if isinstance(file, dict) else None
            if not isinstance(data, str) or not data:
                raise TranslationError("only inline file_data can be sent to Gemini (no file_id)", f"{p}.file")
            if data.startswith("data:"):
                parts.append(_data_url(data, f"{p}.file.file_data"))
            else:
                parts.append(_inline("application/pdf", data, f"{p}.file.file_data"))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            fmt = audio.get("format") if isinstance(audio, dict) else None
            if fmt not in _AUDIO or not isinstance(audio, dict):
                raise TranslationError("input_audio needs format 'wav' or 'mp3'", f"{p}.input_audio")
            parts.append(_inline(_AUDIO[fmt], audio.get("data"), f"{p}.input_audio.data"))
        else:
            raise TranslationError(f"content part type {kind!r} cannot be sent to Gemini", f"{p}.type")
    return parts


def _openai_result(content: Any, param: str) -> tuple[Any, list[dict[str, Any]]]:
    """(function response value, media parts to send after the responses) of a tool message."""
    if isinstance(content, str) or content is None:
        return content or "", []
    parts = _openai_parts(content, param)
    texts = [p["text"] for p in parts if "text" in p]
    return "\n".join(texts), [p for p in parts if "text" not in p]


def _openai_messages(messages: list[Any], contents: _Contents, names: GeminiToolNames) -> list[dict[str, Any]]:
    system: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise TranslationError("messages must be objects", param)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_openai_parts(content, f"{param}.content", system=True))
        elif role == "user":
            contents.user(_openai_parts(content, f"{param}.content"))
        elif role == "assistant":
            if isinstance(content, list):  # thinking parts echoed back: Gemini thoughts never return
                content = [p for p in content if not (isinstance(p, dict) and p.get("type") in _THINKING)]
            contents.model(_openai_parts(content, f"{param}.content"))
            refusal = message.get("refusal")
            if isinstance(refusal, str) and refusal:
                contents.model([{"text": refusal}])
            calls = message.get("tool_calls")
            if calls is not None and not isinstance(calls, list):
                raise TranslationError("tool_calls must be an array", f"{param}.tool_calls")
            for j, call in enumerate(calls or ()):
                p = f"{param}.tool_calls[{j}]"
                if not isinstance(call, dict):
                    raise TranslationError("tool_calls entries must be objects", p)
                if call.get("type", "function") != "function":
                    raise TranslationError("only function tool calls can be sent to Gemini", f"{p}.type")
                function = call.get("function")
                call_id = call.get("id")
                if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                    raise TranslationError("tool call needs function.name", f"{p}.function.name")
                if not isinstance(call_id, str) or not call_id:
                    raise TranslationError("tool call needs an id", f"{p}.id")
                contents.call(
                    call_id, names.upstream(function["name"]), parse_tool_arguments(function.get("arguments"))
                )
            legacy = message.get("function_call")
            if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
                contents.call(
                    f"function_call_{i}", names.upstream(legacy["name"]), parse_tool_arguments(legacy.get("arguments"))
                )
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                raise TranslationError("tool messages need a string 'tool_call_id'", f"{param}.tool_call_id")
            value, media = _openai_result(content, f"{param}.content")
            contents.result(call_id, {"output": value}, media)
        elif role == "function":
            value, media = _openai_result(content, f"{param}.content")
            legacy_id = next((cid for cid in reversed(contents.names) if cid.startswith("function_call_")), "")
            contents.result(legacy_id, {"output": value}, media)
        else:
            raise TranslationError(f"unsupported message role {role!r}", f"{param}.role")
    return system


_THINKING = frozenset(("thinking", "redacted_thinking"))
#: OpenAI fields with no Gemini equivalent that only tune behaviour: dropped with a warning.
_DROPPED = (
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "parallel_tool_calls",
    "prediction",
    "audio",
    "modalities",
    "web_search_options",
    "service_tier",
    "user",
    "metadata",
)


def _openai_tools(tools: Any, names: GeminiToolNames, warnings: list[str]) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise TranslationError("tools must be an array", "tools")
    declarations: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise TranslationError("tools entries must be objects", param)
        if tool.get("type") != "function":
            raise TranslationError(f"tool type {tool.get('type')!r} cannot be sent to Gemini (functions only)", param)
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise TranslationError("function tools need function.name", f"{param}.function.name")
        declarations.append(
            _declaration(
                names,
                function["name"],
                function.get("description"),
                function.get("parameters"),
                f"{param}.function.parameters",
                warnings,
            )
        )
    return declarations


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


def _openai_tool_choice(choice: Any, names: GeminiToolNames) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "function":
            function = choice.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if isinstance(name, str) and name:
                return {"mode": "ANY", "allowedFunctionNames": [names.upstream(name)]}
        elif kind == "allowed_tools":
            allowed = choice.get("allowed_tools")
            if isinstance(allowed, dict) and isinstance(allowed.get("tools"), list):
                listed = [
                    t["function"]["name"]
                    for t in allowed["tools"]
                    if isinstance(t, dict)
                    and isinstance(t.get("function"), dict)
                    and isinstance(t["function"].get("name"), str)
                ]
                mode = "ANY" if allowed.get("mode") == "required" else "AUTO"
                if listed and mode == "ANY":
                    return {"mode": mode, "allowedFunctionNames": [names.upstream(n) for n in listed]}
                if listed:
                    # AUTO cannot restrict the set; VALIDATED with names can.
                    return {"mode": "VALIDATED", "allowedFunctionNames": [names.upstream(n) for n in listed]}
                return {"mode": mode}
    raise TranslationError("unsupported tool_choice", "tool_choice")


def _max_tokens(body: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if not _is_int(value) or value < 0:
            raise TranslationError(f"{key} must be a non-negative integer", key)
        return int(value)
    return None


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
        if not _is_number(value):
            raise TranslationError(f"{client_key} must be a number", client_key)
        config[gemini_key] = value


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


def openai_to_gemini_request(
    body: dict[str, Any], options: TranslationOptions, *, placeholder_signatures: bool | None = None
) -> GeminiRequest:
    """Translate an OpenAI Chat Completions request; raises :class:`TranslationError`."""
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("'messages' must be a non-empty array", "messages")
    n = body.get("n")
    if n is not None and n != 1:
        raise TranslationError("only n=1 is supported by Gemini through the gateway", "n")
    model = body.get("model") if isinstance(body.get("model"), str) else None
    levels = thinking_levels(model or "")
    names = GeminiToolNames()
    warnings: list[str] = []
    declarations = _openai_tools(body.get("tools"), names, warnings)
    contents = _Contents(levels if placeholder_signatures is None else placeholder_signatures)
    system = _openai_messages(messages, contents, names)
    out: dict[str, Any] = {"contents": contents.finish()}
    if not out["contents"]:
        raise TranslationError("messages must contain at least one user or assistant message", "messages")
    if system:
        out["systemInstruction"] = {"role": "user", "parts": system}

    config: dict[str, Any] = {}
    _sampling(body, config, (("temperature", "temperature"), ("top_p", "topP")))
    max_tokens = _max_tokens(body, ("max_completion_tokens", "max_tokens"))
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stops = _stop(body.get("stop"), "stop", warnings)
    if stops:
        config["stopSequences"] = stops
    seed = body.get("seed")
    if seed is not None:
        if not _is_int(seed):
            raise TranslationError("seed must be an integer", "seed")
        config["seed"] = seed
    _sampling(body, config, (("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")))
    _response_format(body.get("response_format"), config, "response_format", warnings)
    thinking = _effort_thinking(body.get("reasoning_effort"), levels, options.reasoning_content)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    if config:
        out["generationConfig"] = config
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        choice = _openai_tool_choice(body.get("tool_choice"), names)
        if choice is not None:
            out["toolConfig"] = {"functionCallingConfig": choice}
    for key in _DROPPED:
        if body.get(key) not in (None, False):
            warnings.append(f"{key}: no Gemini equivalent, dropped")
    stream = body.get("stream") is True
    stream_options = body.get("stream_options")
    return GeminiRequest(
        body=out,
        model=model,
        stream=stream,
        include_usage=isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
        thinking_requested=thinking is not None and thinking.get("includeThoughts") is True,
        tool_names=names,
        warnings=warnings,
    )


# -- Anthropic Messages --------------------------------------------------------------------------


def _anthropic_source(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise TranslationError(f"{block.get('type')} block needs a 'source'", f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        return _inline(source.get("media_type"), source.get("data"), f"{param}.source")
    if kind in ("url", "file"):
        raise _no_urls(f"{param}.source")
    raise TranslationError(f"source type {kind!r} cannot be sent to Gemini", f"{param}.source.type")


def _anthropic_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(b["text"] for b in value if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def _anthropic_parts(content: Any, param: str) -> list[dict[str, Any]]:
    """Gemini parts of user-side blocks (text, image, document)."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise TranslationError("content must be a string or an array of blocks", param)
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        p = f"{param}[{j}]"
        if not isinstance(block, dict):
            raise TranslationError("content blocks must be objects", p)
        parts.extend(_anthropic_block(block, p))
    return parts


def _anthropic_block(block: dict[str, Any], param: str) -> list[dict[str, Any]]:
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise TranslationError("text block needs a string 'text'", param)
        return [{"text": text}] if text else []
    if kind == "image":
        return [_anthropic_source(block, param)]
    if kind == "document":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "text":
            data = source.get("data")
            return [{"text": data}] if isinstance(data, str) and data else []
        if isinstance(source, dict) and source.get("type") == "content":
            text = _anthropic_text(source.get("content"))
            return [{"text": text}] if text else []
        return [_anthropic_source(block, param)]
    raise TranslationError(f"content block type {kind!r} cannot be sent to Gemini", f"{param}.type")


def _anthropic_messages(messages: list[Any], contents: _Contents, names: GeminiToolNames) -> None:
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise TranslationError("messages must be objects", param)
        role = message.get("role")
        content = message.get("content")
        if role == "assistant":
            _anthropic_assistant(content, f"{param}.content", contents, names)
        elif role == "user":
            if isinstance(content, str):
                contents.user([{"text": content}] if content else [])
                continue
            if not isinstance(content, list):
                raise TranslationError("content must be a string or an array of blocks", f"{param}.content")
            for j, block in enumerate(content):
                p = f"{param}.content[{j}]"
                if not isinstance(block, dict):
                    raise TranslationError("content blocks must be objects", p)
                if block.get("type") == "tool_result":
                    call_id = block.get("tool_use_id")
                    if not isinstance(call_id, str):
                        raise TranslationError("tool_result needs a string 'tool_use_id'", f"{p}.tool_use_id")
                    parts = _anthropic_parts(block.get("content", ""), f"{p}.content")
                    text = "\n".join(x["text"] for x in parts if "text" in x)
                    media = [x for x in parts if "text" not in x]
                    key = "error" if block.get("is_error") is True else "output"
                    contents.result(call_id, {key: text}, media)
                elif block.get("type") in _THINKING:
                    continue
                else:
                    contents.user(_anthropic_block(block, p))
        else:
            raise TranslationError(f"unsupported message role {role!r}", f"{param}.role")


def _anthropic_assistant(content: Any, param: str, contents: _Contents, names: GeminiToolNames) -> None:
    if isinstance(content, str):
        contents.model([{"text": content}] if content else [])
        return
    if not isinstance(content, list):
        raise TranslationError("content must be a string or an array of blocks", param)
    for j, block in enumerate(content):
        p = f"{param}[{j}]"
        if not isinstance(block, dict):
            raise TranslationError("content blocks must be objects", p)
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if isinstance(text, str) and text:
                contents.model([{"text": text}])
        elif kind == "tool_use":
            call_id, name, args = block.get("id"), block.get("name"), block.get("input")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise TranslationError("tool_use needs an id and a name", p)
            contents.call(call_id, names.upstream(name), args if isinstance(args, dict) else {})
        elif (
            kind in _THINKING or kind == "server_tool_use" or (isinstance(kind, str) and kind.endswith("_tool_result"))
        ):
            # Gemini thoughts are never sent back (their signatures travel in the call ids);
            # hosted-tool history has no Gemini form and only informs, so it is dropped.
            continue
        else:
            raise TranslationError(f"content block type {kind!r} cannot be sent to Gemini", f"{p}.type")


def _anthropic_tools(tools: Any, names: GeminiToolNames, warnings: list[str]) -> tuple[list[dict[str, Any]], set[str]]:
    if tools is None:
        return [], set()
    if not isinstance(tools, list):
        raise TranslationError("tools must be an array", "tools")
    declarations: list[dict[str, Any]] = []
    hosted: set[str] = set()
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
            raise TranslationError("tools need a name", f"{param}.name")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            warnings.append(f"{param}: hosted tool {kind!r} has no Gemini equivalent, dropped")
            hosted.add(tool["name"])
            continue
        declarations.append(
            _declaration(
                names,
                tool["name"],
                tool.get("description"),
                tool.get("input_schema"),
                f"{param}.input_schema",
                warnings,
            )
        )
    return declarations, hosted


def _anthropic_tool_choice(choice: Any, names: GeminiToolNames, hosted: set[str]) -> dict[str, Any] | None:
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        return {"mode": "AUTO"}
    if kind == "any":
        return {"mode": "ANY"}
    if kind == "none":
        return {"mode": "NONE"}
    if kind == "tool" and isinstance(choice, dict) and isinstance(choice.get("name"), str):
        if choice["name"] in hosted:
            raise TranslationError("tool_choice names a hosted tool Gemini does not have", "tool_choice.name")
        return {"mode": "ANY", "allowedFunctionNames": [names.upstream(choice["name"])]}
    raise TranslationError("unsupported tool_choice", "tool_choice")


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
        if not _is_int(budget) or budget < 0:
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


def anthropic_to_gemini_request(
    body: dict[str, Any], options: TranslationOptions, *, placeholder_signatures: bool | None = None
) -> GeminiRequest:
    """Translate an Anthropic Messages request; raises :class:`TranslationError`."""
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("'messages' must be a non-empty array", "messages")
    model = body.get("model") if isinstance(body.get("model"), str) else None
    levels = thinking_levels(model or "")
    names = GeminiToolNames()
    warnings: list[str] = []
    declarations, hosted = _anthropic_tools(body.get("tools"), names, warnings)
    contents = _Contents(levels if placeholder_signatures is None else placeholder_signatures)
    _anthropic_messages(messages, contents, names)
    out: dict[str, Any] = {"contents": contents.finish()}
    if not out["contents"]:
        raise TranslationError("messages must contain at least one non-empty message", "messages")
    system = body.get("system")
    if system is not None:
        parts = _anthropic_parts(system, "system")
        if any("text" not in p for p in parts):
            raise TranslationError("system blocks must be text", "system")
        if parts:
            out["systemInstruction"] = {"role": "user", "parts": parts}

    config: dict[str, Any] = {}
    _sampling(body, config, (("temperature", "temperature"), ("top_p", "topP")))
    top_k = body.get("top_k")
    if top_k is not None:
        if not _is_int(top_k):
            raise TranslationError("top_k must be an integer", "top_k")
        config["topK"] = top_k
    max_tokens = _max_tokens(body, ("max_tokens",))
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stops = _stop(body.get("stop_sequences"), "stop_sequences", warnings)
    if stops:
        config["stopSequences"] = stops
    output_config = body.get("output_config")
    if isinstance(output_config, dict) and output_config.get("format") is not None:
        _response_format(output_config["format"], config, "output_config.format", warnings)
    thinking = _anthropic_thinking(body, levels)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    if config:
        out["generationConfig"] = config
    choice = _anthropic_tool_choice(body.get("tool_choice"), names, hosted)
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
        if choice is not None:
            out["toolConfig"] = {"functionCallingConfig": choice}
    return GeminiRequest(
        body=out,
        model=model,
        stream=body.get("stream") is True,
        include_usage=True,
        thinking_requested=thinking is not None,
        tool_names=names,
        warnings=warnings,
    )
