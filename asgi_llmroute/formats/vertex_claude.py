"""Claude on Vertex AI (``:rawPredict`` / ``:streamRawPredict``): the Anthropic Messages format with
three differences, handled here for both client formats.

- The body carries no ``model`` (it is in the URL) and names the API version in the body:
  ``"anthropic_version": "vertex-2023-10-16"``; ``stream`` stays in the body.
- Platform errors (authentication, quota) come in Google's shape, sometimes wrapped in a
  one-element array (``[{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", ...}}]``);
  model errors in Anthropic's.
- Responses and streams are Anthropic's, unchanged.

Anthropic clients get a near-passthrough: the request body is adjusted, responses and streams
are relayed byte for byte (a stream is only watched for usage and for its ``message_stop``: one
cut short gets an ``error`` event); OpenAI clients go through the Anthropic translation.
"""

from __future__ import annotations

from typing import Any

from ._json import loads
from .gemini.errors import gemini_to_anthropic_error, gemini_to_openai_error, retry_after
from .stream_base import StreamTranslator
from .translator import Translator, new_translator
from .types import API, DEFAULT_OPTIONS, TranslationOptions
from .usage_scan import StreamUsageScanner, usage_from_json

__all__ = ["VERTEX_ANTHROPIC_VERSION", "VertexClaudeTranslator"]

#: The ``anthropic_version`` Anthropic and Google document for Claude on Vertex AI.
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
_CUT = (
    b'event: error\ndata: {"type":"error","error":{"type":"api_error",'
    b'"message":"upstream stream ended before message_stop"}}\n\n'
)


def _google_shaped(body: bytes) -> bool:
    try:
        parsed = loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return False
    if isinstance(parsed, list):
        return bool(parsed) and isinstance(parsed[0], dict) and isinstance(parsed[0].get("error"), dict)
    if not isinstance(parsed, dict) or parsed.get("type") == "error":
        return False
    error = parsed.get("error")
    return isinstance(error, dict) and isinstance(error.get("status"), str)


def _anthropic_shaped(body: bytes) -> bool:
    try:
        parsed = loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return False
    return isinstance(parsed, dict) and parsed.get("type") == "error" and isinstance(parsed.get("error"), dict)


class _Relay(StreamTranslator):
    """The Anthropic stream as it is, watched for usage and completion."""

    __slots__ = ("_scanner", "_stopped", "_tail")

    def __init__(self, options: TranslationOptions) -> None:
        super().__init__(options)
        self._scanner = StreamUsageScanner("anthropic")
        self._stopped = False
        self._tail = b""

    def feed(self, chunk: bytes) -> bytes:
        if self._done or not chunk:
            return b""
        self._scanner.feed(chunk)
        self.usage = self._scanner.usage
        window = self._tail + chunk
        if b"message_stop" in window or b"event: error" in window:
            self._stopped = True
        self._tail = chunk[-32:]
        return chunk

    def close(self) -> bytes:
        if self._done:
            return b""
        self._done = True
        self._scanner.close()
        self.usage = self._scanner.usage
        return b"" if self._stopped else _CUT


class VertexClaudeTranslator(Translator):
    """An OpenAI or Anthropic client on Claude via Vertex AI (see the module docstring)."""

    __slots__ = ("anthropic_version", "_inner")

    def __init__(
        self, client: API, options: TranslationOptions = DEFAULT_OPTIONS, *, anthropic_version: str | None = None
    ) -> None:
        super().__init__(client, "vertex-anthropic", options)
        self.anthropic_version = anthropic_version or VERTEX_ANTHROPIC_VERSION
        self._inner = new_translator("openai", "anthropic", options) if client == "openai" else None

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        out = self._inner.request(body) if self._inner is not None else dict(body)
        out.pop("model", None)
        out["anthropic_version"] = self.anthropic_version
        return out

    def count_tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        """An Anthropic ``count_tokens`` body for Vertex's ``count-tokens:rawPredict``: ``model`` stays
        in the body (the URL names no model), ``anthropic_version`` is added. Anthropic clients only."""
        if self._inner is not None:
            raise ValueError("count_tokens is an Anthropic client's request")
        return {**body, "anthropic_version": self.anthropic_version}

    def response(self, body: bytes) -> bytes:
        if self._inner is not None:
            out = self._inner.response(body)
            self.usage = self._inner.usage
            return out
        self.usage = usage_from_json("anthropic", body)
        return body

    def error(self, status: int, body: bytes) -> bytes:
        if _google_shaped(body):
            self.retry_after = retry_after(body) if status == 429 or status >= 500 else None
            if self.client == "openai":
                return gemini_to_openai_error(status, body)
            return gemini_to_anthropic_error(status, body)
        if self._inner is not None:
            return self._inner.error(status, body)
        if _anthropic_shaped(body):
            return body  # Anthropic's own error: already in the client's format
        return gemini_to_anthropic_error(status, body)  # plain text, HTML, nothing: a clean Anthropic error

    def stream(self) -> StreamTranslator:
        return self._inner.stream() if self._inner is not None else _Relay(self.options)
