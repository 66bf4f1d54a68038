"""What a request cost, in USD, from its token usage: per-model prices in config, else ``genai-prices``.

``genai-prices`` (pydantic's maintained price data, the ``keys`` extra) knows the public prices of
most providers' models, including tiered and cache prices; it takes a few hundred microseconds a call
and its import most of a second, so prices are computed off the request path, when spend is flushed.
Prices set in config (``[prices."model"]``, USD per million tokens) win over it: negotiated rates,
self-hosted models. A model nobody knows a price for costs 0 and is logged once.

Server-side web searches (``web_search_requests`` in the usage: Anthropic's ``web_search`` tool, which
the gateway also gives to OpenAI clients' hosted search) are billed per search on top of the tokens:
``web_search`` in config (USD per 1,000 searches), else Anthropic's public price for providers that
speak its API; the catalog has no search prices.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ANTHROPIC_WEB_SEARCH_PRICE", "ModelPrice", "PriceTable"]

logger = logging.getLogger("asgi_llmroute.keys")

#: USD per 1,000 server-side web searches on Anthropic's API (its published price, on top of the tokens).
ANTHROPIC_WEB_SEARCH_PRICE = 10.0


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens. ``cache_read``/``cache_write`` default to the input price.

    ``web_search``: USD per 1,000 server-side web searches (None: the provider's public price, where
    the gateway knows one)."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None
    web_search: float | None = None

    def cost(self, usage: Mapping[str, int]) -> float:
        cache_read = usage.get("cache_read_tokens", 0) or 0
        cache_write = usage.get("cache_write_tokens", 0) or 0
        plain_input = max((usage.get("input_tokens", 0) or 0) - cache_read - cache_write, 0)
        total = plain_input * self.input + (usage.get("output_tokens", 0) or 0) * self.output
        total += cache_read * (self.input if self.cache_read is None else self.cache_read)
        total += cache_write * (self.input if self.cache_write is None else self.cache_write)
        searches = usage.get("web_search_requests", 0) or 0
        if searches and self.web_search is not None:
            total += searches * self.web_search * 1000  # per 1,000 searches, in millionths
        return total / 1_000_000


class PriceTable:
    """Prices by model name: ``overrides`` first (client-facing or upstream name), then genai-prices."""

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None, *, use_catalog: bool = True) -> None:
        self.overrides = dict(overrides or {})
        self.use_catalog = use_catalog
        self._unknown: set[str] = set()
        self._unpriced_searches: set[str] = set()

    def cost(
        self, usage: Mapping[str, int], model: str, upstream_model: str | None = None, provider: str | None = None
    ) -> float:
        """The cost of ``usage``; blocking (call it off the event loop). ``provider`` is the provider's API
        (``"anthropic"``, ``"openai"``, ...)."""
        for name in (model, upstream_model):
            if name is not None and name in self.overrides:
                price = self.overrides[name]
                searched = price.web_search is None  # else in the price's own cost
                return price.cost(usage) + (self._searches(usage, model, provider) if searched else 0.0)
        return self._tokens(usage, model, upstream_model, provider) + self._searches(usage, model, provider)

    def _tokens(self, usage: Mapping[str, int], model: str, upstream_model: str | None, provider: str | None) -> float:
        if not self.use_catalog:
            return self._nobody_knows(model)
        ref = upstream_model or model
        try:
            return self._catalog(usage, ref, provider)
        except ImportError:
            self.use_catalog = False
            logger.warning("genai-prices is not installed (pip install 'asgi-llmroute[keys]'): spend is not priced")
            return 0.0
        except LookupError:
            return self._nobody_knows(ref)

    def _searches(self, usage: Mapping[str, int], model: str, provider: str | None) -> float:
        searches = usage.get("web_search_requests", 0) or 0
        if not searches:
            return 0.0
        if provider == "anthropic":
            return searches * ANTHROPIC_WEB_SEARCH_PRICE / 1000
        if model not in self._unpriced_searches:
            self._unpriced_searches.add(model)
            logger.warning(
                "no web search price known for model %r: its searches count as 0 (set [prices.%r] web_search)",
                model,
                model,
            )
        return 0.0

    def _nobody_knows(self, model: str) -> float:
        if model not in self._unknown:
            self._unknown.add(model)
            logger.warning(
                "no price known for model %r: its spend counts as 0 (set [prices.%r] in config)", model, model
            )
        return 0.0

    @staticmethod
    def _catalog(usage: Mapping[str, int], model: str, provider: str | None) -> float:
        from genai_prices import Usage, calc_price

        counts: dict[str, Any] = {
            "input_tokens": usage.get("input_tokens", 0) or 0,
            "output_tokens": usage.get("output_tokens", 0) or 0,
            "cache_read_tokens": usage.get("cache_read_tokens", 0) or 0,
            "cache_write_tokens": usage.get("cache_write_tokens", 0) or 0,
        }
        provider_id = provider if provider in _CATALOG_PROVIDERS else None
        try:
            result = calc_price(Usage(**counts), model_ref=model, provider_id=provider_id)
        except LookupError:
            if provider_id is None:
                raise
            result = calc_price(Usage(**counts), model_ref=model)
        return float(result.total_price)


# Provider kinds whose name genai-prices uses as its provider id; others are matched by model alone.
_CATALOG_PROVIDERS = frozenset(
    {"openai", "anthropic", "google", "groq", "mistral", "deepseek", "x-ai", "together", "fireworks", "azure", "aws"}
)
