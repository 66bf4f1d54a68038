"""Google's error shape (``google.rpc.Status`` as JSON) -> OpenAI / Anthropic error bodies.

``{"error": {"code": <http status>, "message", "status": <canonical code>, "details": [...]}}``,
sometimes wrapped in a one-element array (Vertex front ends). A 429 ``RESOURCE_EXHAUSTED``
carries its retry delay in a ``RetryInfo`` detail (``"retryDelay": "37s"``) and no
``Retry-After`` header: :func:`retry_after` reads it so the gateway can send one.
"""

from __future__ import annotations

import math
from typing import Any

from .._json import loads
from ..errors import anthropic_error_body, anthropic_error_type, openai_error_body, openai_error_type

# Canonical codes with a better client type than the HTTP status alone gives.
_ANTHROPIC_BY_STATUS = {
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "UNAVAILABLE": "overloaded_error",
    "DEADLINE_EXCEEDED": "timeout_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
}
_CREDENTIALS_REJECTED = "the upstream provider rejected the gateway's credentials"
_MAX_RETRY_AFTER = 24 * 3600


def _parse(body: bytes | dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(body, dict):
        parsed: Any = body
    else:
        try:
            parsed = loads(body)
        except (ValueError, RecursionError, UnicodeDecodeError):
            return None
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        parsed = parsed[0]
    if not isinstance(parsed, dict):
        return None
    error = parsed.get("error")
    return error if isinstance(error, dict) else None


def _credentials_rejected(status: int, error: dict[str, Any]) -> bool:
    if status in (401, 403) or error.get("status") in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return True
    details = error.get("details")
    return isinstance(details, list) and any(
        isinstance(d, dict) and d.get("reason") in ("API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED") for d in details
    )


def google_error_fields(status: int, body: bytes | dict[str, Any]) -> tuple[str, str | None, int]:
    """(message, canonical status such as ``RESOURCE_EXHAUSTED`` or None, HTTP status) of an error."""
    error = _parse(body)
    if error is None:
        if isinstance(body, bytes):
            text = body.decode("utf-8", "replace").strip()
            if text and len(text) <= 1000 and "<" not in text:
                return text, None, status
        return f"upstream returned HTTP {status}", None, status
    code = error.get("code")
    http = status or (code if isinstance(code, int) and not isinstance(code, bool) else 500)
    canonical = error.get("status") if isinstance(error.get("status"), str) else None
    if _credentials_rejected(http, error):
        return _CREDENTIALS_REJECTED, canonical, http
    message = error.get("message")
    return (message if isinstance(message, str) and message else f"upstream returned HTTP {http}"), canonical, http


def retry_after(body: bytes) -> int | None:
    """Whole seconds of the ``RetryInfo.retryDelay`` in an error body (rounded up), or None."""
    error = _parse(body)
    details = error.get("details") if error is not None else None
    if not isinstance(details, list):
        return None
    for detail in details:
        if not isinstance(detail, dict):
            continue
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = float(delay[:-1])
            except ValueError:
                continue
            if math.isfinite(seconds) and seconds >= 0:
                return min(math.ceil(seconds), _MAX_RETRY_AFTER)
        elif isinstance(delay, dict):  # proto Duration as an object
            secs, nanos = delay.get("seconds", 0), delay.get("nanos", 0)
            try:
                total = float(secs) + float(nanos) / 1e9
            except (TypeError, ValueError):
                continue
            if math.isfinite(total) and total >= 0:
                return min(math.ceil(total), _MAX_RETRY_AFTER)
    return None


def anthropic_type_for(status: int, canonical: str | None) -> str:
    if canonical is not None and canonical in _ANTHROPIC_BY_STATUS:
        return _ANTHROPIC_BY_STATUS[canonical]
    return anthropic_error_type(status) if status else "api_error"


def gemini_to_openai_error(status: int, body: bytes) -> bytes:
    """Google error -> OpenAI error body: type from the status, ``code`` the canonical code."""
    message, canonical, http = google_error_fields(status, body)
    return openai_error_body(message, openai_error_type(http), None, canonical)


def gemini_to_anthropic_error(status: int, body: bytes) -> bytes:
    """Google error -> Anthropic error body: type from the canonical code, else the status."""
    message, canonical, http = google_error_fields(status, body)
    return anthropic_error_body(message, anthropic_type_for(http, canonical))
