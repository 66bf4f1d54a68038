"""Hostile request bodies at the edge: deep nesting, lone surrogates, control characters in model names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from asgi_llmroute import build_gateway
from tests.support.gateway import ROUTER_TOKEN, gateway_config
from tests.support.servers import Upstream, serve

AUTH = {"Authorization": f"Bearer {ROUTER_TOKEN}"}
ANTHROPIC_AUTH = {"x-api-key": ROUTER_TOKEN, "anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Upstream, Upstream, str]]:
    oa, an = Upstream(), Upstream()
    with serve(oa) as oa_url, serve(an) as an_url:
        config = gateway_config(oa_url, an_url, server={"max_body_bytes": 8 * 1024 * 1024})
        with serve(build_gateway(config)) as url:
            yield oa, an, url


@pytest.fixture
def gw(upstreams: tuple[Upstream, Upstream, str]) -> Iterator[httpx.Client]:
    upstreams[0].requests.clear()
    upstreams[1].requests.clear()
    with httpx.Client(base_url=upstreams[2], timeout=30) as c:
        yield c


def _openai_error(response: httpx.Response) -> Any:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def _anthropic_error(response: httpx.Response) -> Any:
    body = response.json()
    assert body["type"] == "error", body
    return body["error"]


def _nested(depth: int) -> bytes:
    return (
        b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "x": '
        + b"[" * depth
        + b"]" * depth
        + b"}"
    )


# (path, model, client-format) for same-format and translated routes of both client APIs.
ROUTES = [
    ("/v1/chat/completions", "gpt-test", "openai", AUTH),
    ("/v1/chat/completions", "claude", "openai", AUTH),
    ("/v1/messages", "claude", "anthropic", ANTHROPIC_AUTH),
    ("/v1/messages", "gpt-test", "anthropic", ANTHROPIC_AUTH),
]


@pytest.mark.parametrize("depth", [100_000, 5_000, 900, 129])
@pytest.mark.parametrize(("path", "model", "wire", "headers"), ROUTES)
def test_deeply_nested_json_is_a_400(
    gw: httpx.Client,
    upstreams: tuple[Upstream, Upstream, str],
    path: str,
    model: str,
    wire: str,
    headers: dict[str, str],
    depth: int,
) -> None:
    body = _nested(depth).replace(b'"gpt-test"', f'"{model}"'.encode())
    if path == "/v1/messages":
        body = body.replace(b'"x": ', b'"max_tokens": 5, "x": ')
    response = gw.post(path, content=body, headers={**headers, "content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = _anthropic_error(response) if wire == "anthropic" else _openai_error(response)
    assert "nest" in str(error["message"])
    assert not upstreams[0].requests and not upstreams[1].requests


def test_deeply_nested_json_on_the_admin_api(tmp_path) -> None:
    from tests.providers.support import ADMIN_TOKEN, store_config

    config = store_config(tmp_path)
    with serve(build_gateway(config)) as url:
        response = httpx.post(
            f"{url}/api/providers",
            content=b"[" * 100_000 + b"]" * 100_000,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json"},
        )
    assert response.status_code == 400, response.text
    assert "nest" in _openai_error(response)["message"]


SURROGATES = [
    # a JSON escape of a lone high surrogate, of a lone low one, and the UTF-8 bytes of a surrogate
    b'"hi \\ud800 there"',
    b'"\\udc00"',
    b'"hi \xed\xa0\x80"',
]


@pytest.mark.parametrize("content", SURROGATES)
@pytest.mark.parametrize(("path", "model", "wire", "headers"), ROUTES)
def test_lone_surrogates_are_a_400(
    gw: httpx.Client,
    upstreams: tuple[Upstream, Upstream, str],
    path: str,
    model: str,
    wire: str,
    headers: dict[str, str],
    content: bytes,
) -> None:
    body = b'{"model": "%s", "max_tokens": 5, "messages": [{"role": "user", "content": %s}]}' % (
        model.encode(),
        content,
    )
    response = gw.post(path, content=body, headers={**headers, "content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = _anthropic_error(response) if wire == "anthropic" else _openai_error(response)
    assert "surrogate" in str(error["message"])
    assert not upstreams[0].requests and not upstreams[1].requests


def test_surrogate_pairs_are_fine(gw: httpx.Client, upstreams: tuple[Upstream, Upstream, str]) -> None:
    body = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "\\ud83d\\ude00"}]}'
    response = gw.post("/v1/chat/completions", content=body, headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert upstreams[0].last.json()["messages"][0]["content"] == "\N{GRINNING FACE}"


@pytest.mark.parametrize("bad", ["\r", "\n", "\x00", "\x1b", "\x7f", "\x85"])
@pytest.mark.parametrize("template", ["openai/gpt-4o{}x", "gpt-test{}", "{}claude"])
def test_control_characters_in_model_names_are_a_400(
    gw: httpx.Client, upstreams: tuple[Upstream, Upstream, str], bad: str, template: str
) -> None:
    model = template.format(bad)
    response = gw.post("/v1/chat/completions", json={"model": model, "messages": []}, headers=AUTH)
    assert response.status_code == 400, response.text
    error = _openai_error(response)
    assert error["param"] == "model"
    assert "control character" in str(error["message"])
    assert not upstreams[0].requests
    response = gw.post("/v1/messages", json={"model": model, "max_tokens": 5, "messages": []}, headers=ANTHROPIC_AUTH)
    assert response.status_code == 400, response.text
    assert "control character" in str(_anthropic_error(response)["message"])
    assert not upstreams[1].requests


@pytest.mark.parametrize(("path", "model", "wire", "headers"), ROUTES)
def test_nesting_within_the_limit_is_relayed(
    gw: httpx.Client, path: str, model: str, wire: str, headers: dict[str, str]
) -> None:
    body = (
        _nested(100)
        .replace(b'"gpt-test"', f'"{model}"'.encode())
        .replace(b'"x": ', b'"max_tokens": 5, "metadata": {"user_id": "u"}, "y": ')
    )
    response = gw.post(path, content=body, headers={**headers, "content-type": "application/json"})
    assert response.status_code != 400 or "nest" not in response.text, response.text
