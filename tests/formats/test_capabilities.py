"""Model capabilities: the well-known families, and a translated request made to fit a model."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llmroute.formats import TranslationError
from asgi_llmroute.formats.capabilities import ModelCapabilities, default_capabilities, fit_request


@pytest.mark.parametrize(
    ("model", "reasoning", "limit"),
    [
        ("gpt-5-mini", True, 128_000),
        ("o3-2025-04-16", True, 128_000),
        ("gpt-4o-2024-08-06", False, 16_384),
        ("openai/gpt-4.1-mini", False, 32_768),
        ("claude-sonnet-4-5-20250929", True, 64_000),
        ("claude-opus-4-1", True, 32_000),
        ("claude-3-5-haiku-latest", False, 8_192),
        ("some-local-model", True, None),
    ],
)
def test_well_known_families(model: str, reasoning: bool, limit: int | None) -> None:
    caps = default_capabilities(model)
    assert (caps.reasoning, caps.max_output_tokens) == (reasoning, limit)


def test_claude_codes_request_fits_a_non_reasoning_openai_model() -> None:
    body: dict[str, Any] = {"model": "gpt-4o", "reasoning_effort": "high", "max_completion_tokens": 64000}
    changes = fit_request(body, "openai", default_capabilities("gpt-4o"))
    assert body == {"model": "gpt-4o", "max_completion_tokens": 16_384}
    assert len(changes) == 2


def test_anthropic_thinking_is_dropped_or_its_budget_kept_below_the_clamped_cap() -> None:
    body: dict[str, Any] = {"max_tokens": 50_000, "thinking": {"type": "enabled", "budget_tokens": 40_000}}
    fit_request(body, "anthropic", ModelCapabilities(max_output_tokens=8_192))
    assert body == {"max_tokens": 8_192, "thinking": {"type": "enabled", "budget_tokens": 8_191}}
    body = {"max_tokens": 9000, "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}
    fit_request(body, "anthropic", ModelCapabilities(reasoning=False))
    assert body == {"max_tokens": 9000}


@pytest.mark.parametrize(
    ("api", "part", "caps"),
    [
        (
            "openai",
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
            ModelCapabilities(images=False),
        ),
        ("anthropic", {"type": "document", "source": {}}, ModelCapabilities(pdfs=False)),
    ],
)
def test_content_a_model_cannot_read_is_refused_naming_the_field(
    api: str, part: dict[str, Any], caps: ModelCapabilities
) -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, part]}]}
    with pytest.raises(TranslationError) as info:
        fit_request(body, api, caps)  # type: ignore[arg-type]
    assert info.value.param == "messages[0].content[1]"


def test_tools_refused_for_a_model_without_them() -> None:
    with pytest.raises(TranslationError) as info:
        fit_request({"tools": [{"type": "function"}]}, "openai", ModelCapabilities(tools=False))
    assert info.value.param == "tools"
