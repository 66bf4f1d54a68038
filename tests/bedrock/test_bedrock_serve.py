"""`llmroute serve` with a `kind = "bedrock"` provider in front of the local Bedrock (SigV4 checked,
real event streams), driven by the official SDKs: the configuration a user writes, end to end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from tests.support.cli import llmroute_serve
from tests.support.fake_bedrock import ACCESS_KEY, REGION, SECRET_KEY, FakeBedrock
from tests.support.servers import serve

pytest.importorskip("botocore")

TOKEN = "sk-router-bedrock-0123456789abcdef"
CONFIG = """
[[tokens]]
name = "alice"
key = "{token}"

[[providers]]
name = "aws"
kind = "bedrock"
base_url = "{url}"
region = "{region}"
aws_access_key_id = "{key_id}"
api_key = "env:TEST_AWS_SECRET"
max_retries = 1

[[models]]
name = "claude"
provider = "aws"
model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

[[models]]
name = "nova"
provider = "aws"
model = "amazon.nova-pro-v1:0"
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeBedrock, str, list[str]]]:
    tmp = tmp_path_factory.mktemp("bedrock-serve")
    fake = FakeBedrock()
    with serve(fake) as upstream:
        config = tmp / "llmroute.toml"
        config.write_text(CONFIG.format(token=TOKEN, url=upstream, region=REGION, key_id=ACCESS_KEY))
        env = {**os.environ, "TEST_AWS_SECRET": SECRET_KEY, "AWS_EC2_METADATA_DISABLED": "true"}
        with llmroute_serve(["--config", str(config)], Path(tmp), env=env) as gateway:
            yield fake, gateway.url, gateway.lines


def test_openai_and_anthropic_sdks_through_llmroute_serve(served: tuple[FakeBedrock, str, list[str]]) -> None:
    fake, url, lines = served
    with openai.OpenAI(base_url=url + "/v1", api_key=TOKEN, max_retries=0) as client:
        answer = client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "Capital?"}])
        assert answer.choices[0].message.content and answer.choices[0].message.content.startswith("Paris")
        stream = client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "Q"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text.endswith("17th century.")
        response = client.responses.create(model="nova", input="Capital?")  # Responses -> Chat -> Converse
        assert response.output_text.startswith("Paris")
    with anthropic.Anthropic(base_url=url, api_key=TOKEN, max_retries=0) as aclient:
        with aclient.messages.stream(model="claude", max_tokens=50, messages=[{"role": "user", "content": "Q"}]) as s:
            final = s.get_final_message()
        assert final.content[0].type == "text"
    operations = [r.operation for r in fake.requests]
    assert operations == ["converse", "converse-stream", "converse", "invoke-with-response-stream"]
    assert all(r.auth == "sigv4" for r in fake.requests)
    assert TOKEN not in fake.requests[-1].headers.get("authorization", "")
    assert SECRET_KEY not in "".join(lines)


LITELLM = """
model_list:
  - model_name: claude
    litellm_params:
      model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0
      aws_region_name: {region}
      aws_access_key_id: {key_id}
      aws_secret_access_key: os.environ/TEST_AWS_SECRET
      aws_bedrock_runtime_endpoint: {url}
  - model_name: claude-converse
    litellm_params:
      model: bedrock/converse/us.anthropic.claude-sonnet-4-5-20250929-v1:0
      aws_region_name: {region}
      aws_access_key_id: os.environ/TEST_AWS_KEY_ID
      aws_secret_access_key: os.environ/TEST_AWS_SECRET
      aws_bedrock_runtime_endpoint: {url}
  - model_name: nova-profile
    litellm_params:
      model: bedrock/amazon.nova-pro-v1:0
      aws_region_name: {region}
      aws_profile_name: bedrock-test
      aws_bedrock_runtime_endpoint: {url}
general_settings:
  master_key: {token}
"""


def test_litellm_config_bedrock_entries(tmp_path: Path) -> None:
    fake = FakeBedrock()
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(f"[bedrock-test]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n")
    with serve(fake) as upstream:
        config = tmp_path / "config.yaml"
        config.write_text(LITELLM.format(token=TOKEN, url=upstream, region=REGION, key_id=ACCESS_KEY))
        env = {
            **os.environ,
            "TEST_AWS_SECRET": SECRET_KEY,
            "TEST_AWS_KEY_ID": ACCESS_KEY,
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        with llmroute_serve(["--config", str(config)], tmp_path, env=env) as gateway:
            with anthropic.Anthropic(base_url=gateway.url, api_key=TOKEN, max_retries=0) as client:
                for model in ("claude", "claude-converse", "nova-profile"):
                    message = client.messages.create(
                        model=model, max_tokens=20, messages=[{"role": "user", "content": "Q"}]
                    )
                    assert message.content[0].type == "text"
            output = gateway.output
    assert [r.operation for r in fake.requests] == ["invoke", "converse", "converse"]
    assert all(r.auth == "sigv4" for r in fake.requests)
    assert SECRET_KEY not in output
