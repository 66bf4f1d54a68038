"""What a model accepts, and a translated request made to fit it: pure, I/O-free.

A translated request carries what the *client's* API allows (Claude Code always sends adaptive thinking and
``max_tokens: 64000``); the upstream model may take less. :class:`ModelCapabilities` says what a model takes;
:func:`default_capabilities` knows the well-known families; ``[[models]] capabilities`` overrides them
(docs/translation.md, "Model capabilities"). :func:`fit_request` then drops reasoning parameters a model
does not take, clamps the output cap to its maximum, and refuses (a :class:`TranslationError` naming the
field, answered with 400) content it cannot read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from .types import TranslationError

__all__ = ["ModelCapabilities", "default_capabilities", "fit_request"]


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    """What one upstream model accepts. The defaults assume everything and clamp nothing."""

    #: Takes reasoning parameters (OpenAI ``reasoning_effort``, Anthropic ``thinking``).
    reasoning: bool = True
    #: The largest output cap it accepts; larger ``max_tokens`` are lowered to it. None: no clamp.
    max_output_tokens: int | None = None
    #: Accepts image input, PDF (document / file) input, tool definitions.
    images: bool = True
    pdfs: bool = True
    tools: bool = True


# Well-known families, by upstream model id (first match wins; an optional "provider/" prefix is ignored).
_FAMILIES: tuple[tuple[re.Pattern[str], ModelCapabilities], ...] = tuple(
    (re.compile(pattern), caps)
    for pattern, caps in (
        (r"^(gpt-5|o[134])(\b|[-_.])", ModelCapabilities(max_output_tokens=128_000)),
        (r"^(gpt-4o|chatgpt-4o)", ModelCapabilities(reasoning=False, max_output_tokens=16_384)),
        (r"^gpt-4\.1", ModelCapabilities(reasoning=False, max_output_tokens=32_768)),
        (r"^gpt-4(-turbo|-\d)", ModelCapabilities(reasoning=False, max_output_tokens=4_096, pdfs=False)),
        (r"^gpt-3\.5", ModelCapabilities(reasoning=False, max_output_tokens=4_096, images=False, pdfs=False)),
        (r"^claude-(opus-4)", ModelCapabilities(max_output_tokens=32_000)),
        (r"^claude-(sonnet-4|haiku-4|3-7-sonnet)", ModelCapabilities(max_output_tokens=64_000)),
        (r"^claude-3-5-", ModelCapabilities(reasoning=False, max_output_tokens=8_192)),
        (r"^claude-3-", ModelCapabilities(reasoning=False, max_output_tokens=4_096, pdfs=False)),
    )
)


def default_capabilities(model: str) -> ModelCapabilities:
    """The capabilities of a well-known model family; unknown models get :class:`ModelCapabilities()`."""
    name = model.rsplit("/", 1)[-1].lower()
    for pattern, caps in _FAMILIES:
        if pattern.search(name):
            return caps
    return ModelCapabilities()


_OUTPUT_CAPS = ("max_completion_tokens", "max_tokens")


def fit_request(body: dict[str, Any], api: Literal["openai", "anthropic"], caps: ModelCapabilities) -> list[str]:
    """Make the translated upstream ``body`` (in ``api``'s format) fit ``caps``, in place.

    Returns what was changed (for logging); raises :class:`TranslationError` for content the model cannot take.
    """
    changed: list[str] = []
    if not caps.tools and body.get("tools"):
        raise TranslationError("this model does not accept tools", "tools")
    if not (caps.images and caps.pdfs):
        _check_content(body, api, caps)
    if not caps.reasoning:
        for key in ("reasoning_effort", "reasoning", "thinking"):
            if key in body:
                del body[key]
                changed.append(f"{key} dropped: the model takes no reasoning parameters")
        config = body.get("output_config")
        if isinstance(config, dict) and "effort" in config:
            del config["effort"]
            if not config:
                del body["output_config"]
            changed.append("output_config.effort dropped: the model takes no reasoning parameters")
    limit = caps.max_output_tokens
    if limit is not None:
        for key in _OUTPUT_CAPS:
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                body[key] = limit
                changed.append(f"{key} lowered from {value} to the model's maximum of {limit}")
        thinking = body.get("thinking")
        cap = body.get("max_tokens")
        budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
        if isinstance(budget, int) and isinstance(cap, int) and budget >= cap:
            if cap - 1 < 1024:  # Anthropic's minimum budget: no room left for thinking
                del body["thinking"]
                changed.append("thinking dropped: the clamped max_tokens leaves no room for its budget")
            else:
                body["thinking"] = {**body["thinking"], "budget_tokens": cap - 1}
                changed.append(f"thinking.budget_tokens lowered to {cap - 1}, below max_tokens")
    return changed


def _check_content(body: dict[str, Any], api: str, caps: ModelCapabilities) -> None:
    images = ("image_url", "input_image") if api == "openai" else ("image",)
    pdfs = ("file", "input_file") if api == "openai" else ("document",)
    messages = body.get("messages")
    if not isinstance(messages, list):
        return
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if not caps.images and kind in images:
                raise TranslationError("this model does not accept images", f"messages[{i}].content[{j}]")
            if not caps.pdfs and kind in pdfs:
                raise TranslationError("this model does not accept PDF or file input", f"messages[{i}].content[{j}]")
