"""boto3's own bedrock-runtime client against the local Bedrock: the check that the fake is realistic
(SigV4 accepted as boto3 signs it, event streams parsed by botocore, errors raised as boto3 raises them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_bedrock import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    SESSION_KEY,
    SESSION_SECRET,
    SESSION_TOKEN,
    FakeBedrock,
)
from tests.support.servers import serve

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError, EventStreamError  # noqa: E402

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


_CLIENTS: list[Any] = []


@pytest.fixture
def fake() -> Iterator[tuple[FakeBedrock, str]]:
    upstream = FakeBedrock()
    with serve(upstream) as url:
        yield upstream, url
        while _CLIENTS:
            _CLIENTS.pop().close()


def client(url: str, key: str = ACCESS_KEY, secret: str = SECRET_KEY, token: str | None = None) -> Any:
    made = boto3.client(
        "bedrock-runtime",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1}),
    )
    _CLIENTS.append(made)
    return made


MESSAGES = [{"role": "user", "content": [{"text": "Capital of France?"}]}]


def test_converse(fake: tuple[FakeBedrock, str]) -> None:
    upstream, url = fake
    answer = client(url).converse(modelId=MODEL, messages=MESSAGES, inferenceConfig={"maxTokens": 10})
    assert answer["output"]["message"]["content"][0]["text"].startswith("Paris")
    assert upstream.requests[-1].auth == "sigv4"
    assert upstream.requests[-1].model == MODEL


def test_converse_stream_with_session_credentials(fake: tuple[FakeBedrock, str]) -> None:
    upstream, url = fake
    answer = client(url, SESSION_KEY, SESSION_SECRET, SESSION_TOKEN).converse_stream(modelId=MODEL, messages=MESSAGES)
    events = list(answer["stream"])
    assert [next(iter(e)) for e in events][0] == "messageStart"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 23
    assert upstream.requests[-1].auth == "sigv4-session"


def test_tool_use_stream_and_invoke(fake: tuple[FakeBedrock, str]) -> None:
    _, url = fake
    tools = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]}
    events = list(client(url).converse_stream(modelId=MODEL, messages=MESSAGES, toolConfig=tools)["stream"])
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    answer = client(url).invoke_model(modelId=MODEL, body=json.dumps(body))
    assert json.loads(answer["body"].read())["id"].startswith("msg_bdrk_")
    chunks = list(client(url).invoke_model_with_response_stream(modelId=MODEL, body=json.dumps(body))["body"])
    assert json.loads(chunks[-1]["chunk"]["bytes"])["type"] == "message_stop"


def test_wrong_credentials_and_bad_signatures_are_refused(fake: tuple[FakeBedrock, str]) -> None:
    _, url = fake
    with pytest.raises(ClientError) as info:
        client(url, key="AKIAUNKNOWN000000000").converse(modelId=MODEL, messages=MESSAGES)
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
    with pytest.raises(ClientError) as info:
        client(url, secret="wrong-secret").converse(modelId=MODEL, messages=MESSAGES)
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_validation_throttling_and_stream_exceptions(fake: tuple[FakeBedrock, str]) -> None:
    upstream, url = fake
    with pytest.raises(ClientError) as info:
        client(url).converse(modelId=MODEL, messages=[*MESSAGES, *MESSAGES])
    assert info.value.response["Error"]["Code"] == "ValidationException"
    upstream.throttle_times = 1
    with pytest.raises(ClientError) as info:
        client(url).converse(modelId="throttle-model", messages=MESSAGES)
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    assert client(url).converse(modelId="throttle-model", messages=MESSAGES)["stopReason"] == "end_turn"
    stream = client(url).converse_stream(modelId="midstream-model", messages=MESSAGES)["stream"]
    with pytest.raises(EventStreamError, match="modelStreamErrorException"):
        list(stream)
    stream.close()  # the connection of a failed stream is not given back to the pool
