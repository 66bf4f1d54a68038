"""Per-request state shared by a request translation and the translation of its response."""

from __future__ import annotations

from dataclasses import dataclass, field

from .tools import ToolNames


@dataclass(slots=True)
class TranslationState:
    """What the response side needs to know about the translated request."""

    #: Client tool names <-> names sent upstream (restored in responses).
    tool_names: ToolNames
    #: The client asked for the final usage chunk (OpenAI ``stream_options.include_usage``).
    include_usage: bool = False
    #: The (Anthropic) client enabled thinking: upstream reasoning becomes thinking blocks.
    thinking_requested: bool = False
    #: The client asked for a stream.
    stream: bool = False
    #: Notes about lossy decisions taken on this request (for logging by the caller).
    warnings: list[str] = field(default_factory=list)
