"""Pure, I/O-free translation between OpenAI Chat / Anthropic Messages clients and Google's
Gemini ``generateContent`` API (Gemini API and Vertex AI); see ``docs/translation.md``."""

from .errors import gemini_to_anthropic_error, gemini_to_openai_error, google_error_fields, retry_after
from .ids import GeminiToolNames, mint_call_id, split_call_id
from .parts import GEMINI_API_URIS, NO_URIS, MediaUris, vertex_uris
from .request import GeminiRequest, anthropic_to_gemini_request, openai_to_gemini_request
from .schema import reduce_schema
from .stream import GeminiToAnthropicStream, GeminiToOpenAIStream
from .translator import GeminiTranslator

__all__ = [
    "GEMINI_API_URIS",
    "NO_URIS",
    "GeminiRequest",
    "GeminiToAnthropicStream",
    "GeminiToOpenAIStream",
    "GeminiToolNames",
    "GeminiTranslator",
    "MediaUris",
    "anthropic_to_gemini_request",
    "gemini_to_anthropic_error",
    "gemini_to_openai_error",
    "google_error_fields",
    "mint_call_id",
    "openai_to_gemini_request",
    "reduce_schema",
    "retry_after",
    "split_call_id",
    "vertex_uris",
]
