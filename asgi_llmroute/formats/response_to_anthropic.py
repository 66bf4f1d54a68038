"""OpenAI ``chat.completion`` (non-stream) -> Anthropic ``Message``."""

from __future__ import annotations

from typing import Any

from ._json import dumps_bytes, parse_json_object
from .accounting import anthropic_usage
from .mapping import stop_reason
from .state import TranslationState
from .tools import new_tool_id, parse_tool_arguments, sanitize_id
from .types import TranslationOptions, UpstreamProtocolError


def message_text(content: Any) -> str:
    """The text of a chat completion message's ``content`` (a string, or text parts from some compatible servers)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some compatible servers return text parts
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def parse_chat_completion(body: bytes) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A non-stream ``chat.completion`` body: (completion, first choice, its message), checked."""
    completion = parse_json_object(body, "completion")
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamProtocolError("upstream completion has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise UpstreamProtocolError("upstream completion choice has no message")
    return completion, choice, message


def openai_to_anthropic_response(body: bytes, ctx: TranslationState, options: TranslationOptions) -> tuple[bytes, Any]:
    """Translate a non-stream chat.completion body; returns (client body, upstream usage or None)."""
    completion, choice, message = parse_chat_completion(body)

    content: list[dict[str, Any]] = []
    if ctx.thinking_requested:
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message_text(message.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls")
    saw_tool = False
    if isinstance(calls, list):
        for call in calls:
            if not isinstance(call, dict):
                raise UpstreamProtocolError("upstream tool call is not an object")
            function = call.get("function")
            if not isinstance(function, dict):
                raise UpstreamProtocolError("upstream tool call has no function")
            name = function.get("name")
            call_id = call.get("id")
            content.append(
                {
                    "type": "tool_use",
                    "id": sanitize_id(call_id) if isinstance(call_id, str) and call_id else new_tool_id("toolu_"),
                    "name": ctx.tool_names.client(name) if isinstance(name, str) else "",
                    "input": parse_tool_arguments(function.get("arguments")),
                }
            )
            saw_tool = True
    legacy = message.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        content.append(
            {
                "type": "tool_use",
                "id": new_tool_id("toolu_"),
                "name": ctx.tool_names.client(legacy["name"]),
                "input": parse_tool_arguments(legacy.get("arguments")),
            }
        )
        saw_tool = True

    usage = completion.get("usage")
    result = {
        "id": completion.get("id") if isinstance(completion.get("id"), str) else new_tool_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") if isinstance(completion.get("model"), str) else "",
        "content": content,
        "stop_reason": stop_reason(
            choice.get("finish_reason"), saw_tool=saw_tool, saw_refusal=isinstance(refusal, str) and bool(refusal)
        ),
        "stop_sequence": None,
        "usage": anthropic_usage(usage if isinstance(usage, dict) else {}),
    }
    return dumps_bytes(result), usage if isinstance(usage, dict) else None
