"""Per-request translator objects: the entry point used by the gateway."""

from __future__ import annotations

from typing import Any

from .accounting import accounting_from_anthropic, accounting_from_openai
from .errors import anthropic_to_openai_error, openai_to_anthropic_error
from .request_to_anthropic import openai_to_anthropic_request
from .request_to_openai import anthropic_to_openai_request
from .response_to_anthropic import openai_to_anthropic_response
from .response_to_openai import anthropic_to_openai_response
from .state import TranslationState
from .stream_base import StreamTranslator
from .stream_to_anthropic import OpenAIToAnthropicStream
from .stream_to_openai import AnthropicToOpenAIStream
from .tools import ANTHROPIC_NAME_MAX, OPENAI_NAME_MAX, ToolNames
from .types import API, DEFAULT_OPTIONS, TranslationOptions


class Translator:
    """Translates one request and its response between a client format and an upstream format.

    Create one per request with :func:`new_translator`; call :meth:`request` first (it records the
    per-request state the response side needs: tool-name reverse map, ``include_usage``, whether
    thinking was requested), then exactly one of :meth:`response`, :meth:`error` or :meth:`stream`.
    """

    __slots__ = ("client", "upstream", "options", "context", "usage", "retry_after")

    def __init__(self, client: API, upstream: str, options: TranslationOptions) -> None:
        self.client: API = client
        #: The upstream's wire format: ``"openai"``, ``"anthropic"`` or ``"gemini"``.
        self.upstream = upstream
        self.options = options
        # Used as is if request() is never called (e.g. the gateway forwards a raw body).
        max_len = ANTHROPIC_NAME_MAX if upstream == "anthropic" else OPENAI_NAME_MAX
        self.context = TranslationState(tool_names=ToolNames(max_len))
        #: Token counts of a translated non-stream response (same keys as ``StreamTranslator.usage``).
        self.usage: dict[str, int] | None = None
        #: Seconds an upstream error body asked to wait (Google's ``RetryInfo``), after :meth:`error`;
        #: the gateway sends it as ``Retry-After`` when the upstream sent no such header.
        self.retry_after: int | None = None

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Client request JSON -> upstream request JSON; raises :class:`TranslationError`."""
        raise NotImplementedError

    def response(self, body: bytes) -> bytes:
        """Upstream 2xx non-stream body -> client body (compact UTF-8 JSON); raises UpstreamProtocolError."""
        raise NotImplementedError

    def error(self, status: int, body: bytes) -> bytes:
        """Upstream error body (any content) -> client-format error body; the caller keeps ``status``."""
        raise NotImplementedError

    def stream(self) -> StreamTranslator:
        """A translator for the upstream's ``text/event-stream`` 2xx body."""
        raise NotImplementedError


class _OpenAIClient(Translator):
    """OpenAI-format client, Anthropic upstream."""

    __slots__ = ()

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        out, self.context = openai_to_anthropic_request(body, self.options)
        return out

    def response(self, body: bytes) -> bytes:
        out, usage = anthropic_to_openai_response(body, self.context, self.options)
        self.usage = accounting_from_anthropic(usage) if usage is not None else None
        return out

    def error(self, status: int, body: bytes) -> bytes:
        return anthropic_to_openai_error(status, body)

    def stream(self) -> StreamTranslator:
        return AnthropicToOpenAIStream(self.context, self.options)


class _AnthropicClient(Translator):
    """Anthropic-format client, OpenAI(-compatible) upstream."""

    __slots__ = ()

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        out, self.context = anthropic_to_openai_request(body, self.options)
        return out

    def response(self, body: bytes) -> bytes:
        out, usage = openai_to_anthropic_response(body, self.context, self.options)
        self.usage = accounting_from_openai(usage) if usage is not None else None
        return out

    def error(self, status: int, body: bytes) -> bytes:
        return openai_to_anthropic_error(status, body)

    def stream(self) -> StreamTranslator:
        return OpenAIToAnthropicStream(self.context, self.options)


def new_translator(client: API, upstream: str, options: TranslationOptions = DEFAULT_OPTIONS) -> Translator:
    """Translator for one request from a ``client``-format caller to an ``upstream``-format provider
    (``"openai"``, ``"anthropic"``, ``"gemini"``, or ``"vertex-anthropic"``: Claude on Vertex AI).

    Raises ValueError when both sides speak the same format (nothing to translate) or a side is unknown.
    """
    if client == upstream:
        raise ValueError("client and upstream use the same format: no translation needed")
    if client == "openai" and upstream == "anthropic":
        return _OpenAIClient(client, upstream, options)
    if client == "anthropic" and upstream == "openai":
        return _AnthropicClient(client, upstream, options)
    if upstream == "gemini" and client in ("openai", "anthropic"):
        from .gemini.translator import GeminiTranslator

        return GeminiTranslator(client, options)
    if upstream == "vertex-anthropic" and client in ("openai", "anthropic"):
        from .vertex_claude import VertexClaudeTranslator

        return VertexClaudeTranslator(client, options)
    raise ValueError(f"unknown API pair {client!r} -> {upstream!r}")
