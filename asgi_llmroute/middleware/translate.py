"""Format translation between OpenAI Chat Completions and Anthropic Messages (glue over ``formats``)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..context import ClientAPI, ensure_context
from ..errors import GatewayError, send_error

__all__ = ["TranslationMiddleware"]


class TranslationMiddleware:
    """Translate requests and responses when the client's API differs from the provider's.

    Same-format requests pass through untouched (the forwarder relays their bytes).

    Scope: reads ``ctx.client_api`` and ``ctx.deployment``; rewrites the body and sets
    ``ctx.upstream_path`` for translated requests.
    """

    def __init__(self, app: ASGIApp, *, default_max_tokens: int = 4096, reasoning_content: bool = True) -> None:
        self._app = app
        self._default_max_tokens = default_max_tokens
        self._reasoning_content = reasoning_content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ctx = ensure_context(scope)
        deployment = ctx.deployment
        if deployment is None or deployment.provider.api == ctx.client_api.wire:
            await self._app(scope, receive, send)
            return
        if ctx.client_api is ClientAPI.PASSTHROUGH:
            message = (
                f"Model {ctx.model!r} is served by an Anthropic provider; this endpoint needs an OpenAI-compatible one."
            )
        else:
            message = (
                f"Model {ctx.model!r} is served by a provider of another API format; translation is not available."
            )
        await send_error(send, ctx.client_api.wire, GatewayError(400, message, param="model"))
