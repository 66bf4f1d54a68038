"""Error vocabularies and error bodies of both protocols."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._json import dumps_bytes, loads

# HTTP status -> Anthropic error.type (docs/translation.md, "Errors").
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

ANTHROPIC_ERROR_TYPES = frozenset(_ANTHROPIC_TYPES.values())

# What OpenAI itself (or its SDK's exception classes) use per status; see docs/translation.md.
_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
}


def error_type_for(status: int, known: Mapping[int, str], otherwise: str) -> str:
    """The one rule for an error ``type``: the status's own in ``known``, else ``invalid_request_error`` for
    a 4xx and ``otherwise`` (the API's server error type) for anything else."""
    found = known.get(status)
    if found is not None:
        return found
    return "invalid_request_error" if 400 <= status < 500 else otherwise


def anthropic_error_type(status: int) -> str:
    """Anthropic ``error.type`` for an HTTP status: other 4xx -> invalid_request_error,
    other 5xx (and anything else) -> api_error."""
    return error_type_for(status, _ANTHROPIC_TYPES, "api_error")


def openai_error_type(status: int) -> str:
    """OpenAI ``error.type`` for an HTTP status: 401 authentication_error, 403 permission_error,
    429 rate_limit_error, other 4xx invalid_request_error, 5xx (and anything else) server_error."""
    return error_type_for(status, _OPENAI_TYPES, "server_error")


def openai_error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}`` as compact JSON bytes."""
    return dumps_bytes({"error": {"message": message, "type": type_, "param": param, "code": code}})


def anthropic_error_body(message: str, type_: str) -> bytes:
    """``{"type": "error", "error": {"type", "message"}}`` as compact JSON bytes."""
    return dumps_bytes({"type": "error", "error": {"type": type_, "message": message}})


_MAX_PLAIN_MESSAGE = 1000


def _plain_text_message(status: int, body: bytes) -> str:
    """Message for a non-JSON error body: short plain text is kept, HTML and long bodies are not."""
    text = body.decode("utf-8", "replace").strip()
    if text and len(text) <= _MAX_PLAIN_MESSAGE and "<" not in text:
        return text
    return f"upstream returned HTTP {status}"


def _error_fields(status: int, body: bytes) -> tuple[str, Any, Any]:
    """(message, type, code) from an error body of either protocol or of a foreign proxy."""
    try:
        parsed = loads(body)
    except (ValueError, RecursionError):
        return _plain_text_message(status, body), None, None
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict):
            message = err.get("message")
            return (
                message if isinstance(message, str) and message else f"upstream returned HTTP {status}",
                err.get("type"),
                err.get("code"),
            )
        if isinstance(err, str) and err:
            return err, parsed.get("type") if parsed.get("type") != "error" else None, parsed.get("code")
        for key in ("message", "detail"):  # bare {"message": ...} / FastAPI-style {"detail": ...}
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value, parsed.get("type"), parsed.get("code")
    return f"upstream returned HTTP {status}", None, None


def anthropic_to_openai_error(status: int, body: bytes) -> bytes:
    """Anthropic upstream error -> OpenAI error body: Anthropic's type kept verbatim."""
    message, type_, _ = _error_fields(status, body)
    if not isinstance(type_, str) or not type_:
        type_ = anthropic_error_type(status)
    return openai_error_body(message, type_)


def openai_error_to_anthropic_type(status: int | None, type_: Any, code: Any) -> str:
    """Anthropic error type for an OpenAI error object."""
    if isinstance(code, int) and not isinstance(code, bool):
        return anthropic_error_type(code)
    if isinstance(code, str) and code.isdigit():
        return anthropic_error_type(int(code))
    if code == "rate_limit_exceeded" or type_ in ("requests", "tokens", "rate_limit_error"):
        return "rate_limit_error"
    if code == "insufficient_quota" or type_ == "insufficient_quota":
        return "billing_error"
    if isinstance(type_, str) and type_ in ANTHROPIC_ERROR_TYPES:
        return type_
    if status is not None:
        return anthropic_error_type(status)
    return "api_error"


_MAX_CONTEXT = re.compile(r"maximum context length is (\d+)")
_SPLIT = re.compile(r"\((\d+) in the messages, (\d+) in the completion\)")
_PROMPT = re.compile(r"(?:resulted in|request has) (\d+) (?:input )?tokens")


def rewrite_context_length(message: str) -> str | None:
    """Anthropic's context-window wording for an OpenAI context-length message, or None."""
    limit = _MAX_CONTEXT.search(message)
    if limit is None:
        return None
    split = _SPLIT.search(message)
    if split is not None:
        return (
            f"input length and `max_tokens` exceed context limit: {split.group(1)} + {split.group(2)} > "
            f"{limit.group(1)}, decrease input length or `max_tokens` and try again"
        )
    prompt = _PROMPT.search(message)
    if prompt is not None:
        return f"prompt is too long: {prompt.group(1)} tokens > {limit.group(1)} maximum"
    return None


def openai_to_anthropic_error(status: int, body: bytes) -> bytes:
    """OpenAI upstream error -> Anthropic error body: type from the status, message kept,
    context-length errors reworded so Anthropic-native clients can recover."""
    message, type_, code = _error_fields(status, body)
    if status >= 400:
        anthropic_type = anthropic_error_type(status)
    else:  # not an HTTP error status: fall back on the body's own vocabulary
        anthropic_type = openai_error_to_anthropic_type(None, type_, code)
    if code == "context_length_exceeded" or (status == 400 and "maximum context length" in message):
        message = rewrite_context_length(message) or message
    return anthropic_error_body(message, anthropic_type)
