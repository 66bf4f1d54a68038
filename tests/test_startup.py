"""What a gateway does at start-up: the upstream client's aiohttp and TLS context only when a provider needs them.

Each case runs in a fresh interpreter (the test process has aiohttp loaded already).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EMBEDDED = """
import asyncio, sys, threading
from pathlib import Path
import httpx
from asgi_llmroute.embedded import embedded_config
from asgi_llmroute.gateway import build_gateway

config = embedded_config(Path(sys.argv[1]))
gateway = build_gateway(config)

async def main():
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        chat = {"model": "demo", "messages": [{"role": "user", "content": "Hi"}]}
        token = {"authorization": f"Bearer {config.tokens[0].key}"}
        answer = await client.post("/v1/chat/completions", json=chat, headers=token)
        print(answer.status_code, "aiohttp" in sys.modules)
        admin = {"authorization": f"Bearer {config.admin.tokens[0]}"}
        record = {"name": "up", "api": "openai", "base_url": "http://127.0.0.1:9/v1"}
        added = await client.post("/api/providers", json=record, headers=admin)
        print(added.status_code)
        for thread in threading.enumerate():
            if thread.name == "llmroute-upstream-prepare":
                thread.join(60)
        print("aiohttp" in sys.modules, gateway.forwarder is not None)
    await gateway.aclose()

asyncio.run(main())
"""

NETWORK = """
import asyncio, sys
import httpx
from asgi_llmroute import build_gateway, parse_config
from asgi_llmroute.transport import _verifying_context

token = "sk-startup-test-0123456789"
config = parse_config({"tokens": [{"name": "t", "key": token}],
                       "providers": [{"name": "up", "api": "openai", "base_url": sys.argv[1]}],
                       "models": [{"name": "m", "provider": "up", "model": "m"}]}, source="<test>")
gateway = build_gateway(config)
print("aiohttp" in sys.modules, _verifying_context.cache_info().currsize)

async def main():
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        chat = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
        answer = await client.post("/v1/chat/completions", json=chat, headers={"authorization": f"Bearer {token}"})
        print(answer.status_code, _verifying_context.cache_info().currsize)
    await gateway.aclose()

asyncio.run(main())
"""


def _run(code: str, *args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, timeout=120)
    return out.stdout.split("\n")[:-1]


def test_the_embedded_default_answers_without_loading_aiohttp_until_a_provider_is_added(tmp_path: Path) -> None:
    demo, added, after = _run(EMBEDDED, str(tmp_path / ".llmroute"))
    assert demo == "200 False"  # the demo provider is in-process: no upstream client loaded
    assert added == "201"
    assert after == "True True"  # the store write made it ready, in a thread, before any request to it


def test_a_gateway_with_a_network_provider_prepares_its_upstream_client_when_built() -> None:
    # Not in the first request (its deadlines would pay for it); the CA roots only for an https:// upstream.
    built, _ = _run(NETWORK, "https://127.0.0.1:9/v1")
    assert built == "True 1"
    built, answered = _run(NETWORK, "http://127.0.0.1:9/v1")  # port 9: refused, a 502
    assert built == "True 0"
    assert answered == "502 0"
