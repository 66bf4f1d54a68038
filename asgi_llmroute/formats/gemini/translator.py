"""Per-request translator between an OpenAI or Anthropic client and a Gemini upstream."""

from __future__ import annotations

from typing import Any

from .._json import dumps_bytes, parse_json_object
from ..accounting import accounting_from_anthropic
from ..stream_base import StreamTranslator
from ..translator import Translator
from ..types import API, DEFAULT_OPTIONS, TranslationOptions, UpstreamProtocolError
from .errors import gemini_to_anthropic_error, gemini_to_openai_error, retry_after
from .ids import GeminiToolNames
from .parts import NO_URIS, MediaUris
from .request import GeminiRequest, anthropic_to_gemini_request, openai_to_gemini_request
from .response import gemini_to_anthropic_response, gemini_to_openai_response
from .stream import GeminiToAnthropicStream, GeminiToOpenAIStream


class GeminiTranslator(Translator):
    """Translates one request from an OpenAI Chat or Anthropic Messages client to Gemini, and its
    response back (a :class:`~asgi_llmroute.formats.Translator`; ``new_translator(client, "gemini")`` makes one).

    Call :meth:`request` first: it returns the Gemini body and records the model and whether a
    stream was asked for (:attr:`model`, :attr:`streaming`), which decide the upstream URL
    (``models/{model}:generateContent`` or ``:streamGenerateContent?alt=sse``). Then exactly one of
    :meth:`response`, :meth:`error` or :meth:`stream`. After :meth:`error`, :attr:`retry_after`
    holds the seconds a ``RESOURCE_EXHAUSTED`` answer asked to wait (for a ``Retry-After`` header).

    ``placeholder_signatures`` (default: on for Gemini 3 models, whose function calls must carry
    a thought signature) puts Google's documented placeholder signature on a model turn with
    function calls that carries none (history from another provider).

    ``media`` says which media URIs (``image_url`` URLs, Anthropic ``url`` sources) the upstream fetches
    itself, sent as ``fileData``: the Gemini API's and Vertex AI's differ (see ``parts.MediaUris``); by
    default none, and media must be inline.
    """

    __slots__ = ("placeholder_signatures", "media", "vertex", "_request", "_counting")

    #: The gateway path of a token count (the provider's endpoint makes it ``models/{model}:countTokens``).
    count_tokens_path = ":countTokens"

    def __init__(
        self,
        client: API,
        options: TranslationOptions = DEFAULT_OPTIONS,
        *,
        placeholder_signatures: bool | None = None,
        media: MediaUris = NO_URIS,
    ) -> None:
        if client not in ("openai", "anthropic"):
            raise ValueError(f"unknown client API {client!r}")
        super().__init__(client, "gemini", options)
        self.placeholder_signatures = placeholder_signatures
        self.media = media
        #: Vertex AI's ``countTokens`` body (the request's fields at the top) instead of the Gemini API's.
        self.vertex = False
        self._request = GeminiRequest(body={}, model=None, stream=False)
        self._counting = False

    @property
    def model(self) -> str | None:
        """The model the client's body named (the URL's ``{model}``)."""
        return self._request.model

    @property
    def streaming(self) -> bool:
        return self._request.stream

    @property
    def warnings(self) -> list[str]:
        """Lossy decisions taken on the request (removed schema constraints, dropped fields)."""
        return self._request.warnings

    @property
    def tool_names(self) -> GeminiToolNames:
        return self._request.tool_names

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Client request JSON -> Gemini request JSON; raises :class:`TranslationError`."""
        translate = openai_to_gemini_request if self.client == "openai" else anthropic_to_gemini_request
        self._request = translate(
            body, self.options, placeholder_signatures=self.placeholder_signatures, media=self.media
        )
        return self._request.body

    def count_tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        """An Anthropic ``count_tokens`` body (``model`` the upstream's id) -> a Gemini ``countTokens`` body.

        The Gemini API counts a whole ``generateContentRequest`` (system instruction and tools included;
        its plain ``contents`` form would leave them out); Vertex AI takes ``contents``,
        ``systemInstruction`` and ``tools`` at the top. The answer's ``totalTokens`` becomes
        ``input_tokens`` (:meth:`response`). Anthropic clients only; raises :class:`TranslationError`.
        """
        if self.client != "anthropic":
            raise ValueError("count_tokens is an Anthropic client's request")
        request = self.request({k: v for k, v in body.items() if k != "stream"})
        self._counting = True
        if self.vertex:
            return {k: request[k] for k in ("contents", "systemInstruction", "tools") if k in request}
        model = self.model or ""
        return {"generateContentRequest": {"model": "models/" + model.removeprefix("models/"), **request}}

    def response(self, body: bytes) -> bytes:
        """Gemini 2xx non-stream body -> client body; raises UpstreamProtocolError."""
        if self._counting:
            return _counted(body)
        if self.client == "openai":
            out, usage = gemini_to_openai_response(body, self._request.tool_names, self.options)
        else:
            out, usage = gemini_to_anthropic_response(body, self._request.tool_names, self._request.thinking_requested)
        self.usage = accounting_from_anthropic(usage) if usage is not None else None
        return out

    def error(self, status: int, body: bytes) -> bytes:
        """Google error body -> client-format error body; the caller keeps ``status``."""
        self.retry_after = retry_after(body) if status == 429 or status >= 500 else None
        if self.client == "openai":
            return gemini_to_openai_error(status, body)
        return gemini_to_anthropic_error(status, body)

    def stream(self) -> StreamTranslator:
        """A translator for the upstream's ``text/event-stream`` 2xx body."""
        names = self._request.tool_names
        if self.client == "openai":
            return GeminiToOpenAIStream(names, self.options, include_usage=self._request.include_usage)
        return GeminiToAnthropicStream(names, self.options, thinking=self._request.thinking_requested)


def _counted(body: bytes) -> bytes:
    """A ``countTokens`` answer as Anthropic's ``{"input_tokens": n}``."""
    total = parse_json_object(body, "token count").get("totalTokens", 0)  # omitted when 0 (proto3 JSON)
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise UpstreamProtocolError("upstream token count has no totalTokens number")
    return dumps_bytes({"input_tokens": total})
