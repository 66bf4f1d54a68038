"""SigV4 signing and the credential chain, against the local Bedrock that recomputes signatures."""

from __future__ import annotations

import datetime
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from asgi_llmroute.providers.bedrock_auth import AwsSettings, BedrockApiKey, BedrockCredentialsError, BedrockSigner
from tests.support.fake_bedrock import (
    ACCESS_KEY,
    API_KEY,
    REGION,
    SECRET_KEY,
    SESSION_KEY,
    SESSION_SECRET,
    SESSION_TOKEN,
    FakeBedrock,
)
from tests.support.servers import read_body, serve

pytest.importorskip("botocore")

ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0"
BODY = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


@pytest.fixture
def bedrock() -> Iterator[tuple[FakeBedrock, str]]:
    fake = FakeBedrock()
    with serve(fake) as url:
        yield fake, url


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


async def call(url: str, auth: object, model: str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0") -> httpx.Response:
    path = "/model/" + urllib.parse.quote(model, safe="") + "/converse"
    async with httpx.AsyncClient() as client:
        request = client.build_request(
            "POST", url + path, content=json.dumps(BODY).encode(), headers={"content-type": "application/json"}
        )
        await auth.authorize(request)  # type: ignore[attr-defined]
        request.headers["x-added-after-signing"] = "1"  # not signed: cannot break the signature
        return await client.send(request)


@pytest.mark.anyio
async def test_static_keys_and_arn_model_ids(bedrock: tuple[FakeBedrock, str]) -> None:
    fake, url = bedrock
    signer = BedrockSigner(AwsSettings(REGION, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY))
    response = await call(url, signer)
    assert response.status_code == 200, response.text
    response = await call(url, signer, ARN)
    assert response.status_code == 200, response.text
    assert fake.requests[-1].model == ARN
    seen = fake.requests[-1].headers
    assert seen["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "SignedHeaders=content-type;host;x-amz-date," in seen["authorization"]
    assert "x-amz-security-token" not in seen


@pytest.mark.anyio
async def test_wrong_secret_is_a_403_from_bedrock(bedrock: tuple[FakeBedrock, str]) -> None:
    _, url = bedrock
    signer = BedrockSigner(AwsSettings(REGION, access_key_id=ACCESS_KEY, secret_access_key="not-the-secret"))
    response = await call(url, signer)
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"].startswith("InvalidSignatureException")
    wrong_region = BedrockSigner(AwsSettings("eu-west-3", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY))
    assert (await call(url, wrong_region)).status_code == 403


@pytest.mark.anyio
async def test_session_token_from_the_environment(
    bedrock: tuple[FakeBedrock, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = bedrock
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", SESSION_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SESSION_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    response = await call(url, BedrockSigner(AwsSettings(REGION)))
    assert response.status_code == 200, response.text
    assert fake.requests[-1].auth == "sigv4-session"


@pytest.mark.anyio
async def test_shared_profile(
    bedrock: tuple[FakeBedrock, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, url = bedrock
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[bedrock-test]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    response = await call(url, BedrockSigner(AwsSettings(REGION, profile="bedrock-test")))
    assert response.status_code == 200, response.text
    with pytest.raises(BedrockCredentialsError, match="ProfileNotFound"):
        await BedrockSigner(AwsSettings(REGION, profile="missing")).frozen_credentials()


@pytest.mark.anyio
async def test_no_credentials_at_all_is_a_clear_error() -> None:
    with pytest.raises(BedrockCredentialsError, match="no AWS credentials"):
        await BedrockSigner(AwsSettings(REGION)).frozen_credentials()


class FakeSTS:
    """AssumeRole: checks it is called with the source credentials, hands out session credentials."""

    def __init__(self, lifetime: datetime.timedelta) -> None:
        self.lifetime = lifetime
        self.calls: list[dict[str, str]] = []
        self.threads: list[str] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        form = dict(urllib.parse.parse_qsl(body.decode()))
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
        self.calls.append(form)
        expires = (datetime.datetime.now(datetime.timezone.utc) + self.lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")
        xml = f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>{SESSION_KEY}</AccessKeyId><SecretAccessKey>{SESSION_SECRET}</SecretAccessKey>
<SessionToken>{SESSION_TOKEN}</SessionToken><Expiration>{expires}</Expiration></Credentials>
<AssumedRoleUser><AssumedRoleId>AROAFAKE:s</AssumedRoleId><Arn>{form.get("RoleArn")}/s</Arn></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>"""
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/xml")]})
        await send({"type": "http.response.body", "body": xml.encode()})


@pytest.mark.anyio
@pytest.mark.parametrize(("minutes", "sts_calls"), [(60, 1), (5, 3)])
async def test_assume_role_refreshes_off_the_event_loop(
    bedrock: tuple[FakeBedrock, str], minutes: int, sts_calls: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = bedrock
    sts = FakeSTS(datetime.timedelta(minutes=minutes))
    threads: list[int] = []
    original = BedrockSigner._frozen_blocking

    def recording(credentials):
        threads.append(threading.get_ident())
        return original(credentials)

    monkeypatch.setattr(BedrockSigner, "_frozen_blocking", staticmethod(recording))
    with serve(sts) as sts_url:
        settings = AwsSettings(
            REGION,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
            role_arn="arn:aws:iam::123456789012:role/bedrock-caller",
            sts_endpoint_url=sts_url,
        )
        signer = BedrockSigner(settings)
        try:
            for _ in range(3):
                response = await call(url, signer)
                assert response.status_code == 200, response.text
        finally:
            signer.close()
    assert all(r.auth == "sigv4-session" for r in fake.requests)
    assert len(sts.calls) == sts_calls  # credentials that expire within 15 minutes are refreshed
    assert sts.calls[0]["RoleArn"] == "arn:aws:iam::123456789012:role/bedrock-caller"
    assert threads and threading.get_ident() not in threads  # refreshes ran in worker threads


@pytest.mark.anyio
async def test_bedrock_api_key(bedrock: tuple[FakeBedrock, str]) -> None:
    fake, url = bedrock
    assert (await call(url, BedrockApiKey(API_KEY))).status_code == 200
    assert fake.requests[-1].auth == "bearer"
    assert (await call(url, BedrockApiKey("wrong"))).status_code == 403
    assert API_KEY not in repr(BedrockApiKey(API_KEY))
