"""Pure, I/O-free translation between OpenAI Chat Completions and Anthropic Messages, and from
both to Google's Gemini ``generateContent`` (:class:`GeminiTranslator`) and AWS Bedrock's Converse
and Claude InvokeModel APIs (:class:`BedrockTranslator`).

Requests, non-stream responses, error bodies and SSE streams, both directions; see
``docs/translation.md`` for every mapping rule, dropped field and option.
"""

from .bedrock import BedrockAPI, BedrockTranslator, model_path
from .errors import anthropic_error_type, openai_error_type
from .eventstream import EventStreamDecoder, EventStreamError, EventStreamMessage, encode_message
from .gemini import GeminiTranslator
from .responses_translator import ResponsesTranslator
from .sse import SSEBufferOverflow, SSEEvent, SSEParser, encode_sse, keepalive
from .stream_base import StreamTranslator
from .translator import Translator, new_translator
from .types import API, DEFAULT_OPTIONS, TranslationError, TranslationOptions, UpstreamProtocolError

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
