"""Shared public types of the translation core: wire-format names, options, exceptions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

API = Literal["openai", "anthropic"]
"""Wire format of one side of a translation: OpenAI Chat Completions or Anthropic Messages."""

#: The ``anthropic-version`` sent to Anthropic upstreams unless the client or the provider names another.
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"

#: First Anthropic API version that removed temperature/top_p/top_k. Versions are
#: ISO dates, so a plain string comparison orders them.
SAMPLING_REMOVED_VERSION = "2026-10-21"


def _unix_time() -> int:
    return int(time.time())


@dataclass(frozen=True, slots=True)
class TranslationOptions:
    """Per-upstream knobs of the translation (see docs/translation.md, "Options").

    The defaults are the decisions of docs/translation.md; every field is safe to leave alone.
    """

    #: Anthropic requires ``max_tokens``; used when the OpenAI client sent no cap.
    default_max_tokens: int = 4096
    #: ``anthropic-version`` the Anthropic upstream is pinned to (D-3). From 2026-10-21 on the
    #: sampling parameters are removed from translated requests.
    anthropic_version: str = DEFAULT_ANTHROPIC_VERSION
    #: Emit Anthropic thinking as the OpenAI ``reasoning_content`` extension (D-8).
    reasoning_content: bool = True
    #: Name of the output cap sent to an OpenAI(-compatible) upstream (D-13).
    max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens"
    #: ``created`` of emitted OpenAI completions/chunks.
    clock: Callable[[], int] = field(default=_unix_time)
    #: How ``reasoning_effort`` becomes Anthropic thinking: ``budget`` sends
    #: ``thinking: {type: enabled, budget_tokens}``, ``adaptive`` sends ``thinking: {type: adaptive}``
    #: plus ``output_config.effort`` (newer models).
    thinking_style: Literal["budget", "adaptive"] = "budget"
    #: Send ``reasoning_effort`` to an OpenAI upstream when the Anthropic client enabled thinking.
    #: Turn off for upstreams whose models reject the parameter.
    send_reasoning_effort: bool = True
    #: Also emit signed thinking blocks (LiteLLM ``thinking_blocks`` extension) in translated OpenAI
    #: streams, so that clients built for it can echo signatures back. Non-stream responses always
    #: carry them when ``reasoning_content`` is on.
    thinking_blocks: bool = False
    #: Also emit Anthropic's server-side web searches as the ``web_search_calls`` extension of chat
    #: messages and deltas (``[{"id", "status", "query"}]``); the Responses translation makes
    #: ``web_search_call`` items of it (ResponsesMiddleware turns it on for its requests).
    web_search_calls: bool = False
    #: D-15: collect interleaved OpenAI tool-call fragments and emit each tool_use block whole at
    #: the end, instead of failing the stream when a fragment targets an already-closed block.
    buffer_tool_calls: bool = False
    #: Largest upstream SSE event (or buffered tool-call arguments) accepted, in bytes; larger ones
    #: end the stream with an error event instead of growing memory without bound.
    max_event_bytes: int = 16 * 1024 * 1024


DEFAULT_OPTIONS = TranslationOptions()


class TranslationError(Exception):
    """The client's request cannot be expressed for the upstream; the gateway answers 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class UpstreamProtocolError(Exception):
    """The upstream's 2xx body is not a valid response of its protocol; the gateway answers 502.

    The message never contains the body itself (it may echo credentials or user data).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
