"""Anthropic ``Message`` (non-stream) -> OpenAI ``chat.completion``."""

from __future__ import annotations

from typing import Any

from ._json import dumps, dumps_bytes, parse_json_object
from .accounting import openai_usage
from .mapping import finish_reason
from .state import TranslationState
from .types import TranslationOptions, UpstreamProtocolError
from .web_search import ANTHROPIC_NAME, chat_annotations, result_status, search_query


def anthropic_to_openai_response(body: bytes, ctx: TranslationState, options: TranslationOptions) -> tuple[bytes, Any]:
    """Translate a non-stream Anthropic Message body; returns (client body, upstream usage or None)."""
    message = parse_json_object(body, "message")
    content = message.get("content")
    if not isinstance(content, list):
        raise UpstreamProtocolError("upstream message has no content array")
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    searches: dict[str, dict[str, Any]] = {}  # server_tool_use id -> web_search_calls entry
    length = 0  # characters of text so far: citations' offsets
    for block in content:
        if not isinstance(block, dict):
            raise UpstreamProtocolError("upstream message content block is not an object")
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if isinstance(text, str):
                texts.append(text)
                annotations += chat_annotations(block.get("citations"), length, length + len(text))
                length += len(text)
        elif kind == "server_tool_use" and block.get("name") == ANTHROPIC_NAME and isinstance(block.get("id"), str):
            query = search_query(block.get("input"))
            searches[block["id"]] = {"id": block["id"], "status": "in_progress", "query": query}
        elif kind == "web_search_tool_result":
            search = searches.get(str(block.get("tool_use_id")))
            if search is not None:
                search["status"] = result_status(block)
        elif kind == "tool_use":
            tool_id, name = block.get("id"), block.get("name")
            if not isinstance(tool_id, str) or not isinstance(name, str):
                raise UpstreamProtocolError("upstream tool_use block lacks id or name")
            tool_input = block.get("input")
            calls.append(
                {
                    "id": tool_id,
                    "type": "function",
                    "function": {
                        "name": ctx.tool_names.client(name),
                        "arguments": dumps(tool_input if tool_input is not None else {}),
                    },
                }
            )
        elif kind == "thinking":
            thinking = block.get("thinking")
            thinking = thinking if isinstance(thinking, str) else ""
            reasoning.append(thinking)
            thinking_blocks.append({"type": "thinking", "thinking": thinking, "signature": block.get("signature", "")})
        elif kind == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking", "data": block.get("data", "")})
        # other server tools' blocks, unknown blocks: not client tool calls, dropped (5.3).

    out_message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if options.reasoning_content and thinking_blocks:
        out_message["reasoning_content"] = "".join(reasoning)
        # LiteLLM-style extension: lets a client echo signed thinking back on the next turn.
        out_message["thinking_blocks"] = thinking_blocks
    if calls:
        out_message["tool_calls"] = calls
    if annotations:
        out_message["annotations"] = annotations  # as OpenAI's search models give them
    if searches and options.web_search_calls:
        out_message["web_search_calls"] = list(searches.values())
    usage = message.get("usage")
    result: dict[str, Any] = {
        "id": message.get("id") if isinstance(message.get("id"), str) else "",
        "object": "chat.completion",
        "created": options.clock(),
        "model": message.get("model") if isinstance(message.get("model"), str) else "",
        "choices": [
            {
                "index": 0,
                "message": out_message,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason")),
            }
        ],
    }
    if isinstance(usage, dict):
        result["usage"] = openai_usage(usage)
    return dumps_bytes(result), usage if isinstance(usage, dict) else None
