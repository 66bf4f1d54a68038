"""Store providers' own timeouts, retries and limits are enforced, also for providers added while running."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Send

from asgi_llmroute import build_gateway
from tests.providers.support import ADMIN_TOKEN, ROUTER_TOKEN, store_config, write_config
from tests.providers.test_cli import llmroute
from tests.support.servers import Recorded, Upstream, json_reply, serve, sse_reply

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CLIENT = {"Authorization": f"Bearer {ROUTER_TOKEN}"}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
}


def provider(url: str, **tuning: object) -> dict[str, object]:
    record = {"name": "p", "api": "openai", "base_url": f"{url}/v1", "api_key": "sk-up-0123456789", "models": ["m"]}
    return record | tuning


class Held:
    """An upstream reply that holds each request until released (counting those in flight)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.in_flight = 0
        self.most = 0

    async def __call__(self, request: Recorded, send: Send) -> None:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            while not self.release.is_set():
                await asyncio.sleep(0.01)
            await json_reply(COMPLETION)(request, send)
        finally:
            self.in_flight -= 1


def test_a_store_providers_max_in_flight_added_while_running(tmp_path: Path) -> None:
    held = Held()
    upstream = Upstream(reply=held)
    config = store_config(tmp_path, routing={"max_wait": 0.3})
    with serve(upstream) as up, serve(build_gateway(config)) as url:
        added = httpx.post(f"{url}/api/providers", headers=ADMIN, json=provider(up, max_in_flight=1))
        assert added.status_code == 201, added.text
        with httpx.Client(base_url=url, headers=CLIENT, timeout=10) as client, ThreadPoolExecutor(2) as pool:
            first = pool.submit(client.post, "/v1/chat/completions", json=CHAT)
            deadline = time.monotonic() + 5
            while held.in_flight < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            second = client.post("/v1/chat/completions", json=CHAT)  # waits max_wait for the slot, then 429
            assert second.status_code == 429, second.text
            assert second.json()["error"]["code"] == "concurrency_limit" and "'p'" in second.text
            held.release.set()
            assert first.result().status_code == 200
        assert held.most == 1 and len(upstream.requests) == 1

        # The limit follows the record: raised to 2, two requests run at once.
        held.release.clear()
        assert httpx.patch(f"{url}/api/providers/p", headers=ADMIN, json={"max_in_flight": 2}).status_code == 200
        with httpx.Client(base_url=url, headers=CLIENT, timeout=10) as client, ThreadPoolExecutor(2) as pool:
            replies = [pool.submit(client.post, "/v1/chat/completions", json=CHAT) for _ in range(2)]
            deadline = time.monotonic() + 5
            while held.in_flight < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            held.release.set()
            assert [r.result().status_code for r in replies] == [200, 200]
        assert held.most == 2


def test_a_store_providers_timeouts_and_retries_apply(tmp_path: Path) -> None:
    async def slow(request: Recorded, send: Send) -> None:
        await asyncio.sleep(3)
        await json_reply(COMPLETION)(request, send)

    trickle = sse_reply([b'data: {"choices": []}\n\n'] * 100, delay=0.1)  # never idle, never done soon
    failing = Upstream(reply=json_reply({"error": {"message": "busy"}}, status=503))
    config = store_config(tmp_path)
    with (
        serve(Upstream(reply=slow)) as slow_url,
        serve(Upstream(reply=trickle)) as stream_url,
        serve(failing) as failing_url,
        serve(build_gateway(config)) as url,
        httpx.Client(base_url=url, timeout=20) as admin,
    ):
        for name, up, tuning in (
            ("slow", slow_url, {"first_byte_timeout": 0.5, "max_retries": 0}),
            ("streamy", stream_url, {"stream_timeout": 0.6}),
            ("failing", failing_url, {"max_retries": 0}),
        ):
            body = provider(up, **tuning) | {"name": name, "models": {f"{name}-m": "m"}}
            assert admin.post("/api/providers", headers=ADMIN, json=body).status_code == 201

        started = time.monotonic()
        reply = admin.post("/v1/chat/completions", headers=CLIENT, json={**CHAT, "model": "slow-m"})
        assert reply.status_code == 504 and "first byte" in reply.text
        assert time.monotonic() - started < 2.5  # not the 600 s default, nor the upstream's 3 s

        started = time.monotonic()
        stream = {**CHAT, "model": "streamy-m", "stream": True}
        with admin.stream("POST", "/v1/chat/completions", headers=CLIENT, json=stream) as response:
            text = "".join(response.iter_text())
        assert time.monotonic() - started < 3  # cut at 0.6 s, not after the 10 s the stream would take
        assert "upstream_timeout" in text

        reply = admin.post("/v1/chat/completions", headers=CLIENT, json={**CHAT, "model": "failing-m"})
        assert reply.status_code == 503 and len(failing.requests) == 1  # max_retries 0: tried once


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("max_in_flight", 0, "max_in_flight: Input should be greater than 0"),
        ("stream_timeout", -1, "stream_timeout: Input should be greater than 0"),
        ("retry_on", [200], "retry_on: Value error, statuses must be between 400 and 599"),
        ("max_retries", 11, "max_retries: Input should be less than or equal to 10"),
        ("cooldown", "soon", "cooldown: Input should be a valid number"),
    ],
)
def test_bad_settings_are_refused_with_422(tmp_path: Path, field: str, value: object, problem: str) -> None:
    config = store_config(tmp_path)
    with serve(build_gateway(config)) as url:
        bad = httpx.post(f"{url}/api/providers", headers=ADMIN, json=provider("http://127.0.0.1:9", **{field: value}))
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["param"] == field
        assert problem.replace("Value error, ", "") in bad.json()["error"]["message"]
        good = httpx.post(f"{url}/api/providers", headers=ADMIN, json=provider("http://127.0.0.1:9"))
        assert good.status_code == 201
        bad = httpx.patch(f"{url}/api/providers/p", headers=ADMIN, json={field: value})
        assert bad.status_code == 422 and bad.json()["error"]["param"] == field


def test_the_cli_sets_and_checks_them(tmp_path: Path) -> None:
    write_config(tmp_path)
    base = ["providers", "add", "p", "--api", "openai", "--base-url", "https://a.example.com/v1", "--no-api-key"]
    tuning = ["--stream-timeout", "30", "--max-in-flight", "3", "--retry-on", "429,503", "--first-byte-timeout", "5"]
    llmroute(tmp_path, *base, *tuning)
    shown = json.loads(llmroute(tmp_path, "providers", "show", "p", "--json").stdout)
    assert (shown["stream_timeout"], shown["max_in_flight"], shown["retry_on"]) == (30, 3, [429, 503])
    err = llmroute(tmp_path, "providers", "update", "p", "--stream-timeout", "0", status=1).stderr
    assert err.strip().splitlines() == [
        "llmroute: error: provider 'p': stream_timeout: Input should be greater than 0"
    ], err
    err = llmroute(tmp_path, "providers", "update", "p", "--max-in-flight", "-2", status=1).stderr
    assert "max_in_flight: Input should be greater than 0" in err and len(err.strip().splitlines()) == 1
    llmroute(tmp_path, "providers", "update", "p", "--max-in-flight", "1")
    shown = json.loads(llmroute(tmp_path, "providers", "show", "p", "--json").stdout)
    assert shown["max_in_flight"] == 1 and shown["stream_timeout"] == 30  # the other settings kept


def test_store_providers_follow_the_gateways_drop_params_unless_they_set_their_own(tmp_path: Path) -> None:
    upstream = Upstream(reply=json_reply(COMPLETION))
    config = store_config(tmp_path, translation={"drop_params": True})
    with serve(upstream) as up, serve(build_gateway(config)) as url:
        for name, own in (("inherits", None), ("strict", False)):
            body: dict[str, Any] = {
                "name": name,
                "kind": "groq",
                "base_url": f"{up}/v1",
                "api_key": "gsk-0123456789abcdef",
            }
            body |= {"models": {f"{name}-m": "llama"}} | ({} if own is None else {"drop_params": own})
            assert httpx.post(f"{url}/api/providers", headers=ADMIN, json=body).status_code == 201
        shown = httpx.get(f"{url}/api/providers/inherits", headers=ADMIN).json()
        assert "drop_params" not in shown  # unset, not false
        asked = {**CHAT, "logprobs": True}
        dropped = httpx.post(f"{url}/v1/chat/completions", headers=CLIENT, json={**asked, "model": "inherits-m"})
        assert dropped.status_code == 200 and dropped.headers["x-llmroute-warning"].startswith("dropped logprobs")
        assert "logprobs" not in upstream.last.json()
        refused = httpx.post(f"{url}/v1/chat/completions", headers=CLIENT, json={**asked, "model": "strict-m"})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "logprobs"


def test_an_upstreams_own_warning_header_does_not_reach_the_client(tmp_path: Path) -> None:
    spoofing = Upstream(reply=json_reply(COMPLETION, headers={"x-llmroute-warning": "dropped everything"}))
    with serve(spoofing) as up, serve(build_gateway(store_config(tmp_path))) as url:
        assert httpx.post(f"{url}/api/providers", headers=ADMIN, json=provider(up)).status_code == 201
        reply = httpx.post(f"{url}/v1/chat/completions", headers=CLIENT, json=CHAT)
        assert reply.status_code == 200 and "x-llmroute-warning" not in reply.headers
