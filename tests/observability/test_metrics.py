"""``GET /metrics``: access, and exact values after a known sequence of requests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from asgi_llmroute import build_gateway
from asgi_llmroute.metrics import upstream_error_kind
from tests.support.gateway import ROUTER_TOKEN, gateway_config

from ._support import metric
from .conftest import Running

ADMIN_TOKEN = "sk-admin-metrics-SECRET-0123456789"
AUTH = {"authorization": f"Bearer {ROUTER_TOKEN}"}
MESSAGES: Any = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def running(start: Any) -> Running:
    return start(admin={"tokens": [ADMIN_TOKEN]})  # type: ignore[no-any-return]


def scrape(running: Running) -> str:
    response = httpx.get(f"{running.url}/metrics", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": f"Bearer {ROUTER_TOKEN}"},
        {"x-api-key": "wrong"},
        {"authorization": f"Basic {ADMIN_TOKEN}"},
    ],
)
def test_metrics_need_an_admin_token(running: Running, headers: dict[str, str]) -> None:
    response = httpx.get(f"{running.url}/metrics", headers=headers)
    assert response.status_code == 401
    assert "error" in response.json()


def test_admin_token_in_x_api_key(running: Running) -> None:
    assert httpx.get(f"{running.url}/metrics", headers={"x-api-key": ADMIN_TOKEN}).status_code == 200
    assert httpx.post(f"{running.url}/metrics", headers={"x-api-key": ADMIN_TOKEN}).status_code == 405


def test_open_metrics_on_another_path(start: Any) -> None:
    opened: Running = start(metrics={"open": True, "path": "/internal/metrics"})
    assert httpx.get(f"{opened.url}/internal/metrics").status_code == 200
    assert httpx.get(f"{opened.url}/metrics", headers=AUTH).status_code == 404  # an ordinary unknown path now
    disabled: Running = start(metrics={"enabled": False})
    assert httpx.get(f"{disabled.url}/metrics").status_code == 401  # router-token auth, then 404
    assert httpx.get(f"{disabled.url}/metrics", headers=AUTH).status_code == 404


def test_values_after_a_known_sequence(start: Any) -> None:
    running: Running = start(admin={"tokens": [ADMIN_TOKEN]})  # a fresh gateway: every count is known
    client = running.openai()
    for _ in range(2):
        client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    list(client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True))
    with running.anthropic().messages.stream(model="claude", max_tokens=9, messages=MESSAGES) as s:
        s.get_final_text()
    client.chat.completions.create(model="openai/gpt-x", messages=MESSAGES)
    assert (
        httpx.post(f"{running.url}/v1/chat/completions", headers=AUTH, json={"model": "openai/fail"}).status_code == 500
    )
    assert httpx.post(f"{running.url}/v1/chat/completions", headers=AUTH, json={"model": "nope"}).status_code == 404
    assert httpx.post(f"{running.url}/v1/chat/completions", json={"model": "gpt-test"}).status_code == 401
    running.logs.access(8)  # every request has finished (its line is written after its last byte)
    text = scrape(running)

    def requests(model: str, deployment: str, status: str) -> float:
        return metric(text, "llmroute_requests_total", model=model, deployment=deployment, status=status)

    assert requests("gpt-test", "openai/gpt-4o-mini", "200") == 3
    assert requests("claude", "anthropic/claude-sonnet-4-5", "200") == 1
    assert requests("other", "openai/other", "200") == 1  # unconfigured model names are not labels
    assert requests("other", "openai/other", "500") == 1
    assert requests("none", "none", "404") == 1  # not resolved: no model
    assert requests("none", "none", "401") == 1
    hist = {"model": "gpt-test", "deployment": "openai/gpt-4o-mini"}
    assert metric(text, "llmroute_request_duration_seconds_count", **hist) == 3
    assert metric(text, "llmroute_time_to_first_token_seconds_count", **hist) == 1  # streams only
    assert (
        metric(
            text, "llmroute_time_to_first_token_seconds_count", model="claude", deployment="anthropic/claude-sonnet-4-5"
        )
        == 1
    )
    assert metric(text, "llmroute_input_tokens_total", model="gpt-test", token="alice") == 3 * 11
    assert metric(text, "llmroute_output_tokens_total", model="gpt-test", token="alice") == 3 * 7
    assert metric(text, "llmroute_input_tokens_total", model="claude", token="alice") == 15
    assert metric(text, "llmroute_output_tokens_total", model="claude", token="alice") == 9
    assert metric(text, "llmroute_upstream_errors_total", deployment="openai/other", kind="server_error") == 1
    assert metric(text, "llmroute_requests_in_flight", api="openai.chat") == 0
    assert "sk-" not in text


def test_upstream_errors_count_every_attempt(start: Any) -> None:
    running: Running = start(
        admin={"tokens": [ADMIN_TOKEN]}, routing={"max_attempts": 3, "backoff_base": 0, "backoff_max": 0}
    )
    running.logs.clear()
    assert (
        httpx.post(f"{running.url}/v1/chat/completions", headers=AUTH, json={"model": "openai/fail"}).status_code == 500
    )
    attempts = running.logs.access()[0]["attempts"]
    assert attempts >= 1
    assert (
        metric(scrape(running), "llmroute_upstream_errors_total", deployment="openai/other", kind="server_error")
        == attempts
    )


def test_in_flight_counts_the_scrape_itself(running: Running) -> None:
    assert metric(scrape(running), "llmroute_requests_in_flight", api="passthrough") == 1


def test_two_gateways_do_not_share_metrics(upstreams: tuple[str, str]) -> None:
    one, two = (build_gateway(gateway_config(*upstreams)) for _ in range(2))
    one.metrics.requests.labels("m", "d", "200").inc()
    assert (
        metric(one.metrics.render().decode(), "llmroute_requests_total", model="m", deployment="d", status="200") == 1
    )
    assert (
        metric(two.metrics.render().decode(), "llmroute_requests_total", model="m", deployment="d", status="200") == 0
    )


@pytest.mark.parametrize(
    ("status", "failure", "kind"),
    [
        (504, None, "timeout"),
        (502, None, "unavailable"),
        (429, None, "rate_limited"),
        (529, None, "overloaded"),
        (400, None, "client_error"),
        (500, None, "server_error"),
        (401, None, "auth"),
        (200, None, None),
        (502, "connect", "connect"),
        (200, "protocol", "protocol"),
        (0, "disconnect", None),
        (200, "disconnect", None),
        (500, "disconnect", "server_error"),
    ],
)
def test_upstream_error_kinds(status: int, failure: str | None, kind: str | None) -> None:
    assert upstream_error_kind(status, failure) == kind


@pytest.mark.anyio
@pytest.mark.parametrize("records", [False, True])
async def test_upstream_errors_around_any_app_or_one_that_records_its_status(records: bool) -> None:
    from asgi_llmroute.context import SCOPE_KEY, ClientAPI, RequestContext
    from asgi_llmroute.metrics import GatewayMetrics
    from asgi_llmroute.middleware.observe import UpstreamErrorsMiddleware
    from asgi_llmroute.providers.types import Deployment, Provider

    class App:
        records_attempt_status = records

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if records:
                scope[SCOPE_KEY].attempt_status = 503
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

    metrics = GatewayMetrics(is_known=lambda model: True)
    ctx = RequestContext(client_api=ClientAPI.OPENAI_CHAT)
    ctx.model = "m"
    ctx.deployment = Deployment(Provider("up", "openai", "http://up/v1"), "m")
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        raise AssertionError("not read")

    for _ in range(2):
        await UpstreamErrorsMiddleware(App(), metrics=metrics)({"type": "http", SCOPE_KEY: ctx}, receive, send)
    text = metrics.render().decode()
    assert metric(text, "llmroute_upstream_errors_total", deployment="up/m", kind="overloaded") == 2
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"] * 2
