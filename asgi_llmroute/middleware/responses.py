"""The OpenAI Responses API (``POST /v1/responses``) for providers that only speak Chat Completions:
thin ASGI glue over :class:`asgi_llmroute.formats.ResponsesTranslator`."""

from __future__ import annotations

import logging

from starlette.types import Receive, Scope, Send

from ..context import ClientAPI, ensure_context, receive_json
from ..errors import GatewayError, send_error
from ..formats import (
    ResponsesTranslator,
    TranslationError,
)
from ..formats.responses_request import WebSearch
from ..formats.tools import ANTHROPIC_NAME_MAX, OPENAI_NAME_MAX
from ..formats.web_search import openai_search_model
from ._rewrite import ResponseRewriter, ask_for_identity
from .translate import TranslatingMiddleware, fit, warning_header

__all__ = ["ResponsesMiddleware"]

logger = logging.getLogger("asgi_llmroute.responses")

_CHAT_PATH = "/v1/chat/completions"


class ResponsesMiddleware(TranslatingMiddleware):
    """Serve ``POST /v1/responses`` on top of Chat Completions for providers without the Responses API.

    For a Responses request (``ctx.client_api`` is ``openai.responses``) whose provider has
    ``responses_api`` set, nothing happens: the forwarder relays the request to the provider's own
    ``/v1/responses``, and stateful features (``previous_response_id``) work there. For any other
    provider the request is translated to Chat Completions and handed on as a chat request
    (``ctx.client_api = openai.chat``, ``ctx.upstream_path = /v1/chat/completions``), so that a
    :class:`TranslationMiddleware` further in takes it on to an Anthropic provider; the chat answer
    (JSON, error or SSE stream) is translated back into a Response object or Responses events.

    Put it after :class:`ProviderResolverMiddleware` and before :class:`TranslationMiddleware`.

    Scope: reads ``ctx.client_api``, ``ctx.deployment`` and the body; writes the body,
    ``ctx.client_api``, ``ctx.upstream_path``, ``ctx.thinking_blocks`` (signed thinking is carried in
    the reasoning items' ``encrypted_content``), ``ctx.usage`` and ``ctx.warning`` (lossy decisions, sent
    as ``x-llmroute-warning``); asks the upstream for an identity-encoded body.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ctx = ensure_context(scope)
        deployment = ctx.deployment
        if ctx.client_api is not ClientAPI.OPENAI_RESPONSES or deployment is None or deployment.provider.responses_api:
            await self._app(scope, receive, send)
            return
        translator = ResponsesTranslator(self._options)
        try:
            ctx, body, receive = await receive_json(scope, receive)
            try:
                api = deployment.provider.api
                openai_chat = api == "openai"
                # Signed thinking carried by reasoning items goes back as chat thinking_blocks, which the
                # translation to Anthropic (or Bedrock) takes; OpenAI chat upstreams refuse the field.
                chat = translator.request(
                    body,
                    thinking=not openai_chat,
                    web_search=_web_search(api, deployment.model),
                    name_max=ANTHROPIC_NAME_MAX if api in ("anthropic", "vertex-anthropic") else OPENAI_NAME_MAX,
                )
                if openai_chat:  # an Anthropic one: the chat translation fits it
                    fit(chat, "openai", self._capabilities(deployment), ctx.model)
                ctx.set_json(chat)
            except TranslationError as exc:
                raise GatewayError(400, exc.message, param=exc.param) from None
        except GatewayError as exc:
            await send_error(send, "openai", exc)
            return
        for warning in translator.info.warnings:
            logger.info("responses translation for model %r: %s", ctx.model, warning)
            ctx.add_warning(warning)
        # Inner layers see a chat request; a translation layer further in may set its own path.
        ctx.client_api = ClientAPI.OPENAI_CHAT
        ctx.thinking_blocks = True  # translated streams carry signed thinking, for the reasoning items
        ctx.upstream_path = _CHAT_PATH
        # The client's query string belongs to its API (`?beta=true` from Claude Code): not the upstream's.
        scope["query_string"] = b""
        scope["headers"] = ask_for_identity(scope["headers"])
        if ctx.warning is not None:  # the translation layer further in may add its own: read at the start
            send = warning_header(send, ctx)
        await self._app(scope, receive, ResponseRewriter(send, translator, ctx, "openai").send)


def _web_search(api: str, model: str) -> WebSearch:
    """How a provider's chat API takes a hosted web search (docs/responses.md, "Hosted tools")."""
    if api in ("anthropic", "vertex-anthropic"):
        return "extended"  # the Chat -> Anthropic translation makes it Anthropic's server-side web search
    if api == "openai" and openai_search_model(model):
        return "standard"
    return None  # Gemini (googleSearch cannot be combined with function tools), Bedrock, other chat servers
