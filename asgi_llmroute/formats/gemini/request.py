"""OpenAI Chat Completions and Anthropic Messages requests -> Gemini ``generateContent`` requests.

The body never carries the model or the stream flag: both go in the URL (``models/{model}:
generateContent`` or ``:streamGenerateContent?alt=sse``); :class:`GeminiRequest` returns them
beside the body. The pieces: ``contents.py`` (messages, with ``parts.py`` for their content),
``tools.py`` (declarations and tool choice), ``generation.py`` (``generationConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..body import request_messages, single_choice
from ..types import TranslationError, TranslationOptions
from .contents import MISSING_RESULT, PLACEHOLDER_SIGNATURE, Contents, anthropic_messages, openai_messages
from .generation import MAX_STOP_SEQUENCES, anthropic_generation_config, openai_generation_config, thinking_levels
from .ids import GeminiToolNames
from .parts import NO_URIS, MediaUris, anthropic_parts
from .tools import anthropic_calling_config, anthropic_declarations, openai_calling_config, openai_declarations

__all__ = [
    "MAX_STOP_SEQUENCES",
    "MISSING_RESULT",
    "PLACEHOLDER_SIGNATURE",
    "GeminiRequest",
    "anthropic_to_gemini_request",
    "openai_to_gemini_request",
    "thinking_levels",
]

#: OpenAI fields with no Gemini equivalent that only tune behaviour: dropped with a warning.
_DROPPED = (
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "parallel_tool_calls",
    "prediction",
    "audio",
    "modalities",
    "web_search_options",
    "service_tier",
    "user",
    "metadata",
)


@dataclass(slots=True)
class GeminiRequest:
    """One translated request: the Gemini body and what the URL needs."""

    body: dict[str, Any]
    model: str | None
    stream: bool
    include_usage: bool = False
    thinking_requested: bool = False
    tool_names: GeminiToolNames = field(default_factory=GeminiToolNames)
    warnings: list[str] = field(default_factory=list)


class _Start:
    """What both translations begin with: the model, its thinking style, names, warnings, contents."""

    def __init__(self, body: dict[str, Any], placeholder_signatures: bool | None, media: MediaUris) -> None:
        model = body.get("model")
        self.model = model if isinstance(model, str) else None
        self.levels = thinking_levels(self.model or "")
        self.names = GeminiToolNames()
        self.warnings: list[str] = []
        self.contents = Contents(self.levels if placeholder_signatures is None else placeholder_signatures, media)

    def body(
        self,
        empty: str,
        system: list[dict[str, Any]],
        config: dict[str, Any],
        declarations: list[dict[str, Any]],
        calling: dict[str, Any] | None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"contents": self.contents.finish()}
        if not out["contents"]:
            raise TranslationError(empty, "messages")
        if system:
            out["systemInstruction"] = {"role": "user", "parts": system}
        if config:
            out["generationConfig"] = config
        if declarations:
            out["tools"] = [{"functionDeclarations": declarations}]
            if calling is not None:
                out["toolConfig"] = {"functionCallingConfig": calling}
        return out


def openai_to_gemini_request(
    body: dict[str, Any],
    options: TranslationOptions,
    *,
    placeholder_signatures: bool | None = None,
    media: MediaUris = NO_URIS,
) -> GeminiRequest:
    """Translate an OpenAI Chat Completions request; raises :class:`TranslationError`. ``media``: the
    URIs the upstream fetches itself (default: none, media must be inline)."""
    messages = request_messages(body)
    single_choice(body, "Gemini through the gateway")
    start = _Start(body, placeholder_signatures, media)
    names, warnings = start.names, start.warnings
    declarations = openai_declarations(body.get("tools"), names, warnings)
    system = openai_messages(messages, start.contents, names)
    config = openai_generation_config(body, start.levels, options.reasoning_content, warnings)
    calling = openai_calling_config(body.get("tool_choice"), names) if declarations else None
    out = start.body(
        "messages must contain at least one user or assistant message", system, config, declarations, calling
    )
    for key in _DROPPED:
        if body.get(key) not in (None, False):
            warnings.append(f"{key}: no Gemini equivalent, dropped")
    stream_options = body.get("stream_options")
    thinking = config.get("thinkingConfig")
    return GeminiRequest(
        body=out,
        model=start.model,
        stream=body.get("stream") is True,
        include_usage=isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
        thinking_requested=thinking is not None and thinking.get("includeThoughts") is True,
        tool_names=names,
        warnings=warnings,
    )


def anthropic_to_gemini_request(
    body: dict[str, Any],
    options: TranslationOptions,
    *,
    placeholder_signatures: bool | None = None,
    media: MediaUris = NO_URIS,
) -> GeminiRequest:
    """Translate an Anthropic Messages request; raises :class:`TranslationError`."""
    messages = request_messages(body)
    start = _Start(body, placeholder_signatures, media)
    names, warnings = start.names, start.warnings
    declarations, hosted = anthropic_declarations(body.get("tools"), names, warnings)
    anthropic_messages(messages, start.contents, names)
    system: list[dict[str, Any]] = []
    if body.get("system") is not None:
        system = anthropic_parts(body["system"], "system")
        if any("text" not in p for p in system):
            raise TranslationError("system blocks must be text", "system")
    config = anthropic_generation_config(body, start.levels, warnings)
    calling = anthropic_calling_config(body.get("tool_choice"), names, hosted)
    out = start.body("messages must contain at least one non-empty message", system, config, declarations, calling)
    return GeminiRequest(
        body=out,
        model=start.model,
        stream=body.get("stream") is True,
        include_usage=True,
        thinking_requested="thinkingConfig" in config,
        tool_names=names,
        warnings=warnings,
    )
