"""Put router-token auth and credential stripping in front of an existing ASGI app.

The wrapped app sees who called (``scope["llmroute"].principal``) and never sees the caller's
credentials. Run:  python examples/wrap_existing_app.py   (127.0.0.1:8002, token sk-example)
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as Endpoint
from starlette.types import ASGIApp

from asgi_llmroute import CredentialStripMiddleware, TokenAuthMiddleware, TokenEntry, TokenTable, get_context

TOKEN = os.environ.get("LLMROUTE_TOKEN", "sk-example")


async def whoami(request: Request) -> JSONResponse:
    ctx = get_context(request.scope)
    principal = ctx.principal.name if ctx and ctx.principal else None
    return JSONResponse({"principal": principal, "headers_seen": sorted(request.headers.keys())})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


existing = Starlette(routes=[Endpoint("/whoami", whoami), Endpoint("/health", health)])

app: ASGIApp = CredentialStripMiddleware(existing)
app = TokenAuthMiddleware(app, tokens=TokenTable([TokenEntry.from_key("example", TOKEN)]), exempt_paths=["/health"])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8002)
