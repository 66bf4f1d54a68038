"""One error model for everything the gateway itself answers, rendered in the client's API format.

    GatewayError            status + message, rendered per client API
    +-- (raised as is)      400 bad JSON / missing model, 401, 403, 404, 413, 429
    +-- UpstreamError       502 upstream unreachable or broken, 504 upstream timeout

OpenAI clients get ``{"error": {"message", "type", "param", "code"}}``; Anthropic clients get
``{"type": "error", "error": {"type", "message"}}``. Statuses are the same for both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import Send

from .formats.errors import anthropic_error_type, openai_error_type
from .formats.sse import encode_sse
from .send import send_body

__all__ = ["ClientDisconnected", "GatewayError", "ResponseComplete", "UpstreamError", "render_error", "send_error"]


class GatewayError(Exception):
    """An error the gateway answers itself. ``message`` must never contain a secret."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = tuple(headers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


class ClientDisconnected(GatewayError):
    """The client went away before its request body arrived: there is nobody left to answer.

    A :class:`GatewayError` (status 499, nginx's "client closed request") so that every layer's
    error path handles it; :func:`send_error` sends nothing for it.
    """

    def __init__(self) -> None:
        super().__init__(499, "The client closed the request before sending its body.")


class ResponseComplete(Exception):
    """Raised by a ``send`` wrapper that has finished the response on its own (for instance replaced an
    upstream body too large to translate with a 502): the sender must stop and send nothing more."""


class UpstreamError(GatewayError):
    """The upstream could not be reached (502), timed out (504) or answered nonsense (502)."""


#: google.rpc canonical codes by HTTP status, for Gemini-API clients.
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def render_error(wire: str, error: GatewayError) -> bytes:
    """The JSON body of ``error`` for a client of ``wire`` (``"openai"``, ``"anthropic"`` or ``"gemini"``)."""
    if wire == "gemini":  # google.rpc.Status, as Google's APIs answer
        canonical = _GOOGLE_STATUS.get(error.status, "INTERNAL" if error.status >= 500 else "FAILED_PRECONDITION")
        body: dict[str, object] = {"error": {"code": error.status, "message": error.message, "status": canonical}}
    elif wire == "anthropic":
        # Anthropic clients branch on error.type, whose vocabulary is fixed by status (docs/translation.md, "Errors").
        kind = anthropic_error_type(error.status)
        body = {"type": "error", "error": {"type": kind, "message": error.message}}
    else:
        body = {
            "error": {
                "message": error.message,
                "type": error.type or openai_error_type(error.status),
                "param": error.param,
                "code": error.code,
            }
        }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


async def send_error(send: Send, wire: str, error: GatewayError) -> None:
    """Send ``error`` as a complete JSON response. Only call it before the response has started."""
    if isinstance(error, ClientDisconnected):
        return  # nobody to answer
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers]
    await send_body(send, error.status, render_error(wire, error), b"application/json", headers)


def render_stream_error(wire: str, error: GatewayError) -> bytes:
    """``error`` as one SSE event in the client's stream format (after a stream has started).

    OpenAI clients get ``data: {"error": ...}`` (the SDK raises on it) and no ``[DONE]``; Anthropic
    clients get ``event: error``, as Anthropic itself ends a failed stream.
    """
    return encode_sse(render_error(wire, error).decode(), "error" if wire == "anthropic" else None)
