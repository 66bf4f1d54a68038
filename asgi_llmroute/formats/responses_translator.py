"""Per-request translator between an OpenAI Responses client and a Chat Completions upstream."""

from __future__ import annotations

from typing import Any

from .accounting import accounting_from_openai
from .responses_request import ResponsesRequest, WebSearch, responses_to_chat_request
from .responses_response import chat_to_responses_error, chat_to_responses_response
from .responses_stream import ChatToResponsesStream
from .stream_base import StreamTranslator
from .types import DEFAULT_OPTIONS, TranslationOptions


class ResponsesTranslator:
    """Translates one ``POST /v1/responses`` request to Chat Completions and its answer back.

    Same shape as :class:`~asgi_llmroute.formats.Translator`: call :meth:`request` first (it records
    what the Response objects echo), then exactly one of :meth:`response`, :meth:`error` or
    :meth:`stream`. The upstream side is always Chat Completions; an Anthropic provider is reached
    by composing this with the Chat <-> Anthropic translator (the gateway's middleware stack does).
    """

    __slots__ = ("options", "info", "usage")

    def __init__(self, options: TranslationOptions = DEFAULT_OPTIONS) -> None:
        self.options = options
        self.info = ResponsesRequest(echo={})
        #: Token counts of a translated non-stream response (same keys as ``StreamTranslator.usage``).
        self.usage: dict[str, int] | None = None

    def request(
        self, body: dict[str, Any], *, thinking: bool = True, web_search: WebSearch = None, name_max: int = 64
    ) -> dict[str, Any]:
        """Responses request JSON -> chat request JSON; raises :class:`TranslationError`.

        ``thinking``: send the signed thinking carried by reasoning items as chat ``thinking_blocks``
        (the Anthropic translation takes them); turn off for OpenAI chat upstreams. ``web_search``: how
        the upstream takes a hosted web search tool (``"extended"`` for the Anthropic translation,
        ``"standard"`` for an OpenAI search model, None to drop it with a warning). ``name_max``: the
        upstream's longest function name (64: OpenAI, Gemini; 128: Anthropic); longer ones are shortened.
        """
        out, self.info = responses_to_chat_request(
            body, self.options, thinking=thinking, web_search=web_search, name_max=name_max
        )
        return out

    def response(self, body: bytes) -> bytes:
        """Chat 2xx non-stream body -> Response object (compact JSON); raises UpstreamProtocolError."""
        out, usage = chat_to_responses_response(body, self.info.echo, self.options, self.info.tool_names)
        self.usage = accounting_from_openai(usage) if usage is not None else None
        return out

    def error(self, status: int, body: bytes) -> bytes:
        """Chat error body (any content) -> OpenAI error body; the caller keeps ``status``."""
        return chat_to_responses_error(status, body)

    def stream(self) -> StreamTranslator:
        """A translator for the chat ``text/event-stream`` body into Responses events."""
        return ChatToResponsesStream(self.info.echo, self.options, self.info.tool_names)
