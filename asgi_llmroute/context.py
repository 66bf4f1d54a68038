"""The per-request context every middleware reads and writes: ``scope["llmroute"]``.

One cohesive thing over 400 lines: the context and the one reading of the request body that fills it
(size limit, JSON checks, the model name), which every middleware shares.

Whichever middleware runs first creates it (:func:`ensure_context`); the others fill in their
fields. The context is the contract between layers; no middleware reaches into another's state.
"""

from __future__ import annotations

import enum
import fnmatch
import json
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from starlette.types import Message, Receive, Scope

from .errors import ClientDisconnected, GatewayError
from .multipart import FormError, form_boundary, form_field, replace_form_field

if TYPE_CHECKING:
    from .providers.types import Deployment, Route

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_MODEL_NAME",
    "SCOPE_KEY",
    "ClientAPI",
    "ClientTraits",
    "Principal",
    "RequestContext",
    "check_model_name",
    "ensure_context",
    "get_context",
    "parse_json_body",
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
    #: Gemini API clients (google-genai): ``/v1beta/models/{model}:generateContent`` (or
    #: ``:streamGenerateContent``, ``:countTokens``), the model in the path.
    GEMINI_GENERATE = "gemini.generate"

    @property
    def wire(self) -> str:
        """``"anthropic"``, ``"openai"`` or ``"gemini"``: the family whose error shape the client expects."""
        if self is ClientAPI.ANTHROPIC_MESSAGES:
            return "anthropic"
        return "gemini" if self is ClientAPI.GEMINI_GENERATE else "openai"

    @classmethod
    def from_path(cls, path: str) -> ClientAPI:
        if path == "/v1/messages" or path.startswith("/v1/messages/"):
            return cls.ANTHROPIC_MESSAGES
        if path == "/v1/chat/completions":
            return cls.OPENAI_CHAT
        if path == "/v1/responses":
            return cls.OPENAI_RESPONSES
        if path_model(path) is not None:
            return cls.GEMINI_GENERATE
        return cls.PASSTHROUGH


_GEMINI_PATH = re.compile(r"/v1(?:beta)?/models/(.+):(?:generateContent|streamGenerateContent|countTokens)")


def path_model(path: str) -> str | None:
    """The model of a Gemini-API path (``/v1beta/models/{model}:generateContent``), or None."""
    match = _GEMINI_PATH.fullmatch(path)
    return urllib.parse.unquote(match.group(1)) if match is not None else None


@dataclass(frozen=True, slots=True)
class Principal:
    """The router token that authenticated the request (never the token itself).

    ``models`` are glob patterns on client-facing model names; ``("*",)`` allows every model. A
    virtual key (created at run time) also carries its id, team and limits; the rate and concurrency
    limit middlewares apply those when their own tables have no entry for the name.
    """

    name: str
    models: tuple[str, ...] = ("*",)
    key_id: str | None = None
    team: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_in_flight: int | None = None
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

    def check(self, model: str) -> None:
        """403 (``model_not_allowed``) unless this token's allow-list covers ``model``."""
        if self._match is not None and self._match(model) is None:
            raise GatewayError(403, f"This router token may not use model {model!r}.", code="model_not_allowed")


@dataclass(slots=True)
class ClientTraits:
    """What the gateway noticed about the calling client."""

    litellm: bool = False
    session_id: str | None = None


class SentResponse(Protocol):
    """What of the response went out to the client so far (``ObserveMiddleware`` keeps it)."""

    status: int | None  # once the response started
    stream: bool  # an event stream
    done: bool  # the final body message went out
    last: bytes  # the last non-empty body sent


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
    # The status the forwarder answered the current attempt with (its own error responses included), set
    # before the response starts; 0 until then.
    attempt_status: int = 0
    # The boundary of a multipart/form-data body (upload endpoints), set when the body is read.
    form_boundary: bytes | None = None
    # The final event of the response stream (message_stop, [DONE], response.completed) reached the
    # client (ObserveMiddleware): the request is complete even if the client leaves before the upstream ends.
    completed: bool = False
    # What went out to the client (ObserveMiddleware): an outer layer reads it instead of watching send.
    response: SentResponse | None = None
    # An error the gateway itself raised about the upstream (forwarder: connect, timeout, cut stream), and
    # whether a layer has already rendered it in the client's format (translation layers pass it on unchanged).
    gateway_error: GatewayError | None = None
    gateway_error_rendered: bool = False
    # Gemini-API clients name the model in the path, not the body (set with the client API).
    path_model: str | None = None
    # The chat client takes signed thinking back (ResponsesMiddleware: it carries it in reasoning items), so
    # translated chat streams carry the thinking_blocks extension whatever the translation options say.
    thinking_blocks: bool = False
    # A warning for the client about this attempt (translation: fields dropped), sent as x-llmroute-warning.
    warning: str | None = None
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
            parsed = parse_json_body(self.body)
            if not isinstance(parsed, dict):
                raise GatewayError(400, "Request body must be a JSON object.")
            self._json = parsed
            self._json_parsed = True
        return self._json

    def add_warning(self, text: str) -> None:
        """Add to this attempt's ``warning`` (``; ``-separated), as a header-safe value: printable ASCII
        (other characters escaped), at most 2000 characters."""
        text = _UNPRINTABLE.sub("?", text.encode("ascii", "backslashreplace").decode("ascii"))
        joined = text if self.warning is None else self.warning + "; " + text
        self.warning = joined if len(joined) <= _MAX_WARNING else joined[: _MAX_WARNING - 3] + "..."

    def set_json(self, value: dict[str, Any]) -> None:
        """Replace the body with ``value``; it is serialised when (and if) the bytes are needed."""
        self._json = value
        self._json_parsed = True
        self._body = None

    def requested_model(self) -> Any:
        """The body's ``model``: the JSON object's, or a multipart form's ``model`` field (None if absent).

        A 400 :class:`GatewayError` if the body is neither a JSON object nor a multipart form, or if
        the model name is not one (:func:`check_model_name`).
        """
        if self.client_api is ClientAPI.GEMINI_GENERATE:
            return self.path_model
        if self.form_boundary is not None:
            try:
                model: Any = form_field(self.body, self.form_boundary, "model")
            except FormError as exc:
                raise GatewayError(400, f"Invalid form: {exc}.", param="model", code="invalid_form") from None
        else:
            model = self.json().get("model")
        if isinstance(model, str):
            check_model_name(model)
        return model

    def set_model(self, model: str) -> None:
        """Replace the body's ``model`` (JSON or multipart form), leaving everything else as it is.

        Gemini-API requests carry no model in the body: the upstream URL names the deployment's."""
        if self.client_api is ClientAPI.GEMINI_GENERATE:
            self.path_model = model
            return
        if self.form_boundary is not None:
            try:
                self.body = replace_form_field(self.body, self.form_boundary, "model", model)
            except FormError as exc:
                raise GatewayError(400, f"Invalid form: {exc}.", param="model", code="invalid_form") from None
        else:
            body = self.json()
            raw = self._body
            body["model"] = model
            spliced = _splice_model(raw, model) if raw is not None else None
            if spliced is None:
                self.set_json(body)
            else:
                self._body = spliced  # the client's bytes with only the model's value replaced


# Characters a header value cannot carry (after non-ASCII is escaped), and the longest warning sent.
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
_MAX_WARNING = 2000

# The value of a `"model"` member, a JSON string.
_MODEL_MEMBER = re.compile(rb'"model"\s*:\s*("(?:[^"\\]|\\.)*")')


def _splice_model(raw: bytes, model: str) -> bytes | None:
    """``raw`` (the JSON text the body was parsed from) with its model's value replaced in place, or
    None if that is not certain. ``"model"`` occurring once in the text is the top-level member (the
    body has one; any other, key or string, would be a second occurrence; escaped quotes do not match)."""
    if raw.count(b'"model"') != 1:
        return None
    match = _MODEL_MEMBER.search(raw)
    if match is None:
        return None
    value = json.dumps(model, ensure_ascii=False).encode()
    return raw[: match.start(1)] + value + raw[match.end(1) :]


#: JSON nested deeper than this is refused (400): no API request needs it, and it keeps every
#: recursive walk over a body (translation, re-encoding) far from Python's recursion limit.
MAX_JSON_DEPTH = 128
#: Longest accepted model name, in characters.
MAX_MODEL_NAME = 256

# A JSON escape of a UTF-16 surrogate: the only way a lone one can get into a body decoded as strict UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# C0 controls, DEL and C1 controls: never part of a model name, and fatal in a header or a log line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def parse_json_body(body: bytes) -> Any:
    """Parse a request body as JSON, or raise a 400 :class:`GatewayError` saying what is wrong with it.

    Refused: text that is not UTF-8 (RFC 8259), a lone UTF-16 surrogate (as the UTF-8 bytes of one or
    as an unpaired ``\\uD800``-style escape: it cannot be re-encoded for the upstream), and nesting
    deeper than :data:`MAX_JSON_DEPTH`.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if 0xD800 <= _surrogate_at(body, exc.start) <= 0xDFFF:
            raise _surrogate_error() from None
        raise GatewayError(400, "Request body is not valid UTF-8.", code="invalid_json") from None
    try:
        parsed = json.loads(text)
    except RecursionError:
        raise _nesting_error() from None
    except ValueError:
        raise GatewayError(400, "Request body is not valid JSON.", code="invalid_json") from None
    # Counting brackets is cheap; only a body with many of them can be nested too deep.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth_exceeds(parsed, MAX_JSON_DEPTH):
        raise _nesting_error()
    if _SURROGATE_ESCAPE.search(text) is not None:
        try:
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _surrogate_error() from None
    return parsed


def check_model_name(model: str) -> None:
    """Raise a 400 :class:`GatewayError` unless ``model`` could be a model name.

    Control characters (C0, DEL, C1) and lone surrogates are refused, and so are names longer than
    :data:`MAX_MODEL_NAME`: a model name ends up in upstream URLs, headers and log lines.
    """
    if _CONTROL.search(model) is not None:
        raise GatewayError(400, "The model name contains a control character.", param="model", code="invalid_model")
    if len(model) > MAX_MODEL_NAME:
        raise GatewayError(
            400, f"The model name is longer than {MAX_MODEL_NAME} characters.", param="model", code="invalid_model"
        )
    if not model.isascii():
        try:
            model.encode("utf-8")
        except UnicodeEncodeError:
            raise GatewayError(
                400, "The model name contains a lone UTF-16 surrogate.", param="model", code="invalid_model"
            ) from None


def _surrogate_at(body: bytes, start: int) -> int:
    """The code point a three-byte UTF-8 sequence at ``start`` would encode (0 if it is not one)."""
    chunk = body[start : start + 3]
    if len(chunk) == 3 and chunk[0] == 0xED:
        return ((chunk[0] & 0x0F) << 12) | ((chunk[1] & 0x3F) << 6) | (chunk[2] & 0x3F)
    return 0


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, (dict, list)))
    return False


def _nesting_error() -> GatewayError:
    return GatewayError(400, f"Request body JSON is nested deeper than {MAX_JSON_DEPTH} levels.", code="invalid_json")


def _surrogate_error() -> GatewayError:
    return GatewayError(
        400,
        "Request body contains a lone UTF-16 surrogate (U+D800 to U+DFFF), which is not valid Unicode text.",
        code="invalid_json",
    )


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
        path = route_path(scope)
        ctx = RequestContext(client_api=ClientAPI.from_path(path), path_model=path_model(path))
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
