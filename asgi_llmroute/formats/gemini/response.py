"""Gemini ``GenerateContentResponse`` -> OpenAI ``chat.completion`` / Anthropic ``Message``, plus
what the streams share: candidate reading, finish reasons and usage."""

from __future__ import annotations

from typing import Any

from .._json import dumps, dumps_bytes, parse_json_object
from ..accounting import accounting_from_anthropic, openai_usage
from ..types import TranslationOptions, UpstreamProtocolError
from .ids import GeminiToolNames, mint_call_id, response_seed

# finishReason -> (OpenAI finish_reason, Anthropic stop_reason). "MALFORMED" marks the group whose
# answer is unusable when it carries no content.
_REFUSAL = ("content_filter", "refusal")
_MALFORMED = ("MALFORMED", "MALFORMED")
FINISH_REASONS: dict[str, tuple[str, str]] = {
    "STOP": ("stop", "end_turn"),
    "MAX_TOKENS": ("length", "max_tokens"),
    "CONTINUATION": ("length", "max_tokens"),
    **{
        reason: _REFUSAL
        for reason in (
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_RECITATION",
            "MODEL_ARMOR",
            "ESCALATION",
            "PUP_LIMITED_DISABLED",
            "LANGUAGE",
        )
    },
    **{
        reason: _MALFORMED
        for reason in (
            "MALFORMED_FUNCTION_CALL",
            "UNEXPECTED_TOOL_CALL",
            "TOO_MANY_TOOL_CALLS",
            "MALFORMED_RESPONSE",
            "MISSING_THOUGHT_SIGNATURE",
        )
    },
}
_DEFAULT_FINISH = ("stop", "end_turn")


def finish_pair(reason: Any, *, saw_tool: bool, saw_content: bool) -> tuple[str, str]:
    """(OpenAI finish_reason, Anthropic stop_reason) for a Gemini ``finishReason``.

    Raises :class:`UpstreamProtocolError` for the malformed group when the answer has no content.
    """
    pair = FINISH_REASONS.get(reason, _DEFAULT_FINISH) if isinstance(reason, str) else _DEFAULT_FINISH
    if pair is _MALFORMED:
        if not saw_content and not saw_tool:
            raise UpstreamProtocolError(f"upstream returned {reason}")
        pair = _DEFAULT_FINISH
    if pair[0] == "stop" and saw_tool:
        return "tool_calls", "tool_use"
    return pair


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_as_anthropic(meta: Any) -> dict[str, Any]:
    """``usageMetadata`` as Anthropic-style counters (the gateway's common usage shape).

    Input is the whole prompt (cached part included) plus tool-use prompt tokens; output is the
    visible candidates plus the thoughts, as OpenAI and Anthropic count reasoning.
    """
    meta = meta if isinstance(meta, dict) else {}
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    cached = min(_count(meta, "cachedContentTokenCount"), prompt)
    thoughts = _count(meta, "thoughtsTokenCount")
    out: dict[str, Any] = {
        "input_tokens": prompt - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": _count(meta, "candidatesTokenCount") + thoughts,
    }
    if thoughts:
        out["output_tokens_details"] = {"thinking_tokens": thoughts}
    return out


def anthropic_client_usage(usage: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in usage.items() if k != "output_tokens_details"}


def accounting(usage: dict[str, Any]) -> dict[str, int]:
    return accounting_from_anthropic(usage)


_NO_PARTS: list[dict[str, Any]] = []


class Chunk:
    """One checked ``GenerateContentResponse`` (a whole body or one stream event)."""

    __slots__ = ("parts", "finish", "usage", "blocked", "response_id", "model")

    def __init__(self, obj: dict[str, Any]) -> None:
        # Hot path (one call per stream event): exact type checks, the usual shape first.
        self.parts: list[dict[str, Any]] = _NO_PARTS
        self.finish: Any = None
        self.blocked = False
        usage = obj.get("usageMetadata")
        self.usage: dict[str, Any] | None = usage if type(usage) is dict else None
        self.response_id = obj.get("responseId")
        model = obj.get("modelVersion")
        self.model = model if type(model) is str else ""
        candidates = obj.get("candidates")
        if type(candidates) is list and candidates:
            candidate = candidates[0]
            if type(candidate) is not dict:
                raise UpstreamProtocolError("upstream candidate is not an object")
            self.finish = candidate.get("finishReason")
            content = candidate.get("content")
            if content is None:
                return
            if type(content) is not dict:
                raise UpstreamProtocolError("upstream candidate content is not an object")
            parts = content.get("parts")
            if parts is None:
                return
            if type(parts) is not list or not all(type(p) is dict for p in parts):
                raise UpstreamProtocolError("upstream content parts are malformed")
            self.parts = parts
            return
        if candidates is not None and type(candidates) is not list:
            raise UpstreamProtocolError("upstream candidates are not an array")
        feedback = obj.get("promptFeedback")
        block = feedback.get("blockReason") if type(feedback) is dict else None
        self.blocked = isinstance(block, str) and bool(block)


def function_call(part: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(name, args) of a ``functionCall`` part, None for other parts; checked."""
    call = part.get("functionCall")
    if call is None:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise UpstreamProtocolError("upstream functionCall has no name")
    args = call.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise UpstreamProtocolError("upstream functionCall args are not an object")
    return call["name"], args


def _message_id(prefix: str, response_id: Any) -> str:
    if isinstance(response_id, str) and response_id:
        return response_id if response_id.startswith(prefix) else prefix + response_id
    return prefix + response_seed(None)[:24]


def gemini_to_openai_response(
    body: bytes, names: GeminiToolNames, options: TranslationOptions
) -> tuple[bytes, dict[str, Any] | None]:
    """Non-stream Gemini body -> ``chat.completion``; returns (body, usage in the common shape)."""
    chunk = Chunk(parse_json_object(body, "response"))
    seed = response_seed(chunk.response_id)
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in chunk.parts:
        call = function_call(part)
        if call is not None:
            calls.append(
                {
                    "id": mint_call_id("call_", seed, len(calls), part.get("thoughtSignature")),
                    "type": "function",
                    "function": {"name": names.client(call[0]), "arguments": dumps(call[1])},
                }
            )
            continue
        text = part.get("text")
        if isinstance(text, str):
            (thoughts if part.get("thought") is True else texts).append(text)
    if chunk.blocked and not chunk.parts:
        finish = "content_filter"
    else:
        finish = finish_pair(chunk.finish, saw_tool=bool(calls), saw_content=bool(texts))[0]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if thoughts and options.reasoning_content:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    usage = usage_as_anthropic(chunk.usage) if chunk.usage is not None else None
    result: dict[str, Any] = {
        "id": _message_id("chatcmpl-", chunk.response_id),
        "object": "chat.completion",
        "created": options.clock(),
        "model": chunk.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        result["usage"] = openai_usage(usage)
    return dumps_bytes(result), usage


def gemini_to_anthropic_response(
    body: bytes, names: GeminiToolNames, thinking: bool
) -> tuple[bytes, dict[str, Any] | None]:
    """Non-stream Gemini body -> Anthropic ``Message``; returns (body, usage in the common shape)."""
    chunk = Chunk(parse_json_object(body, "response"))
    seed = response_seed(chunk.response_id)
    content: list[dict[str, Any]] = []
    calls = 0
    saw_text = False
    for part in chunk.parts:
        call = function_call(part)
        if call is not None:
            tool_id = mint_call_id("toolu_", seed, calls, part.get("thoughtSignature"))
            content.append({"type": "tool_use", "id": tool_id, "name": names.client(call[0]), "input": call[1]})
            calls += 1
            continue
        text = part.get("text")
        if not isinstance(text, str) or not text:
            continue
        if part.get("thought") is True:
            if thinking:
                if content and content[-1]["type"] == "thinking":
                    content[-1]["thinking"] += text
                else:
                    content.append({"type": "thinking", "thinking": text, "signature": ""})
        elif content and content[-1]["type"] == "text":
            content[-1]["text"] += text
            saw_text = True
        else:
            content.append({"type": "text", "text": text})
            saw_text = True
    if chunk.blocked and not chunk.parts:
        stop = "refusal"
    else:
        stop = finish_pair(chunk.finish, saw_tool=calls > 0, saw_content=saw_text)[1]
    usage = usage_as_anthropic(chunk.usage)
    result = {
        "id": _message_id("msg_", chunk.response_id),
        "type": "message",
        "role": "assistant",
        "model": chunk.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": anthropic_client_usage(usage),
    }
    return dumps_bytes(result), usage if chunk.usage is not None else None
