"""Bedrock Converse response -> Anthropic Message; the stop-reason, usage and error vocabularies
of Bedrock (see docs/translation.md, "Bedrock Converse")."""

from __future__ import annotations

import uuid
from typing import Any

from ._json import loads, parse_json_object
from .errors import anthropic_error_body, error_type_for, openai_error_body, openai_error_type
from .tools import ToolNames
from .types import UpstreamProtocolError

# Converse stopReason -> Anthropic stop_reason. The "malformed" ones are decided by content.
_STOP_REASONS = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "model_context_window_exceeded": "model_context_window_exceeded",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
}
MALFORMED_STOP_REASONS = frozenset(("malformed_model_output", "malformed_tool_use"))

# Bedrock exception name (HTTP errors and in-stream exception frames) -> HTTP status.
EXCEPTION_STATUS = {
    "validationexception": 400,
    "servicequotaexceededexception": 400,
    "accessdeniedexception": 403,
    "unrecognizedclientexception": 403,
    "invalidsignatureexception": 403,
    "expiredtokenexception": 403,
    "resourcenotfoundexception": 404,
    "modeltimeoutexception": 408,
    "throttlingexception": 429,
    "modelnotreadyexception": 429,
    "modelerrorexception": 424,
    "modelstreamerrorexception": 424,
    "internalserverexception": 500,
    "serviceunavailableexception": 503,
}

# Anthropic error type per status for Bedrock errors: 408 and 424 need their own rule (the generic
# table would call them invalid requests), and 503 reads as overloaded so Anthropic clients back off.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    424: "api_error",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def exception_status(name: str | None, default: int = 500) -> int:
    """HTTP status of a Bedrock exception name (``ThrottlingException``, ``throttlingException``)."""
    if not name:
        return default
    return EXCEPTION_STATUS.get(name.lower(), default)


def bedrock_anthropic_type(status: int) -> str:
    return error_type_for(status, _ANTHROPIC_TYPES, "api_error")


def error_type_name(header_value: str | None) -> str | None:
    """Exception name from ``x-amzn-ErrorType`` (``ThrottlingException:http://...``)."""
    if not header_value:
        return None
    return header_value.split(":", 1)[0].strip() or None


def _error_message(status: int, body: bytes) -> tuple[str, str | None]:
    """(message, exception name from the body) of a Bedrock error body ``{"message": ...}``."""
    try:
        parsed = loads(body)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        name = parsed.get("__type") or parsed.get("code")
        name = name.rsplit("#", 1)[-1] if isinstance(name, str) else None
        for key in ("message", "Message"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value, name
        err = parsed.get("error")  # an Anthropic-shaped body (InvokeModel model errors)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"], name
    return f"upstream returned HTTP {status}", None


def bedrock_error(client: str, status: int, body: bytes, error_type: str | None = None) -> bytes:
    """Bedrock HTTP error (``{"message"}`` body, exception name from ``x-amzn-ErrorType`` when the
    caller has it) -> the client's error body; the caller keeps ``status``."""
    message, body_type = _error_message(status, body)
    name = error_type or body_type
    if client == "anthropic":
        return anthropic_error_body(message, bedrock_anthropic_type(status))
    return openai_error_body(message, openai_error_type(status), code=name)


def _usage(usage: Any) -> dict[str, int]:
    def num(key: str) -> int:
        value = usage.get(key) if isinstance(usage, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    return {
        "input_tokens": num("inputTokens"),
        "cache_creation_input_tokens": num("cacheWriteInputTokens"),
        "cache_read_input_tokens": num("cacheReadInputTokens"),
        "output_tokens": num("outputTokens"),
    }


def anthropic_usage(usage: Any) -> dict[str, int]:
    """Converse ``usage`` -> Anthropic usage (Converse ``inputTokens`` already excludes the cache)."""
    return _usage(usage)


def stop_reason(reason: Any, has_content: bool) -> tuple[str | None, str | None]:
    """(Anthropic stop_reason, warning): None as reason means "fail" (malformed output, nothing usable)."""
    if isinstance(reason, str) and reason in MALFORMED_STOP_REASONS:
        if has_content:
            return "end_turn", f"upstream finished with {reason}; its partial answer is returned"
        return None, f"upstream returned {reason}"
    mapped = _STOP_REASONS.get(reason) if isinstance(reason, str) else None
    return mapped or "end_turn", None


def new_message_id() -> str:
    return "msg_bdrk_" + uuid.uuid4().hex[:24]


def converse_blocks(content: list[Any], names: ToolNames) -> list[dict[str, Any]]:
    """Converse content blocks of an assistant message -> Anthropic content blocks."""
    out: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            raise UpstreamProtocolError("upstream message content block is not an object")
        if "text" in block:
            text = block["text"]
            if isinstance(text, str):
                out.append({"type": "text", "text": text})
        elif "toolUse" in block:
            tool = block["toolUse"]
            if (
                not isinstance(tool, dict)
                or not isinstance(tool.get("toolUseId"), str)
                or not isinstance(tool.get("name"), str)
            ):
                raise UpstreamProtocolError("upstream toolUse block lacks toolUseId or name")
            tool_input = tool.get("input")
            out.append(
                {
                    "type": "tool_use",
                    "id": tool["toolUseId"],
                    "name": names.client(tool["name"]),
                    "input": tool_input if isinstance(tool_input, dict) else {},
                }
            )
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"]
            if not isinstance(reasoning, dict):
                continue
            text = reasoning.get("reasoningText")
            if isinstance(text, dict):
                thinking = text.get("text")
                signature = text.get("signature")
                out.append(
                    {
                        "type": "thinking",
                        "thinking": thinking if isinstance(thinking, str) else "",
                        "signature": signature if isinstance(signature, str) else "",
                    }
                )
            elif isinstance(reasoning.get("redactedContent"), str):
                out.append({"type": "redacted_thinking", "data": reasoning["redactedContent"]})
        elif "citationsContent" in block:
            cited = block["citationsContent"]
            parts = cited.get("content") if isinstance(cited, dict) else None
            texts = [p["text"] for p in parts or () if isinstance(p, dict) and isinstance(p.get("text"), str)]
            if texts:
                out.append({"type": "text", "text": "".join(texts)})
        # image, document, toolResult, guardContent... in an answer: no Anthropic/OpenAI output field.
    return out


def converse_to_anthropic_message(
    body: bytes, names: ToolNames, model: str, warnings: list[str] | None = None
) -> dict[str, Any]:
    """A non-stream Converse response body -> Anthropic Message object; raises UpstreamProtocolError."""
    parsed = parse_json_object(body, "response")
    output = parsed.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        raise UpstreamProtocolError("upstream response has no output message")
    blocks = converse_blocks(content, names)
    reason, warning = stop_reason(parsed.get("stopReason"), bool(blocks))
    if warning is not None and warnings is not None:
        warnings.append(warning)
    if reason is None:
        raise UpstreamProtocolError(warning or "upstream returned no usable output")
    stop_sequence = None
    fields = parsed.get("additionalModelResponseFields")
    if isinstance(fields, dict) and isinstance(fields.get("stop_sequence"), str):
        stop_sequence = fields["stop_sequence"]
    return {
        "id": new_message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": reason,
        "stop_sequence": stop_sequence,
        "usage": _usage(parsed.get("usage")),
    }
