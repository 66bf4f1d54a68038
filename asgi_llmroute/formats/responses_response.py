"""Chat Completions -> Responses: the Response object, its items and usage, error bodies.

Shared by the non-stream translation (:func:`chat_to_responses_response`) and the stream
translator, which carries the same Response object in its lifecycle events.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from ._json import dumps_bytes, loads
from .errors import _error_fields, openai_error_body, openai_error_type
from .response_to_anthropic import message_text, parse_chat_completion
from .thinking_carry import encode_thinking
from .tools import ToolNameMap
from .types import TranslationOptions, UpstreamProtocolError
from .web_search import responses_annotation, web_search_call_item

_INVALID_ID = re.compile(r"[^A-Za-z0-9_-]")
# Prefixes stripped from the upstream id before deriving ours (chat ids, Anthropic ids via translation).
_ID_PREFIXES = ("chatcmpl-", "chatcmpl_", "msg_", "resp_")
#: ``finish_reason`` values that make a response ``incomplete``, with the reason the SDK knows.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def id_base(upstream_id: Any) -> str:
    """The id stem of one response: derived from the upstream id when there is one, else random."""
    if isinstance(upstream_id, str) and upstream_id:
        for prefix in _ID_PREFIXES:
            if upstream_id.startswith(prefix) and len(upstream_id) > len(prefix):
                upstream_id = upstream_id[len(prefix) :]
                break
        return _INVALID_ID.sub("_", upstream_id)[:96]
    return uuid.uuid4().hex


def item_id(prefix: str, base: str, index: int) -> str:
    """Id of output item ``index``: ``msg_``, ``fc_`` or ``rs_`` + the response's stem + the index."""
    return f"{prefix}{base}_{index}"


def status_for(finish: Any) -> tuple[str, dict[str, str] | None]:
    """(status, incomplete_details) for a chat ``finish_reason``."""
    reason = _INCOMPLETE.get(finish) if isinstance(finish, str) else None
    if reason is None:
        return "completed", None
    return "incomplete", {"reason": reason}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def responses_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Chat ``usage`` -> Responses ``usage``."""
    prompt = usage.get("prompt_tokens_details")
    prompt = prompt if isinstance(prompt, dict) else {}
    completion = usage.get("completion_tokens_details")
    completion = completion if isinstance(completion, dict) else {}
    input_tokens = _int(usage.get("prompt_tokens"))
    output_tokens = _int(usage.get("completion_tokens"))
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": _int(prompt.get("cached_tokens")),
            "cache_write_tokens": _int(prompt.get("cache_write_tokens")),
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": _int(completion.get("reasoning_tokens"))},
        "total_tokens": _int(usage.get("total_tokens")) or input_tokens + output_tokens,
    }


def response_object(
    echo: dict[str, Any],
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    incomplete: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A whole Response object: identity, state, output, and the request's echoed fields."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        **echo,
        "usage": usage,
    }


def message_item(
    item_id_: str, status: str, text: str | None, refusal: str | None, annotations: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text is not None:
        content.append({"type": "output_text", "text": text, "annotations": annotations or [], "logprobs": []})
    if refusal is not None:
        content.append({"type": "refusal", "refusal": refusal})
    return {"type": "message", "id": item_id_, "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id_: str, status: str, text: str, encrypted: str | None = None) -> dict[str, Any]:
    """A ``reasoning`` item; ``encrypted`` is the signed thinking that continues it (thinking_carry.py)."""
    # Chat upstreams return the raw reasoning text (reasoning_content), not a summary: reasoning_text.
    item: dict[str, Any] = {
        "type": "reasoning",
        "id": item_id_,
        "status": status,
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}] if text else [],
    }
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    return item


def function_call_item(
    item_id_: str,
    status: str,
    call_id: str,
    name: str,
    arguments: str,
    tool_names: ToolNameMap | None = None,
) -> dict[str, Any]:
    item = {"type": "function_call", "id": item_id_, "status": status, "call_id": call_id, "name": name}
    known = tool_names.get(name) if tool_names else None
    if known is not None:  # a namespaced or shortened tool, named as the client offered it
        namespace, item["name"] = known
        if namespace is not None:
            item["namespace"] = namespace
    item["arguments"] = arguments
    return item


def chat_to_responses_response(
    body: bytes,
    echo: dict[str, Any],
    options: TranslationOptions,
    tool_names: ToolNameMap | None = None,
) -> tuple[bytes, dict[str, Any] | None]:
    """Translate a non-stream ``chat.completion`` body; returns (Response body, upstream usage or None)."""
    completion, choice, message = parse_chat_completion(body)
    base = id_base(completion.get("id"))
    status, incomplete = status_for(choice.get("finish_reason"))
    item_status = "incomplete" if incomplete else "completed"

    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, str) else ""
    blocks = message.get("thinking_blocks")  # signed Anthropic thinking, through the chat translation
    encrypted = encode_thinking([b for b in blocks if isinstance(b, dict)]) if isinstance(blocks, list) else None
    if reasoning or encrypted is not None:
        output.append(reasoning_item(item_id("rs_", base, len(output)), item_status, reasoning, encrypted))
    searches = message.get("web_search_calls")  # the gateway's extension (web_search.py)
    for search in searches if isinstance(searches, list) else ():
        if isinstance(search, dict):
            status_ = "failed" if search.get("status") == "failed" else "completed"
            query = search.get("query")
            output.append(
                web_search_call_item(
                    item_id("ws_", base, len(output)), status_, query if isinstance(query, str) else ""
                )
            )
    text = message_text(message.get("content"))
    refusal = message.get("refusal")
    refusal = refusal if isinstance(refusal, str) and refusal else None
    if text or refusal is not None:
        raw = message.get("annotations")
        annotations = [a for a in map(responses_annotation, raw if isinstance(raw, list) else ()) if a is not None]
        output.append(message_item(item_id("msg_", base, len(output)), item_status, text or None, refusal, annotations))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                raise UpstreamProtocolError("upstream tool call has no function")
            call_id, name, arguments = call.get("id"), function.get("name"), function.get("arguments")
            output.append(
                function_call_item(
                    item_id("fc_", base, len(output)),
                    item_status,
                    call_id if isinstance(call_id, str) and call_id else "call_" + uuid.uuid4().hex[:24],
                    name if isinstance(name, str) else "",
                    arguments if isinstance(arguments, str) else "{}",
                    tool_names,
                )
            )

    usage = completion.get("usage")
    usage = usage if isinstance(usage, dict) else None
    created = completion.get("created")
    model = completion.get("model")
    result = response_object(
        echo,
        response_id="resp_" + base,
        created_at=created if isinstance(created, int) and not isinstance(created, bool) else options.clock(),
        model=model if isinstance(model, str) else "",
        status=status,
        output=output,
        usage=responses_usage(usage) if usage is not None else None,
        incomplete=incomplete,
    )
    return dumps_bytes(result), usage


def chat_to_responses_error(status: int, body: bytes) -> bytes:
    """Upstream (chat) error body -> OpenAI error body, which is also the Responses API's error shape.

    A body already in OpenAI's shape is kept byte for byte; anything else (plain text, foreign
    proxies) is rewritten into it.
    """
    try:
        parsed = loads(body)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        return body
    message, type_, code = _error_fields(status, body)
    return openai_error_body(
        message,
        type_ if isinstance(type_, str) and type_ else openai_error_type(status),
        code=code if isinstance(code, str) else None,
    )
