"""Stack the middlewares by hand, with a middleware of your own in the middle.

Run:  python examples/custom_pipeline.py   (listens on 127.0.0.1:8001, token sk-example)
"""

from __future__ import annotations

import os

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asgi_llmroute import (
    DEMO_BASE_URL,
    CredentialStripMiddleware,
    DemoProvider,
    Deployment,
    Forwarder,
    Provider,
    ProviderResolverMiddleware,
    Route,
    RouteTable,
    TokenAuthMiddleware,
    TokenEntry,
    TokenTable,
    TranslationMiddleware,
    get_context,
)

TOKEN = os.environ.get("LLMROUTE_TOKEN", "sk-example")


class TagDeployment:
    """Our own middleware: reads the request context and tells the client which provider answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope)
        if scope["type"] != "http" or ctx is None or ctx.deployment is None:
            await self.app(scope, receive, send)
            return
        provider = ctx.deployment.provider.name.encode()

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"x-provider", provider)]}
            await send(message)

        await self.app(scope, receive, tagged_send)


openai_demo = Provider(name="demo-openai", api="openai", base_url=f"{DEMO_BASE_URL}/v1")
anthropic_demo = Provider(name="demo-anthropic", api="anthropic", base_url=DEMO_BASE_URL)
routes = RouteTable(
    [openai_demo, anthropic_demo],
    [
        Route("fast", (Deployment(openai_demo, "demo"),)),
        Route("claude", (Deployment(anthropic_demo, "demo-claude"),)),
    ],
)
# The forwarder's pooled client; the demo provider is mounted in-process, real providers need nothing.
client = httpx.AsyncClient(mounts={DEMO_BASE_URL: httpx.ASGITransport(app=DemoProvider())})

app: ASGIApp = Forwarder(client=client)
app = TranslationMiddleware(app)
app = CredentialStripMiddleware(app)
app = TagDeployment(app)
app = ProviderResolverMiddleware(app, routes=routes)
app = TokenAuthMiddleware(app, tokens=TokenTable([TokenEntry.from_key("example", TOKEN)]))


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8001)
