"""``kind = "bedrock"`` provider settings: each mistake is a start-up ConfigError naming the option."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llmroute import ConfigError, parse_config
from asgi_llmroute.assemble import provider_records

TOKEN = "sk-router-bedrock-0123456789abcdef"


def records(**options: Any) -> Any:
    provider = {"name": "aws", "kind": "bedrock", **options}
    config = parse_config({"tokens": [{"name": "t", "key": TOKEN}], "providers": [provider]}, source="t.toml")
    return provider_records(config)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "region: required"),
        ({"region": "nowhere"}, "is not an AWS region name"),
        ({"region": "us-east-1", "auth": "magic"}, "auth: must be one of"),
        ({"region": "us-east-1", "auth": "api-key"}, "needs the Bedrock API key as api_key"),
        ({"region": "us-east-1", "aws_access_key_id": "AKIAEXAMPLE"}, "needs the secret access key"),
        ({"region": "us-east-1", "aws_role_name": "admin"}, "aws_role_name: must be an IAM role ARN"),
        ({"region": "us-east-1", "anthropic_api": "chat"}, "anthropic_api: must be 'converse' or 'invoke'"),
        ({"region": "us-east-1", "openai_api": "rest"}, "openai_api: must be 'converse' or 'invoke'"),
        ({"region": "us-east-1", "sts_endpoint_url": "sts.local"}, "sts_endpoint_url: must be an http"),
    ],
)
def test_mistakes_are_named(options: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_BEARER_TOKEN_BEDROCK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as info:
        records(**options)
    assert message in str(info.value) and str(info.value).startswith("t.toml: providers[0]")


def test_the_region_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    (record,) = records(auth="sigv4", aws_role_name="arn:aws:iam::123456789012:role/gateway")
    settings = record.auth.settings
    assert settings.region == "eu-west-3" and settings.role_arn == "arn:aws:iam::123456789012:role/gateway"
