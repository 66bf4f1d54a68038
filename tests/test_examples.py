"""Every example runs: each is loaded as a script would be and served by a real server."""

from __future__ import annotations

import runpy
from pathlib import Path

import anthropic
import httpx
import openai

from tests.support.servers import serve

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN = "sk-example"


def load(name: str) -> dict[str, object]:
    return runpy.run_path(str(EXAMPLES / name), run_name="example")


def test_fastapi_mount() -> None:
    example = load("fastapi_mount.py")
    app, gateway = example["app"], example["gateway"]
    with serve(app) as url:  # type: ignore[arg-type]
        assert httpx.get(url).json() == {"gateway": "/llm/v1/chat/completions"}
        with openai.OpenAI(base_url=f"{url}/llm/v1", api_key=TOKEN) as client:
            reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "ping"}])
        assert reply.choices[0].message.content == "Hello from the llmroute demo provider! You said: ping"
        assert httpx.get(f"{url}/llm/v1/models").status_code == 401
        assert not gateway.forwarder.client.is_closed  # type: ignore[attr-defined]
    assert gateway.forwarder.client.is_closed  # type: ignore[attr-defined]  # the outer app's lifespan closed it


def test_a_gateway_mounted_in_starlette_closes_with_async_with() -> None:
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.routing import Mount

    gateway = load("fastapi_mount.py")["gateway"]
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with gateway:  # type: ignore[attr-defined]
            events.append("up")
            yield
        events.append("down")

    app = Starlette(routes=[Mount("/llm", app=gateway)], lifespan=lifespan)  # type: ignore[arg-type]
    with serve(app) as url, openai.OpenAI(base_url=f"{url}/llm/v1", api_key=TOKEN) as client:
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "ping"}])
    assert events == ["up", "down"]
    assert gateway.forwarder.client.is_closed  # type: ignore[attr-defined]


def test_custom_pipeline() -> None:
    app = load("custom_pipeline.py")["app"]
    with serve(app) as url:  # type: ignore[arg-type]
        response = httpx.post(
            f"{url}/v1/chat/completions",
            headers={"authorization": f"Bearer {TOKEN}"},
            json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 200 and response.headers["x-provider"] == "demo-openai"
        with anthropic.Anthropic(base_url=url, api_key=TOKEN) as client:
            message = client.messages.create(
                model="claude", max_tokens=20, messages=[{"role": "user", "content": "yo"}]
            )
        assert message.content[0].text.endswith("You said: yo")  # type: ignore[union-attr]


def test_wrap_existing_app() -> None:
    app = load("wrap_existing_app.py")["app"]
    with serve(app) as url:  # type: ignore[arg-type]
        assert httpx.get(f"{url}/health").status_code == 200
        assert httpx.get(f"{url}/whoami").status_code == 401
        seen = httpx.get(f"{url}/whoami", headers={"x-api-key": TOKEN, "cookie": "a=b"}).json()
        assert seen["principal"] == "example"
        assert "x-api-key" not in seen["headers_seen"] and "cookie" not in seen["headers_seen"]
