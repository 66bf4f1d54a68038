"""Fault injection end to end: real upstream servers that refuse, rate-limit, fail, stall and die,
a real gateway under uvicorn, and the official SDKs (with their own retries off) as clients."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import anthropic
import httpx
import openai
import pytest
from starlette.types import Send

from tests.support.gateway import ROUTER_TOKEN
from tests.support.gateway import serve_gateway as gateway
from tests.support.servers import Recorded, json_reply, sse_reply
from tests.support.servers import serve_upstreams as upstreams

from ._support import (
    AUTH,
    RawServer,
    anthropic_provider,
    chat_completion,
    chat_reply,
    chat_stream,
    closed_port_url,
    dying_stream,
    openai_chunks,
    openai_provider,
    reset_at_once,
    routing_config,
    script,
    slow_stream,
    stalled_reply,
)

MESSAGES: Any = [{"role": "user", "content": "Hi"}]


def post(url: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={**AUTH, **kwargs.pop("headers", {})}, json=body, **kwargs)


def openai_sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=ROUTER_TOKEN, max_retries=0)


def anthropic_sdk(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=ROUTER_TOKEN, max_retries=0)


# -- connect failures, statuses, Retry-After -----------------------------------------------------


def test_refused_connection_fails_over_to_the_next_deployment() -> None:
    with upstreams(chat_reply("from live")) as [(live, live_url)]:
        config = routing_config(
            [openai_provider("dead", closed_port_url()), openai_provider("live", live_url)],
            [
                {"name": "m", "provider": "dead", "model": "gpt-dead"},
                {"name": "m", "provider": "live", "model": "gpt-up"},
            ],
        )
        with gateway(config) as url:
            response = post(url, {"model": "m", "messages": MESSAGES})
            assert response.status_code == 200
            assert response.content == json.dumps(chat_completion("from live")).encode()  # byte for byte
            assert response.headers["x-llmroute-deployment"] == "live/gpt-up"
            assert response.headers["x-llmroute-attempts"] == "2"
            assert live.last.json()["model"] == "gpt-up"
            # The dead deployment now cools down: the next requests go straight to the live one.
            for _ in range(3):
                again = post(url, {"model": "m", "messages": MESSAGES})
                assert (again.headers["x-llmroute-deployment"], again.headers["x-llmroute-attempts"]) == (
                    "live/gpt-up",
                    "1",
                )


def test_connection_reset_before_any_answer_is_retried() -> None:
    raw = RawServer(reset_at_once)
    with raw.running() as broken_url, upstreams(chat_reply("ok")) as [(_, live_url)]:
        config = routing_config(
            [openai_provider("broken", broken_url), openai_provider("live", live_url)],
            [{"name": "m", "provider": "broken", "model": "x"}, {"name": "m", "provider": "live", "model": "gpt-up"}],
        )
        with gateway(config) as url:
            completion = openai_sdk(url).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
            assert completion.parse().choices[0].message.content == "ok"
            assert completion.headers["x-llmroute-attempts"] == "2"
        assert raw.connections == 1


def test_429_retry_after_is_honoured_then_the_answer_is_relayed() -> None:
    limited = json_reply({"error": {"message": "slow down", "type": "rate_limit"}}, 429, {"retry-after": "1"})
    with upstreams(script(limited, chat_reply("after the wait"))) as [(up, up_url)]:
        config = routing_config(
            [openai_provider("oa", up_url, max_retries=1)], [{"name": "m", "provider": "oa", "model": "gpt-up"}]
        )
        with gateway(config) as url:
            response = post(url, {"model": "m", "messages": MESSAGES})
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "after the wait"
    assert response.headers["x-llmroute-attempts"] == "2"
    assert len(up.requests) == 2
    # Measured where the attempts arrive, so that a loaded machine's slow client and first request do
    # not count: waited what Retry-After asked, not the (tiny) backoff, and not much more.
    assert 1.0 <= up.requests[1].at - up.requests[0].at < 2.5
    assert up.requests[0].body == up.requests[1].body  # the same request, replayed


def test_retry_after_beyond_the_maximum_is_relayed_to_the_client() -> None:
    body = {"error": {"message": "come back tomorrow", "type": "rate_limit"}}
    with upstreams(json_reply(body, 429, {"retry-after": "86400"})) as [(up, up_url)]:
        config = routing_config([openai_provider("oa", up_url)], [{"name": "m", "provider": "oa", "model": "gpt-up"}])
        with gateway(config) as url:
            response = post(url, {"model": "m", "messages": MESSAGES})
    assert response.status_code == 429
    assert response.json() == body
    assert response.headers["retry-after"] == "86400"
    assert response.headers["x-llmroute-attempts"] == "1"
    assert len(up.requests) == 1


def test_500_is_retried_with_backoff_until_max_retries_then_relayed() -> None:
    failure = {"error": {"message": "boom", "type": "server_error"}}
    with upstreams(json_reply(failure, 500)) as [(up, up_url)]:
        config = routing_config(
            [openai_provider("oa", up_url, max_retries=2)], [{"name": "m", "provider": "oa", "model": "gpt-up"}]
        )
        with gateway(config) as url, pytest.raises(openai.InternalServerError) as info:
            openai_sdk(url).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 500
    assert info.value.body == failure["error"]
    assert info.value.response.headers["x-llmroute-attempts"] == "3"
    assert len(up.requests) == 3


def test_non_retryable_status_is_relayed_at_once() -> None:
    bad = {"error": {"message": "bad request", "type": "invalid_request_error"}}
    with upstreams(json_reply(bad, 400), chat_reply("never")) as [(first, first_url), (second, second_url)]:
        config = routing_config(
            [openai_provider("a", first_url), openai_provider("b", second_url)],
            [{"name": "m", "provider": "a", "model": "gpt-up"}, {"name": "m", "provider": "b", "model": "gpt-up"}],
        )
        with gateway(config) as url:
            response = post(url, {"model": "m", "messages": MESSAGES})
    assert (response.status_code, response.json()) == (400, bad)
    assert response.headers["x-llmroute-attempts"] == "1"
    assert len(first.requests) == 1 and not second.requests


def test_529_falls_back_to_a_model_of_the_other_format() -> None:
    overloaded = json_reply({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, 529)
    with upstreams(overloaded, chat_reply("fallback answer")) as [(an, an_url), (oa, oa_url)]:
        config = routing_config(
            [anthropic_provider("anthropic", an_url), openai_provider("openai", oa_url)],
            [
                {"name": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5", "fallbacks": ["gpt"]},
                {"name": "gpt", "provider": "openai", "model": "gpt-up"},
            ],
            routing={"max_attempts": 10},
        )
        with gateway(config) as url:
            raw = anthropic_sdk(url).messages.with_raw_response.create(model="claude", max_tokens=50, messages=MESSAGES)
            message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == "fallback answer"
    assert raw.headers["x-llmroute-deployment"] == "openai/gpt-up"
    assert raw.headers["x-llmroute-attempts"] == "2"
    assert len(an.requests) == 1  # 529 cools the only deployment down: the fallback beats a retry
    assert oa.last.path == "/v1/chat/completions"  # translated for the fallback's provider
    assert oa.last.json()["model"] == "gpt-up"
    assert oa.last.json()["messages"] == [{"role": "user", "content": "Hi"}]
    assert "anthropic-version" not in oa.last.headers


def test_fallback_chain_stops_when_every_model_failed() -> None:
    down = json_reply({"error": {"message": "down", "type": "server_error"}}, 503)
    with upstreams(down, down) as [(a, a_url), (b, b_url)]:
        config = routing_config(
            [openai_provider("a", a_url, max_retries=0), openai_provider("b", b_url, max_retries=0)],
            [
                {"name": "one", "provider": "a", "model": "gpt-a", "fallbacks": ["two"]},
                {"name": "two", "provider": "b", "model": "gpt-b", "fallbacks": ["one"]},  # a cycle
            ],
        )
        with gateway(config) as url:
            response = post(url, {"model": "one", "messages": MESSAGES})
    assert response.status_code == 503
    assert response.headers["x-llmroute-attempts"] == "2"
    assert response.headers["x-llmroute-deployment"] == "b/gpt-b"
    assert [len(a.requests), len(b.requests)] == [1, 1]


# -- timeouts ------------------------------------------------------------------------------------


def test_slow_first_byte_times_out_and_the_next_deployment_answers() -> None:
    with upstreams(None, chat_reply("quick")) as [(slow_up, slow_url), (_, fast_url)]:
        slow_up.reply = stalled_reply(5.0, json.dumps(chat_completion("too late")).encode(), stop=slow_up.cancelled)
        config = routing_config(
            [openai_provider("slow", slow_url, first_byte_timeout=0.3), openai_provider("fast", fast_url)],
            [
                {"name": "m", "provider": "slow", "model": "gpt-up"},
                {"name": "m", "provider": "fast", "model": "gpt-up"},
            ],
        )
        with gateway(config) as url:
            began = time.monotonic()
            response = post(url, {"model": "m", "messages": MESSAGES})
            elapsed = time.monotonic() - began
            assert slow_up.cancelled.wait(2)  # the stalled upstream request was abandoned
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "quick"
    assert response.headers["x-llmroute-deployment"] == "fast/gpt-up"
    assert response.headers["x-llmroute-attempts"] == "2"
    assert 0.3 <= elapsed < 2.0


def test_first_byte_timeout_with_nowhere_else_to_go_is_504_in_the_client_format() -> None:
    with upstreams(None) as [(slow_up, slow_url)]:
        slow_up.reply = stalled_reply(5.0, b"{}", stop=slow_up.cancelled)
        config = routing_config(
            [openai_provider("slow", slow_url, first_byte_timeout=0.2, max_retries=0)],
            [{"name": "claude-ish", "provider": "slow", "model": "gpt-up"}],
        )
        with gateway(config) as url, pytest.raises(anthropic.APIStatusError) as info:
            anthropic_sdk(url).messages.create(model="claude-ish", max_tokens=5, messages=MESSAGES)
    assert info.value.status_code == 504
    assert info.value.body == {
        "type": "error",
        "error": {
            "type": "timeout_error",
            "message": "Provider 'slow' did not answer in time (first byte timeout, 0.2s).",
        },
    }


def test_idle_timeout_mid_stream_ends_it_with_an_error_event() -> None:
    chunks = openai_chunks(["Hello", " world"])

    async def stalls_after_one_event(request: Recorded, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": chunks[0], "more_body": True})
        await asyncio.sleep(1)

    with upstreams(stalls_after_one_event) as [(_, up_url)]:
        config = routing_config(
            [openai_provider("oa", up_url, idle_timeout=0.3)], [{"name": "m", "provider": "oa", "model": "gpt-up"}]
        )
        with (
            gateway(config) as url,
            chat_stream(url, "m", MESSAGES) as response,
        ):
            body = response.read()
            assert response.headers["x-llmroute-attempts"] == "1"
    error = {
        "error": {
            "message": "Provider 'oa' did not answer in time.",
            "type": "server_error",
            "param": None,
            "code": "upstream_timeout",
        }
    }
    assert body == chunks[0] + b"data: " + json.dumps(error, separators=(",", ":")).encode() + b"\n\n"


def test_a_long_stream_is_not_cut_by_the_total_timeout() -> None:
    # `timeout` is for non-stream calls: a stream that keeps sending runs past it (the idle timeout
    # governs streams, like the SDKs' per-read timeouts).
    chunks = openai_chunks(["a"] * 20)
    with upstreams(None) as [(up, up_url)]:
        up.reply = slow_stream(chunks, 0.05, stop=up.cancelled)
        config = routing_config(
            [openai_provider("oa", up_url, timeout=0.5)], [{"name": "m", "provider": "oa", "model": "gpt-up"}]
        )
        with gateway(config) as url:
            began = time.monotonic()
            with chat_stream(url, "m", []) as response:
                body = response.read()
            elapsed = time.monotonic() - began
    assert elapsed > 0.5
    assert b'"error"' not in body
    assert b"[DONE]" in body


def test_stream_timeout_cuts_a_long_stream() -> None:
    chunks = openai_chunks(["a"] * 40)
    with upstreams(None) as [(up, up_url)]:
        up.reply = slow_stream(chunks, 0.05, stop=up.cancelled)
        config = routing_config(
            [openai_provider("oa", up_url, stream_timeout=0.5)], [{"name": "m", "provider": "oa", "model": "gpt-up"}]
        )
        with gateway(config) as url:
            began = time.monotonic()
            with chat_stream(url, "m", []) as response:
                body = response.read()
            elapsed = time.monotonic() - began
            assert up.cancelled.wait(2)
    assert elapsed < 1.5
    events = body.split(b"\n\n")
    assert b"[DONE]" not in body
    assert events[-2].startswith(b'data: {"error":') and b"stream timeout, 0.5s" in events[-2]
    assert b"".join(e + b"\n\n" for e in events[:-2]) == b"".join(chunks[: len(events) - 2])


# -- committed streams ---------------------------------------------------------------------------


def test_stream_that_dies_half_way_ends_with_an_error_event_and_is_not_retried() -> None:
    events = openai_chunks(["Hello", " there", " friend"])[:2]
    raw = RawServer(dying_stream(events))
    with raw.running() as broken_url, upstreams(chat_reply("never")) as [(spare, spare_url)]:
        config = routing_config(
            [openai_provider("broken", broken_url), openai_provider("spare", spare_url)],
            [
                {"name": "m", "provider": "broken", "model": "gpt-up"},
                {"name": "m", "provider": "spare", "model": "gpt-up"},
            ],
        )
        with (
            gateway(config) as url,
            chat_stream(url, "m", []) as response,
        ):
            body = response.read()
            assert response.headers["x-llmroute-deployment"] == "broken/gpt-up"
            assert response.headers["x-llmroute-attempts"] == "1"
    error = {
        "error": {
            "message": "Provider 'broken' closed the connection or broke the HTTP protocol.",
            "type": "server_error",
            "param": None,
            "code": "upstream_unavailable",
        }
    }
    # Exactly the upstream's events, then one error event; no [DONE], nothing from the spare.
    assert body == b"".join(events) + b"data: " + json.dumps(error, separators=(",", ":")).encode() + b"\n\n"
    assert not spare.requests


def test_stream_that_dies_half_way_in_translation_ends_with_an_anthropic_error_event() -> None:
    events = openai_chunks(["Hello", " there", " friend"])[:2]
    raw = RawServer(dying_stream(events))
    with raw.running() as broken_url:
        config = routing_config(
            [openai_provider("broken", broken_url)], [{"name": "claude", "provider": "broken", "model": "gpt-up"}]
        )
        texts: list[str] = []
        with gateway(config) as url:
            with (
                pytest.raises(anthropic.APIStatusError) as info,
                anthropic_sdk(url).messages.stream(model="claude", max_tokens=9, messages=MESSAGES) as stream,
            ):
                texts.extend(stream.text_stream)
            with httpx.stream(
                "POST",
                f"{url}/v1/messages",
                headers=AUTH,
                json={"model": "claude", "max_tokens": 9, "messages": MESSAGES, "stream": True},
            ) as response:
                body = response.read()
    assert "closed the connection" in str(info.value)
    assert texts == ["Hello", " there"]
    frames = body.decode().split("\n\n")
    assert frames[0].startswith("event: message_start")
    assert frames[-2].startswith("event: error\ndata: ")
    assert json.loads(frames[-2].split("data: ", 1)[1])["error"]["type"] == "api_error"
    assert "message_stop" not in body.decode()


def test_client_disconnect_mid_stream_cancels_the_upstream_and_frees_the_slot() -> None:
    chunks = openai_chunks(["w"] * 50)
    with upstreams(None) as [(up, up_url)]:
        up.reply = slow_stream(chunks, 0.1, stop=up.cancelled)
        config = routing_config(
            [openai_provider("oa", up_url, max_in_flight=1)],
            [{"name": "m", "provider": "oa", "model": "gpt-up"}],
            routing={"max_wait": 0},
        )
        with gateway(config) as url:
            with chat_stream(url, "m", []) as response:
                first = next(response.iter_raw())
                assert first.startswith(b"data: ")
            # Leaving the block closed the connection after one event.
            assert up.cancelled.wait(2)
            up.reply = chat_reply("next one")
            deadline = time.monotonic() + 2
            while True:  # the slot is freed as soon as the gateway has seen the disconnect
                again = post(url, {"model": "m", "messages": MESSAGES})
                if again.status_code != 429 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert again.status_code == 200


# -- concurrency limits --------------------------------------------------------------------------


def test_100_concurrent_streams_against_a_limit_of_10() -> None:
    chunks = openai_chunks(["one", " two", " three"])
    state = {"now": 0, "peak": 0}

    async def counted(request: Recorded, send: Send) -> None:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        try:
            await sse_reply(chunks, delay=0.02)(request, send)
        finally:
            state["now"] -= 1

    with upstreams(counted) as [(up, up_url)]:
        config = routing_config(
            [openai_provider("oa", up_url, max_in_flight=10)],
            [{"name": "m", "provider": "oa", "model": "gpt-up"}],
            routing={"max_wait": 20},
        )
        with gateway(config) as url:

            async def one(client: httpx.AsyncClient) -> tuple[int, bytes]:
                body = {"model": "m", "messages": [], "stream": True}
                async with client.stream("POST", f"{url}/v1/chat/completions", headers=AUTH, json=body) as response:
                    return response.status_code, await response.aread()

            async def all_of_them() -> list[tuple[int, bytes]]:
                limits = httpx.Limits(max_connections=200)
                async with httpx.AsyncClient(limits=limits, timeout=30) as client:
                    return await asyncio.gather(*(one(client) for _ in range(100)))

            began = time.monotonic()
            results = asyncio.run(all_of_them())
            elapsed = time.monotonic() - began
    assert [status for status, _ in results] == [200] * 100
    assert all(body == b"".join(chunks) for _, body in results)
    assert state["peak"] == 10  # never more than the limit upstream, and the limit was used
    assert len(up.requests) == 100
    assert elapsed < 20


def test_over_the_limit_without_waiting_is_429_with_retry_after_in_the_client_format() -> None:
    chunks = openai_chunks(["slow"] * 20)
    with upstreams(sse_reply(chunks, delay=0.05)) as [(_, up_url)]:
        config = routing_config(
            [openai_provider("oa", up_url)],
            [{"name": "m", "provider": "oa", "model": "gpt-up"}],
            routing={"max_wait": 0},
            tokens=[{"name": "alice", "key": ROUTER_TOKEN, "max_in_flight": 1}],
        )
        with (
            gateway(config) as url,
            chat_stream(url, "m", []) as busy,
        ):
            events = busy.iter_raw()  # (kept: a dropped iterator closes the response)
            next(events)
            with pytest.raises(anthropic.RateLimitError) as info:
                anthropic_sdk(url).messages.create(model="m", max_tokens=5, messages=MESSAGES)
            second = post(url, {"model": "m", "messages": MESSAGES})
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.body == {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Too many requests in flight for token 'alice'; retry shortly.",
        },
    }
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "concurrency_limit"


# -- balancing, sessions, LiteLLM -----------------------------------------------------------------


def test_weighted_deployments_and_session_affinity() -> None:
    with upstreams(chat_reply("a"), chat_reply("b")) as [(_, a_url), (_, b_url)]:
        config = routing_config(
            [openai_provider("a", a_url), openai_provider("b", b_url)],
            [
                {"name": "m", "provider": "a", "model": "gpt-up", "weight": 3},
                {"name": "m", "provider": "b", "model": "gpt-up", "weight": 1},
            ],
        )
        with gateway(config) as url:
            picks = [post(url, {"model": "m", "messages": MESSAGES}).headers["x-llmroute-deployment"] for _ in range(8)]
            assert picks == ["a/gpt-up", "a/gpt-up", "b/gpt-up", "a/gpt-up"] * 2  # smooth weighted round robin
            # A LiteLLM session sticks to the deployment it first got, while the others rotate.
            litellm = {"user-agent": "litellm/1.50.0", "x-litellm-session-id": "conversation-7"}
            sticky = {post(url, {"model": "m", "messages": MESSAGES}, headers=litellm).headers["x-llmroute-deployment"]}
            for _ in range(5):
                sticky.add(
                    post(url, {"model": "m", "messages": MESSAGES}, headers=litellm).headers["x-llmroute-deployment"]
                )
                post(url, {"model": "m", "messages": MESSAGES})  # moves the rotation on
            assert len(sticky) == 1
            ours = {"x-llmroute-session-id": "s-2"}
            ours_picks = {
                post(url, {"model": "m", "messages": MESSAGES}, headers=ours).headers["x-llmroute-deployment"]
                for _ in range(4)
            }
            assert len(ours_picks) == 1


def test_a_client_that_leaves_during_a_retry_wait_is_not_retried_for(caplog: pytest.LogCaptureFixture) -> None:
    # Event-driven, not timed: the client leaves once the upstream has answered 429 (the gateway is then
    # in its one-second Retry-After wait), and the test ends when the gateway logs the request as ended.
    limited = json_reply({"error": {"message": "wait", "type": "rate_limit"}}, 429, {"retry-after": "1"})
    answered = threading.Event()

    async def reply(request: Recorded, send: Send) -> None:
        await limited(request, send)
        answered.set()

    caplog.set_level(logging.INFO, logger="asgi_llmroute.access")
    with upstreams(reply) as [(up, up_url)]:
        config = routing_config(
            [openai_provider("oa", up_url)],
            [{"name": "m", "provider": "oa", "model": "gpt-up"}],
            logging={"access": True},
        )
        with gateway(config) as url:
            body = json.dumps({"model": "m", "messages": MESSAGES}).encode()
            head = (
                f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: {AUTH['authorization']}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            with socket.create_connection(_address(url)) as client:
                client.sendall(head.encode() + body)
                assert answered.wait(30), "the upstream got no request"
            ended = _wait_for_access_line(caplog)
    assert ended.fields["status"] == 499  # type: ignore[attr-defined]
    assert len(up.requests) == 1


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _wait_for_access_line(caplog: pytest.LogCaptureFixture, timeout: float = 30) -> logging.LogRecord:
    deadline = time.monotonic() + timeout
    while True:
        lines = [r for r in caplog.records if r.name == "asgi_llmroute.access"]
        if lines:
            return lines[0]
        assert time.monotonic() < deadline, "the gateway never logged the request as ended"
        time.sleep(0.02)
