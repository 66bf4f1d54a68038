"""Pure, I/O-free translation between OpenAI Chat Completions and Anthropic Messages, and from
both to Google's Gemini ``generateContent`` (:class:`GeminiTranslator`) and AWS Bedrock's Converse
and Claude InvokeModel APIs (:class:`BedrockTranslator`).

Requests, non-stream responses, error bodies and SSE streams, both directions; see
``docs/translation.md`` for every mapping rule, dropped field and option.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bedrock import BedrockAPI, BedrockTranslator, model_path
    from .errors import anthropic_error_type, openai_error_type
    from .eventstream import EventStreamDecoder, EventStreamError, EventStreamMessage, encode_message
    from .gemini import GeminiTranslator
    from .responses_translator import ResponsesTranslator
    from .sse import SSEBufferOverflow, SSEEvent, SSEParser, encode_sse, keepalive
    from .stream_base import StreamTranslator
    from .translator import Translator, new_translator
    from .types import API, DEFAULT_OPTIONS, TranslationError, TranslationOptions, UpstreamProtocolError

# Public name -> the submodule that defines it. Names are imported on first use (PEP 562): a caller of
# one translator (or of the error helpers) does not load every other format's module.
_EXPORTS: dict[str, str] = {
    "BedrockAPI": "bedrock",
    "BedrockTranslator": "bedrock",
    "model_path": "bedrock",
    "anthropic_error_type": "errors",
    "openai_error_type": "errors",
    "EventStreamDecoder": "eventstream",
    "EventStreamError": "eventstream",
    "EventStreamMessage": "eventstream",
    "encode_message": "eventstream",
    "GeminiTranslator": "gemini",
    "ResponsesTranslator": "responses_translator",
    "SSEBufferOverflow": "sse",
    "SSEEvent": "sse",
    "SSEParser": "sse",
    "encode_sse": "sse",
    "keepalive": "sse",
    "StreamTranslator": "stream_base",
    "Translator": "translator",
    "new_translator": "translator",
    "API": "types",
    "DEFAULT_OPTIONS": "types",
    "TranslationError": "types",
    "TranslationOptions": "types",
    "UpstreamProtocolError": "types",
}

__all__ = [
    "API",
    "DEFAULT_OPTIONS",
    "BedrockAPI",
    "BedrockTranslator",
    "EventStreamDecoder",
    "EventStreamError",
    "EventStreamMessage",
    "GeminiTranslator",
    "ResponsesTranslator",
    "SSEBufferOverflow",
    "SSEEvent",
    "SSEParser",
    "StreamTranslator",
    "TranslationError",
    "TranslationOptions",
    "Translator",
    "UpstreamProtocolError",
    "anthropic_error_type",
    "encode_message",
    "encode_sse",
    "keepalive",
    "model_path",
    "new_translator",
    "openai_error_type",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
