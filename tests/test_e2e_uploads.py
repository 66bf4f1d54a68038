"""End to end: OpenAI's multipart upload endpoints, routed by their ``model`` form field."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import openai
import pytest

from asgi_llmroute import build_gateway
from asgi_llmroute.multipart import form_boundary, form_field
from tests.support.gateway import LIMITED_TOKEN, OPENAI_KEY, ROUTER_TOKEN, gateway_config
from tests.support.servers import Upstream, json_reply, serve

AUDIO = b"RIFF\x00\x01fake wav\r\n--boundary-lookalike\r\n\xff" * 64


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Upstream, Upstream, str]]:
    first, second = Upstream(), Upstream()
    with serve(first) as first_url, serve(second) as second_url:
        config = gateway_config(
            first_url,
            first_url,
            providers=[
                {"name": "first", "api": "openai", "base_url": f"{first_url}/v1", "api_key": OPENAI_KEY},
                {"name": "second", "api": "openai", "base_url": f"{second_url}/v1", "api_key": OPENAI_KEY},
                {"name": "anthropic", "api": "anthropic", "base_url": first_url, "api_key": "sk-ant-x"},
            ],
            models=[
                {"name": "gpt-transcribe", "provider": "first", "model": "whisper-1"},
                {"name": "gpt-transcribe", "provider": "second", "model": "gpt-4o-transcribe"},
                {"name": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5"},
            ],
            routing={"strategy": "least_in_flight"},
        )
        with serve(build_gateway(config)) as url:
            yield first, second, url


@pytest.fixture
def gateway(upstreams: tuple[Upstream, Upstream, str]) -> Iterator[tuple[Upstream, Upstream, str]]:
    first, second, _ = upstreams
    for upstream in (first, second):
        upstream.reply = json_reply({"text": "bonjour"})
        upstream.requests.clear()
    yield upstreams


def client(url: str, token: str = ROUTER_TOKEN) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0)


def sent_form(upstream: Upstream) -> tuple[bytes, str | None]:
    recorded = upstream.last
    boundary = form_boundary(recorded.headers["content-type"].encode())
    assert boundary is not None
    return recorded.body, form_field(recorded.body, boundary, "model")


def test_transcription_is_routed_by_its_form_field(gateway: tuple[Upstream, Upstream, str]) -> None:
    first, second, url = gateway
    with client(url) as oa:
        result = oa.audio.transcriptions.create(
            model="gpt-transcribe", file=("speech.wav", io.BytesIO(AUDIO)), language="fr"
        )
    assert result.text == "bonjour"
    (upstream,) = [u for u in (first, second) if u.requests]
    body, model = sent_form(upstream)
    assert model in ("whisper-1", "gpt-4o-transcribe")  # the deployment's upstream model
    assert AUDIO in body and b'name="language"\r\n\r\nfr\r\n' in body
    assert upstream.last.path == "/v1/audio/transcriptions"
    assert upstream.last.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert ROUTER_TOKEN not in str(upstream.last.headers)
    assert int(upstream.last.headers["content-length"]) == len(body)


def test_a_failed_upload_is_retried_on_the_other_deployment(gateway: tuple[Upstream, Upstream, str]) -> None:
    first, second, url = gateway
    first.reply = second.reply = json_reply({"error": {"message": "overloaded"}}, status=503)
    with client(url) as oa, pytest.raises(openai.InternalServerError):
        oa.audio.transcriptions.create(model="gpt-transcribe", file=("speech.wav", io.BytesIO(AUDIO)))
    models = sorted(sent_form(u)[1] or "" for u in (first, second))
    assert models == ["gpt-4o-transcribe", "whisper-1"]  # each attempt with its own deployment's model
    assert all(AUDIO in u.last.body for u in (first, second))


def test_upload_errors_in_openai_format(gateway: tuple[Upstream, Upstream, str]) -> None:
    first, second, url = gateway
    with client(url, LIMITED_TOKEN) as oa, pytest.raises(openai.PermissionDeniedError):  # it allows gpt-* only
        oa.audio.transcriptions.create(model="claude", file=("a.wav", io.BytesIO(AUDIO)))
    with client(url) as oa, pytest.raises(openai.NotFoundError, match="Unknown model"):
        oa.audio.transcriptions.create(model="nope", file=("a.wav", io.BytesIO(AUDIO)))
    with client(url) as oa, pytest.raises(openai.BadRequestError, match="does not offer the audio operation"):
        oa.audio.transcriptions.create(model="claude", file=("a.wav", io.BytesIO(AUDIO)))
    assert not first.requests and not second.requests


def test_other_upload_endpoints_are_routed(gateway: tuple[Upstream, Upstream, str]) -> None:
    first, second, url = gateway
    files = {"file": ("speech.wav", AUDIO)}
    for path in ("/v1/audio/translations", "/v1/images/edits", "/v1/images/variations"):
        response = httpx.post(
            f"{url}{path}",
            headers={"authorization": f"Bearer {ROUTER_TOKEN}"},
            data={"model": "gpt-transcribe"},
            files=files,
        )
        assert response.status_code == 200, response.text
        (upstream,) = [u for u in (first, second) if u.requests]
        assert upstream.last.path == path and AUDIO in upstream.last.body
        upstream.requests.clear()


def test_a_form_without_a_model_is_a_400(gateway: tuple[Upstream, Upstream, str]) -> None:
    _, _, url = gateway
    response = httpx.post(
        f"{url}/v1/audio/transcriptions",
        headers={"authorization": f"Bearer {ROUTER_TOKEN}"},
        files={"file": ("speech.wav", AUDIO)},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_model"


@pytest.mark.parametrize("token", [ROUTER_TOKEN, LIMITED_TOKEN])
def test_two_model_fields_are_a_400_before_any_upstream(gateway: tuple[Upstream, Upstream, str], token: str) -> None:
    # The allow-list would see one, a Starlette-based upstream the other: such a form is refused.
    first, second, url = gateway
    boundary = "llmroute-test-boundary"
    parts = [("model", "gpt-transcribe"), ("model", "claude")]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in parts
    )
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'.encode()
    body += AUDIO + f"\r\n--{boundary}--\r\n".encode()
    response = httpx.post(
        f"{url}/v1/audio/transcriptions",
        headers={"authorization": f"Bearer {token}", "content-type": f"multipart/form-data; boundary={boundary}"},
        content=body,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "model" and "several" in error["message"]
    assert not first.requests and not second.requests
