"""Per-request translators for AWS Bedrock upstreams: Converse / ConverseStream for any model, and
Claude's native InvokeModel / InvokeModelWithResponseStream.

Same shape as :class:`~asgi_llmroute.formats.Translator` (``request``, then one of ``response``,
``error`` or ``stream``), plus :meth:`BedrockTranslator.path`: the model goes in the URL.
OpenAI Chat clients are translated to Anthropic Messages first and reuse that translator's
rules (tool-call ids, reasoning effort, history repairs); Responses clients arrive as Chat.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from ._json import dumps_bytes, parse_json_object
from .accounting import accounting_from_anthropic
from .bedrock_stream import BedrockStream, InvokeChunks
from .converse_request import PASSTHROUGH_FIELDS, anthropic_to_converse_request, is_anthropic_model
from .converse_response import bedrock_error, converse_to_anthropic_message
from .converse_stream import ConverseEvents
from .request_to_anthropic import openai_to_anthropic_request
from .response_to_openai import anthropic_to_openai_response
from .state import TranslationState
from .tools import ANTHROPIC_NAME_MAX, ToolNames
from .types import API, DEFAULT_OPTIONS, TranslationError, TranslationOptions

__all__ = ["BEDROCK_ANTHROPIC_VERSION", "BedrockAPI", "BedrockTranslator", "model_path", "split_betas"]

BedrockAPI = Literal["converse", "invoke"]
"""Which Bedrock runtime API a request uses: Converse (every model) or InvokeModel (Claude body)."""

#: ``anthropic_version`` of InvokeModel bodies for Claude on Bedrock.
BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"

_OPERATIONS = {
    ("converse", False): "converse",
    ("converse", True): "converse-stream",
    ("invoke", False): "invoke",
    ("invoke", True): "invoke-with-response-stream",
}
# InvokeModel's Claude schema rejects keys it does not know; these are the Messages API's own
# request members (the body's model and stream go in the URL instead).
_INVOKE_KEYS = frozenset(
    (
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "output_config",
        "container",
        "mcp_servers",
        "context_management",
        "service_tier",
    )
)


def model_path(model_id: str, api: BedrockAPI, stream: bool) -> str:
    """``/model/{id}/{operation}`` with the id percent-encoded as one path segment (``:`` -> ``%3A``,
    the ``/`` of ARNs -> ``%2F``), as boto3 sends it."""
    if not model_id:
        raise TranslationError("a Bedrock model id is required", "model")
    return "/model/" + quote(model_id, safe="") + "/" + _OPERATIONS[(api, stream)]


def split_betas(values: list[str] | tuple[str, ...] | None) -> list[str]:
    """``anthropic-beta`` header values (comma-separated, possibly repeated) -> a list of betas."""
    out: list[str] = []
    for value in values or ():
        for item in value.split(","):
            item = item.strip()
            if item and item not in out:
                out.append(item)
    return out


class BedrockTranslator:
    """Translates one client request (OpenAI Chat or Anthropic Messages) for a Bedrock model.

    ``model_id`` is the Bedrock model id, inference profile or ARN; ``api`` picks Converse or
    InvokeModel (the latter only carries Claude's Anthropic body). ``betas`` are the client's
    ``anthropic-beta`` header values; ``anthropic_version`` is the InvokeModel body version.
    """

    __slots__ = (
        "client",
        "api",
        "model_id",
        "options",
        "betas",
        "anthropic_version",
        "context",
        "usage",
        "warnings",
        "error_type",
        "_anthropic_ctx",
    )

    def __init__(
        self,
        client: API,
        api: BedrockAPI,
        model_id: str,
        options: TranslationOptions = DEFAULT_OPTIONS,
        *,
        betas: list[str] | None = None,
        anthropic_version: str = BEDROCK_ANTHROPIC_VERSION,
    ) -> None:
        if client not in ("openai", "anthropic"):
            raise ValueError(f"unknown client format {client!r}")
        if api not in ("converse", "invoke"):
            raise ValueError(f"unknown Bedrock API {api!r}")
        self.client: API = client
        self.api: BedrockAPI = api
        self.model_id = model_id
        self.options = options
        self.betas = list(betas or ())
        self.anthropic_version = anthropic_version
        #: Maps the names sent to Converse back to the Anthropic-side names.
        self.context = TranslationState(tool_names=ToolNames(ANTHROPIC_NAME_MAX))
        #: For OpenAI clients: the OpenAI -> Anthropic step's context (client tool names, usage opt-in).
        self._anthropic_ctx = self.context
        #: Token counts of a translated non-stream response (same keys as ``StreamTranslator.usage``).
        self.usage: dict[str, int] | None = None
        #: Notes about lossy decisions (for the caller's log).
        self.warnings: list[str] = []
        #: Exception name of an HTTP error (``x-amzn-ErrorType``), set by the caller before :meth:`error`.
        self.error_type: str | None = None

    @property
    def stream_requested(self) -> bool:
        return self._anthropic_ctx.stream or self.context.stream

    def path(self) -> str:
        """The upstream path for this request (call after :meth:`request`)."""
        return model_path(self.model_id, self.api, self.stream_requested)

    # -- request -----------------------------------------------------------------------------
    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Client request JSON -> Bedrock request JSON (no ``model``/``stream``: see :meth:`path`)."""
        if not isinstance(body, dict):
            raise TranslationError("request body must be a JSON object")
        explicit_max = True
        passthrough = {k: body[k] for k in PASSTHROUGH_FIELDS if k in body}
        if self.client == "openai":
            anthropic, ctx = openai_to_anthropic_request(body, self.options)
            self._anthropic_ctx = ctx
            self.warnings.extend(ctx.warnings)
            explicit_max = any(body.get(k) is not None for k in ("max_completion_tokens", "max_tokens"))
            # a thinking budget needs room above it (Claude only: others drop thinking)
            explicit_max = explicit_max or ("thinking" in anthropic and is_anthropic_model(self.model_id))
        else:
            anthropic = body
        if self.api == "invoke":
            out = self._invoke_body(anthropic)
            self._anthropic_ctx.stream = anthropic.get("stream") is True
            if self.client == "anthropic":
                self.context.stream = self._anthropic_ctx.stream
            return out
        out, cctx = anthropic_to_converse_request(
            anthropic, self.model_id, betas=self.betas, passthrough=passthrough, explicit_max_tokens=explicit_max
        )
        self.context = cctx
        if self.client == "anthropic":
            self._anthropic_ctx = cctx
        self.warnings.extend(cctx.warnings)
        return out

    def _invoke_body(self, anthropic: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"anthropic_version": self.anthropic_version}
        for key, value in anthropic.items():
            if key in _INVOKE_KEYS:
                out[key] = value
            elif key not in ("model", "stream", "anthropic_version", "anthropic_beta"):
                self.warnings.append(f"{key!r} dropped: InvokeModel's Claude schema does not accept it")
        metadata = out.get("metadata")
        if isinstance(metadata, dict):
            user = metadata.get("user_id")
            if isinstance(user, str) and user:
                out["metadata"] = {"user_id": user}
            else:
                del out["metadata"]
        betas = split_betas(self.betas)
        body_betas = anthropic.get("anthropic_beta")
        if isinstance(body_betas, list):
            betas += [b for b in body_betas if isinstance(b, str) and b not in betas]
        if betas:
            out["anthropic_beta"] = betas
        return out

    # -- response ----------------------------------------------------------------------------
    def response(self, body: bytes) -> bytes:
        """Bedrock 2xx non-stream body -> client body; raises UpstreamProtocolError."""
        if self.api == "converse":
            message = converse_to_anthropic_message(body, self.context.tool_names, self.model_id, self.warnings)
            usage = message["usage"]
            self.usage = accounting_from_anthropic(usage)
            if self.client == "anthropic":
                return dumps_bytes(message)
            body = dumps_bytes(message)
        if self.client == "anthropic":  # InvokeModel answers in Anthropic's own shape: as it is
            usage = parse_json_object(body, "message").get("usage")
            self.usage = accounting_from_anthropic(usage) if isinstance(usage, dict) else None
            return body
        out, usage = anthropic_to_openai_response(body, self._anthropic_ctx, self.options)
        self.usage = accounting_from_anthropic(usage) if usage is not None else None
        return out

    def error(self, status: int, body: bytes) -> bytes:
        """Bedrock error body -> the client's error body; the caller keeps ``status``."""
        return bedrock_error(self.client, status, body, self.error_type)

    def stream(self) -> BedrockStream:
        """A translator for the ``application/vnd.amazon.eventstream`` 2xx body."""
        handler: ConverseEvents | InvokeChunks = (
            ConverseEvents(self.context.tool_names, self.model_id) if self.api == "converse" else InvokeChunks()
        )
        return BedrockStream(handler, self.client, self._anthropic_ctx, self.options)
