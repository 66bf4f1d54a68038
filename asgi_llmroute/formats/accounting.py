"""Usage conversion between the two protocols."""

from __future__ import annotations

from typing import Any

from .web_search import web_search_requests


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic usage (merged, cumulative) -> OpenAI ``usage`` object."""
    cache_read = _int(usage.get("cache_read_input_tokens"))
    cache_write = _int(usage.get("cache_creation_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + cache_read + cache_write
    completion = _int(usage.get("output_tokens"))
    details: dict[str, int] = {"cached_tokens": cache_read}
    if cache_write:
        details["cache_write_tokens"] = cache_write
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
    }
    output_details = usage.get("output_tokens_details")
    if isinstance(output_details, dict) and "thinking_tokens" in output_details:
        out["completion_tokens_details"] = {"reasoning_tokens": _int(output_details.get("thinking_tokens"))}
    return out


def anthropic_usage(usage: dict[str, Any]) -> dict[str, int]:
    """OpenAI ``usage`` -> Anthropic usage with its four counters."""
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict):
        cache_read = _int(details.get("cached_tokens"))
        cache_write = _int(details.get("cache_write_tokens"))
    else:
        cache_read = cache_write = 0
    return {
        "input_tokens": max(_int(usage.get("prompt_tokens")) - cache_read - cache_write, 0),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": _int(usage.get("completion_tokens")),
    }


def accounting_from_anthropic(usage: dict[str, Any]) -> dict[str, int]:
    """Normalised counts for accounting from Anthropic usage (input includes cache reads/writes; the
    server-side web searches as ``web_search_requests`` when there were any)."""
    cache_read = _int(usage.get("cache_read_input_tokens"))
    cache_write = _int(usage.get("cache_creation_input_tokens"))
    out = {
        "input_tokens": _int(usage.get("input_tokens")) + cache_read + cache_write,
        "output_tokens": _int(usage.get("output_tokens")),
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
    }
    searches = web_search_requests(usage)
    if searches:
        out["web_search_requests"] = searches
    return out


def accounting_from_openai(usage: dict[str, Any]) -> dict[str, int]:
    """Normalised counts for accounting from OpenAI usage (same keys as the Anthropic variant)."""
    converted = anthropic_usage(usage)
    return accounting_from_anthropic(converted)
