"""check_model_name alone: what may reach upstream URLs, headers and log lines as a model name."""

from __future__ import annotations

import pytest

from asgi_llmroute.context import MAX_MODEL_NAME, check_model_name
from asgi_llmroute.errors import GatewayError


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("gpt\n4", "control character"),
        ("gpt\x7f", "control character"),
        ("gpt\x85", "control character"),
        ("m" * (MAX_MODEL_NAME + 1), "longer than"),
        ("gpt-\ud800", "lone UTF-16 surrogate"),
    ],
)
def test_refused_names_are_400s_naming_the_field(model: str, message: str) -> None:
    with pytest.raises(GatewayError) as info:
        check_model_name(model)
    assert info.value.status == 400 and info.value.param == "model" and info.value.code == "invalid_model"
    assert message in str(info.value.message)


@pytest.mark.parametrize("model", ["gpt-4o", "m" * MAX_MODEL_NAME, "モデル/ü-1", "a:b@c"])
def test_ordinary_names_pass(model: str) -> None:
    check_model_name(model)
