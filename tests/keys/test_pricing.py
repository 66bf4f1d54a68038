"""Pricing a request's usage: config prices, the catalog, and server-side web searches."""

from __future__ import annotations

import logging

import pytest

from asgi_llmroute.keys.pricing import ANTHROPIC_WEB_SEARCH_PRICE, ModelPrice, PriceTable

TOKENS = {"input_tokens": 1000, "output_tokens": 500}
SEARCHED = {**TOKENS, "web_search_requests": 3}


def test_config_prices_tokens_and_cache() -> None:
    price = ModelPrice(input=2.0, output=10.0, cache_read=0.5)
    usage = {"input_tokens": 1000, "output_tokens": 500, "cache_read_tokens": 400}
    assert price.cost(usage) == pytest.approx((600 * 2.0 + 400 * 0.5 + 500 * 10.0) / 1e6)


def test_searches_on_an_anthropic_provider_cost_its_public_price_on_top_of_the_tokens() -> None:
    table = PriceTable({"m": ModelPrice(input=2.0, output=10.0)}, use_catalog=False)
    tokens = table.cost(TOKENS, "m", provider="anthropic")
    assert tokens == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1e6)
    searched = table.cost(SEARCHED, "m", provider="anthropic")
    assert searched - tokens == pytest.approx(3 * ANTHROPIC_WEB_SEARCH_PRICE / 1000)
    assert ANTHROPIC_WEB_SEARCH_PRICE == 10.0  # USD per 1,000 searches


def test_a_configured_search_price_wins_and_is_counted_once() -> None:
    table = PriceTable({"m": ModelPrice(input=2.0, output=10.0, web_search=25.0)}, use_catalog=False)
    tokens = table.cost(TOKENS, "m", provider="anthropic")
    assert table.cost(SEARCHED, "m", provider="anthropic") - tokens == pytest.approx(3 * 25.0 / 1000)
    free = PriceTable({"m": ModelPrice(input=2.0, output=10.0, web_search=0.0)}, use_catalog=False)
    assert free.cost(SEARCHED, "m", provider="anthropic") == pytest.approx(tokens)


def test_searches_with_no_known_price_count_as_zero_and_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    table = PriceTable({"m": ModelPrice(input=2.0, output=10.0)}, use_catalog=False)
    with caplog.at_level(logging.WARNING, logger="asgi_llmroute.keys"):
        for _ in range(3):
            assert table.cost(SEARCHED, "m", provider="openai") == pytest.approx(table.cost(TOKENS, "m"))
    assert len([r for r in caplog.records if "web search price" in r.getMessage()]) == 1


def test_searches_are_priced_when_the_catalog_prices_the_tokens() -> None:
    pytest.importorskip("genai_prices")
    table = PriceTable()
    model = "claude-sonnet-4-5"
    tokens = table.cost(TOKENS, model, provider="anthropic")
    assert tokens > 0
    assert table.cost(SEARCHED, model, provider="anthropic") - tokens == pytest.approx(0.03)


def test_the_config_takes_a_search_price_and_refuses_a_negative_one() -> None:
    from pydantic import ValidationError

    from asgi_llmroute.config import PriceConfig

    assert PriceConfig(input=1, output=2, web_search=10).web_search == 10
    with pytest.raises(ValidationError):
        PriceConfig(input=1, output=2, web_search=-1)
