"""The per-request context every middleware reads and writes: ``scope["llmroute"]``.

Whichever middleware runs first creates it (:func:`ensure_context`); the others fill in their
fields. The context is the contract between layers; no middleware reaches into another's state.
"""

from __future__ import annotations

import enum
import fnmatch
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.types import Message, Receive, Scope

from .errors import ClientDisconnected, GatewayError
from .multipart import form_boundary, form_field, replace_form_field

if TYPE_CHECKING:
    from .providers.types import Deployment, Route

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "SCOPE_KEY",
    "ClientAPI",
    "ClientTraits",
    "Principal",
    "RequestContext",
    "ensure_context",
    "get_context",
    "receive_body",
    "receive_json",
    "route_path",
]

SCOPE_KEY = "llmroute"
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


class ClientAPI(str, enum.Enum):
    """The wire format the client speaks, decided by the request path."""

    OPENAI_CHAT = "openai.chat"
    ANTHROPIC_MESSAGES = "anthropic.messages"
    OPENAI_RESPONSES = "openai.responses"
    PASSTHROUGH = "passthrough"  # embeddings, images, audio, ...: OpenAI-style, relayed as-is

    @property
    def wire(self) -> str:
        """``"anthropic"`` or ``"openai"``: the family whose error shape and auth style the client expects."""
        return "anthropic" if self is ClientAPI.ANTHROPIC_MESSAGES else "openai"

    @classmethod
    def from_path(cls, path: str) -> ClientAPI:
        if path == "/v1/messages" or path.startswith("/v1/messages/"):
            return cls.ANTHROPIC_MESSAGES
        if path == "/v1/chat/completions":
            return cls.OPENAI_CHAT
        if path == "/v1/responses":
            return cls.OPENAI_RESPONSES
        return cls.PASSTHROUGH


@dataclass(frozen=True, slots=True)
class Principal:
    """The router token that authenticated the request (never the token itself).

    ``models`` are glob patterns on client-facing model names; ``("*",)`` allows every model.
    """

    name: str
    models: tuple[str, ...] = ("*",)
    _match: Callable[[str], object] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if "*" not in self.models:
            pattern = "|".join(fnmatch.translate(p) for p in self.models) or r"(?!)"
            object.__setattr__(self, "_match", re.compile(pattern).match)

    @property
    def restricted(self) -> bool:
        return self._match is not None

    def allows(self, model: str) -> bool:
        return self._match is None or self._match(model) is not None


@dataclass(slots=True)
class ClientTraits:
    """What the gateway noticed about the calling client."""

    litellm: bool = False
    session_id: str | None = None


@dataclass(slots=True)
class RequestContext:
    """Per-request state shared by the middlewares (see docs/architecture.md for who sets what).

    ``body`` holds the bytes to send upstream; :meth:`set_json` replaces the parsed body and
    re-encodes it lazily, so a body nobody rewrote is forwarded byte for byte.
    """

    client_api: ClientAPI
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    request_id: str | None = None
    principal: Principal | None = None
    model: str | None = None  # client-facing model name
    route: Route | None = None
    deployment: Deployment | None = None
    upstream_path: str | None = None  # set when translation targets another endpoint
    traits: ClientTraits = field(default_factory=ClientTraits)
    started: float = field(default_factory=time.perf_counter)
    first_byte: float | None = None
    attempts: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    # The body as the client sent it (kept by resolution), replayed for each retry or fallback.
    client_body: bytes | None = None
    # Why the last upstream attempt failed without an upstream status: "connect", "timeout",
    # "protocol", "transport" (forwarder), "disconnect" (the client left), "limited" (a concurrency limit).
    last_error: str | None = None
    # The boundary of a multipart/form-data body (upload endpoints), set when the body is read.
    form_boundary: bytes | None = None
    # The final event of the response stream (message_stop, [DONE], response.completed) reached the
    # client (ObserveMiddleware): the request is complete even if the client leaves before the upstream ends.
    completed: bool = False
    # An error the gateway itself raised about the upstream (forwarder: connect, timeout, cut stream), and
    # whether a layer has already rendered it in the client's format (translation layers pass it on unchanged).
    gateway_error: GatewayError | None = None
    gateway_error_rendered: bool = False
    _body: bytes | None = None
    _json: Any = None
    _json_parsed: bool = False

    @property
    def body_read(self) -> bool:
        return self._body is not None or self._json_parsed

    @property
    def body(self) -> bytes:
        if self._body is None:
            if not self._json_parsed:
                raise RuntimeError("the request body has not been read yet: call receive_body() first")
            self._body = json.dumps(self._json, separators=(",", ":"), ensure_ascii=False).encode()
        return self._body

    @body.setter
    def body(self, value: bytes) -> None:
        self._body = value
        self._json = None
        self._json_parsed = False

    def json(self) -> Any:
        """The body parsed as JSON (once); a :class:`GatewayError` 400 if it is not a JSON object."""
        if not self._json_parsed:
            try:
                parsed = json.loads(self.body)
            except (ValueError, UnicodeDecodeError):
                raise GatewayError(400, "Request body is not valid JSON.") from None
            if not isinstance(parsed, dict):
                raise GatewayError(400, "Request body must be a JSON object.")
            self._json = parsed
            self._json_parsed = True
        return self._json

    def set_json(self, value: dict[str, Any]) -> None:
        """Replace the body with ``value``; it is serialised when (and if) the bytes are needed."""
        self._json = value
        self._json_parsed = True
        self._body = None

    def requested_model(self) -> Any:
        """The body's ``model``: the JSON object's, or a multipart form's ``model`` field (None if absent).

        A 400 :class:`GatewayError` if the body is neither a JSON object nor a multipart form.
        """
        if self.form_boundary is not None:
            return form_field(self.body, self.form_boundary, "model")
        return self.json().get("model")

    def set_model(self, model: str) -> None:
        """Replace the body's ``model`` (JSON or multipart form), leaving everything else as it is."""
        if self.form_boundary is not None:
            self.body = replace_form_field(self.body, self.form_boundary, "model", model)
        else:
            body = self.json()
            body["model"] = model
            self.set_json(body)


def route_path(scope: Scope) -> str:
    """The request path below the mount point (``root_path``), as routing should see it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def get_context(scope: Scope) -> RequestContext | None:
    return scope.get(SCOPE_KEY)


def ensure_context(scope: Scope) -> RequestContext:
    """Return the request's context, creating it (client API from the path) if no layer has yet."""
    ctx: RequestContext | None = scope.get(SCOPE_KEY)
    if ctx is None:
        ctx = RequestContext(client_api=ClientAPI.from_path(route_path(scope)))
        scope[SCOPE_KEY] = ctx
    return ctx


async def receive_body(scope: Scope, receive: Receive) -> tuple[RequestContext, Receive]:
    """Read the request body into the context, once, and return a ``receive`` that replays it.

    The replaying ``receive`` yields the context's *current* body (a later layer may have rewritten
    it) as one ``http.request`` message, then passes every other message (``http.disconnect``) through.
    Bodies over ``ctx.max_body_bytes`` raise a 413 :class:`GatewayError` without being buffered.
    """
    ctx = ensure_context(scope)
    if ctx.body_read:
        return ctx, receive
    limit = ctx.max_body_bytes
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise GatewayError(400, "Invalid Content-Length header.") from None
            if declared > limit:
                raise _too_large(limit)
        elif name == b"content-type":
            ctx.form_boundary = form_boundary(value)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            ctx.last_error = "disconnect"
            raise ClientDisconnected()
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    ctx.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return ctx, _replaying(ctx, receive)


async def receive_json(scope: Scope, receive: Receive) -> tuple[RequestContext, dict[str, Any], Receive]:
    """:func:`receive_body`, then the body parsed as a JSON object (400 otherwise)."""
    ctx, receive = await receive_body(scope, receive)
    return ctx, ctx.json(), receive


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"Request body is larger than the limit of {limit} bytes.", type="request_too_large")


def _replaying(ctx: RequestContext, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": ctx.body, "more_body": False}
        return await receive()

    return replay
