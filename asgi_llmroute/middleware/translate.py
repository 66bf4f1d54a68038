"""Format translation between OpenAI Chat Completions and Anthropic Messages: thin ASGI glue over
the pure :mod:`asgi_llmroute.formats` core."""

from __future__ import annotations

import dataclasses
import functools
import math

from starlette.types import ASGIApp, Receive, Scope, Send

from ..context import ClientAPI, ensure_context, receive_json
from ..errors import GatewayError, send_error
from ..formats import (
    TranslationError,
    TranslationOptions,
    new_translator,
)
from ..providers.types import Provider
from ..send import send_json
from ._rewrite import ResponseRewriter, ask_for_identity

__all__ = ["TranslationMiddleware"]

_UPSTREAM_PATH = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


class TranslationMiddleware:
    """Translate requests and responses when the client's API differs from the provider's.

    Same-format requests pass straight through (the forwarder relays their bytes). Otherwise the
    request body is rewritten for the provider's API (and its endpoint set in ``ctx.upstream_path``),
    and the response, JSON, error or SSE stream, is rewritten for the client as it arrives.

    ``options`` are the translation defaults (see docs/translation.md); each Anthropic provider's
    configured ``anthropic-version`` header overrides ``options.anthropic_version`` for it.

    Scope: reads ``ctx.client_api``, ``ctx.deployment`` and the body; writes the body,
    ``ctx.upstream_path`` and ``ctx.usage``; asks the upstream for an identity-encoded body.
    """

    def __init__(self, app: ASGIApp, *, options: TranslationOptions | None = None) -> None:
        self._app = app
        self._options = options if options is not None else TranslationOptions()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ctx = ensure_context(scope)
        deployment = ctx.deployment
        client = ctx.client_api
        if deployment is None or deployment.provider.api == client.wire:
            await self._app(scope, receive, send)
            return
        provider = deployment.provider
        try:
            if client not in (ClientAPI.OPENAI_CHAT, ClientAPI.ANTHROPIC_MESSAGES):
                raise GatewayError(
                    400,
                    f"Model {ctx.model!r} is served by provider {provider.name!r} ({provider.api} API), "
                    "which cannot serve this endpoint.",
                    param="model",
                )
            ctx, body, receive = await receive_json(scope, receive)
            if client is ClientAPI.ANTHROPIC_MESSAGES and _is_count_tokens(scope):
                await send_json(send, 200, {"input_tokens": _estimate_tokens(ctx.body)})
                return
            translator = new_translator(client.wire, provider.api, _options_for(self._options, provider))  # type: ignore[arg-type]
            try:
                ctx.set_json(translator.request(body))
            except TranslationError as exc:
                raise GatewayError(400, exc.message, param=exc.param) from None
        except GatewayError as exc:
            await send_error(send, client.wire, exc)
            return
        ctx.upstream_path = _UPSTREAM_PATH[provider.api]
        # The client's query string belongs to its API (`?beta=true` from Claude Code): not the upstream's.
        scope["query_string"] = b""
        # Drop the other API's protocol headers (anthropic-version to an OpenAI upstream, ...).
        foreign = b"anthropic-" if provider.api == "openai" else b"openai-"
        scope["headers"] = ask_for_identity(scope["headers"], foreign)
        await self._app(scope, receive, ResponseRewriter(send, translator, ctx, client.wire).send)


@functools.lru_cache(maxsize=256)
def _options_for(options: TranslationOptions, provider: Provider) -> TranslationOptions:
    for key, value in provider.headers:
        if key == "anthropic-version":
            return dataclasses.replace(options, anthropic_version=value)
    return options


def _is_count_tokens(scope: Scope) -> bool:
    path: str = scope["path"]
    return path.endswith("/v1/messages/count_tokens")


def _estimate_tokens(body: bytes) -> int:
    # OpenAI-compatible APIs have no token-counting endpoint; about 4 bytes per token is the
    # usual estimate, and callers (Claude Code) only use it to decide when to compact.
    return max(1, math.ceil(len(body) / 4))
