"""Format translation between OpenAI Chat Completions and Anthropic Messages: thin ASGI glue over
the pure :mod:`asgi_llmroute.formats` core."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import ClientAPI, RequestContext, ensure_context, receive_json, route_path
from ..errors import GatewayError, send_error
from ..formats import TranslationError, TranslationOptions
from ..formats.capabilities import ModelCapabilities, default_capabilities, fit_request
from ..providers.kinds import CHAT, COUNT_TOKENS, ProviderKind, get_wire, operation_of
from ..providers.types import Deployment, Provider
from ..send import send_json
from ._rewrite import ResponseRewriter, ask_for_identity, google_retry_after_header

__all__ = ["TranslatingMiddleware", "TranslationMiddleware", "fit", "upstream_defaults", "warning_header"]

logger = logging.getLogger("asgi_llmroute.translate")


class TranslatingMiddleware:
    """What the translating middlewares share: the next app, the translation defaults (``options``)
    and what a deployment's model accepts (``capabilities``, default :func:`upstream_defaults`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        options: TranslationOptions | None = None,
        capabilities: Callable[[Deployment], ModelCapabilities] | None = None,
    ) -> None:
        self._app = app
        self._options = options if options is not None else TranslationOptions()
        self._capabilities = capabilities if capabilities is not None else upstream_defaults


class TranslationMiddleware(TranslatingMiddleware):
    """Translate requests and responses when the client's API differs from the provider's.

    The translator comes from the client's format and the wire format of the provider's kind. A
    request for an operation the kind does not offer (embeddings on a chat-only kind) is refused
    with 400 naming the model and kind; top-level fields the kind is known to refuse are refused
    with 400 naming the field, or dropped with an ``x-llmroute-warning`` response header when the
    provider has ``drop_params`` (always dropped when the translator produced them).

    Same-format requests pass straight through (the forwarder relays their bytes). Otherwise the
    request body is rewritten for the provider's API (and its endpoint set in ``ctx.upstream_path``),
    and the response, JSON, error or SSE stream, is rewritten for the client as it arrives.

    ``options`` are the translation defaults (see docs/translation.md); each Anthropic provider's
    configured ``anthropic-version`` header overrides ``options.anthropic_version`` for it.
    ``capabilities`` says what a deployment's model accepts (default: :func:`default_capabilities` of its
    upstream id); a translated request is made to fit it (docs/translation.md, "Model capabilities").

    Scope: reads ``ctx.client_api``, ``ctx.deployment`` and the body; writes the body,
    ``ctx.upstream_path``, ``ctx.usage`` and ``ctx.warning`` (dropped fields and the translation's lossy
    decisions, sent as ``x-llmroute-warning``); asks the upstream for an identity-encoded body.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ctx = ensure_context(scope)
        deployment = ctx.deployment
        client = ctx.client_api
        if deployment is None:
            await self._app(scope, receive, send)
            return
        provider = deployment.provider
        kind = provider.kind
        if provider.api == client.wire:
            if client is ClientAPI.GEMINI_GENERATE:  # Google's retry delay is in the error body: a header too
                send = google_retry_after_header(send)
            if kind.plain:  # the usual case: nothing to check, nothing to translate
                await self._app(scope, receive, send)
                return
            await self._same_format(scope, receive, send, provider)
            return
        try:
            if client not in (ClientAPI.OPENAI_CHAT, ClientAPI.ANTHROPIC_MESSAGES):
                raise _cannot_serve(ctx.model, provider, operation_of(route_path(scope)))
            ctx, body, receive = await receive_json(scope, receive)
            counting = client is ClientAPI.ANTHROPIC_MESSAGES and _is_count_tokens(scope)
            if counting and not kind.serves(COUNT_TOKENS):
                await send_json(send, 200, {"input_tokens": _estimate_tokens(ctx.body)})
                return
            if not counting and not kind.serves(CHAT):
                raise _cannot_serve(ctx.model, provider, CHAT)
            wire = get_wire(provider.api)
            translator = wire.translator(client.wire, _options_for(self._options, provider, ctx.thinking_blocks))
            # Translators that need the deployment or the client's headers (Bedrock: model in the
            # URL, anthropic-beta into the body) take them before the request.
            bind = getattr(translator, "bind", None)
            if bind is not None:
                bind(deployment, scope["headers"])
            try:
                if counting:  # a kind that counts natively in another wire format (Claude on Vertex)
                    upstream_body = translator.count_tokens(body)  # type: ignore[attr-defined]
                else:
                    upstream_body = translator.request(body)
                    fit(upstream_body, provider.api, self._capabilities(deployment), ctx.model)
            except TranslationError as exc:
                raise GatewayError(400, exc.message, param=exc.param) from None
        except GatewayError as exc:
            await send_error(send, client.wire, exc)
            return
        for note in _warnings(translator):  # lossy decisions of the translation: the client is told
            logger.info("translation for model %r: %s", ctx.model, note)
            ctx.add_warning(note)
        # Fields the client did not send as such (the translator made them): dropped, with a warning.
        refused, ignored = kind.params_for(deployment.model)
        dropped = [name for name in sorted(refused | ignored) if name in upstream_body]
        for name in dropped:
            del upstream_body[name]
        _rename_max_tokens(upstream_body, kind)
        ctx.set_json(upstream_body)
        upstream_path = getattr(translator, "upstream_path", None)  # a translator that knows its path
        if counting:  # Anthropic's path (Claude on Vertex), or the translator's own (Gemini's :countTokens)
            ctx.upstream_path = getattr(translator, "count_tokens_path", COUNT_TOKENS_PATH)
        elif upstream_path is not None:
            ctx.upstream_path = upstream_path()
        else:
            ctx.upstream_path = wire.chat_path(body.get("stream") is True)
        # The client's query string belongs to its API (`?beta=true` from Claude Code): not the upstream's.
        scope["query_string"] = b""
        # Drop the other API's protocol headers (anthropic-version to an OpenAI upstream, ...).
        scope["headers"] = ask_for_identity(scope["headers"], wire.foreign_headers)
        if dropped:
            _dropped(ctx, provider, dropped)
        if ctx.warning is not None:
            send = warning_header(send, ctx)
        await self._app(scope, receive, ResponseRewriter(send, translator, ctx, client.wire).send)

    async def _same_format(self, scope: Scope, receive: Receive, send: Send, provider: Provider) -> None:
        """A request in the provider's own format to a kind with limits: check, maybe drop, relay."""
        ctx = ensure_context(scope)
        kind = provider.kind
        client = ctx.client_api
        dropped: list[str] = []
        try:
            # A request already translated for this provider (Responses -> chat) is that operation now.
            operation = operation_of(ctx.upstream_path or route_path(scope))
            if operation is not None and not kind.serves(operation):
                raise _cannot_serve(ctx.model, provider, operation)
            refused, ignored = kind.params_for(ctx.deployment.model if ctx.deployment is not None else None)
            if (refused or ignored or kind.max_tokens_name) and client is not ClientAPI.PASSTHROUGH:
                ctx, body, receive = await receive_json(scope, receive)
                if _rename_max_tokens(body, kind):
                    ctx.set_json(body)
                found = [name for name in sorted(refused) if name in body]
                if found and not provider.drop_params:
                    raise GatewayError(
                        400,
                        f"Provider {provider.name!r} (kind {kind.name!r}) does not accept {found[0]!r}: "
                        "leave it out, or set drop_params = true on the provider to have the gateway drop it.",
                        param=found[0],
                        code="unsupported_parameter",
                    )
                found += [name for name in sorted(ignored) if name in body]  # no effect upstream: dropped, said
                if found:
                    ctx.set_json({k: v for k, v in body.items() if k not in found})
                    dropped = found
        except GatewayError as exc:
            await send_error(send, client.wire, exc)
            return
        if dropped:
            _dropped(ctx, provider, dropped)
            send = warning_header(send, ctx)
        await self._app(scope, receive, send)


def _rename_max_tokens(body: dict[str, Any], kind: ProviderKind) -> bool:
    """``max_completion_tokens`` as the field the kind reads instead (``max_tokens``); True if renamed."""
    name = kind.max_tokens_name
    if name is None or "max_completion_tokens" not in body or name in body:
        return False
    body[name] = body.pop("max_completion_tokens")
    return True


def _cannot_serve(model: str | None, provider: Provider, operation: str | None) -> GatewayError:
    what = f"the {operation} operation" if operation else "this endpoint"
    return GatewayError(
        400,
        f"Model {model!r} is served by provider {provider.name!r} (kind {provider.kind.name!r}), "
        f"which does not offer {what}.",
        param="model",
        code="unsupported_operation",
    )


def _warnings(translator: Any) -> list[str]:
    """The lossy decisions a translator took on its request (``warnings``, else ``context.warnings``)."""
    notes = getattr(translator, "warnings", None)
    if notes is None:
        notes = getattr(getattr(translator, "context", None), "warnings", None)
    return [n for n in notes if isinstance(n, str)] if isinstance(notes, list) else []


def _dropped(ctx: RequestContext, provider: Provider, dropped: list[str]) -> None:
    """Say which fields were dropped, in ``ctx.warning``."""
    ctx.add_warning(f"dropped {', '.join(dropped)}: not accepted by kind {provider.kind.name!r}")
    logger.info("provider %s: dropped %s", provider.name, ", ".join(dropped))


def warning_header(send: Send, ctx: RequestContext) -> Send:
    """``send`` with ``ctx.warning`` (as it is when the response starts) as the ``x-llmroute-warning``
    header, replacing an inner layer's; the retry layer stamps the same value on the final attempt."""

    async def warn(message: Message) -> None:
        if message["type"] == "http.response.start" and ctx.warning is not None:
            headers = [(k, v) for k, v in message.get("headers", ()) if k != b"x-llmroute-warning"]
            message = {**message, "headers": [*headers, (b"x-llmroute-warning", ctx.warning.encode())]}
        await send(message)

    return warn


@functools.lru_cache(maxsize=256)
def _options_for(options: TranslationOptions, provider: Provider, thinking_blocks: bool = False) -> TranslationOptions:
    if thinking_blocks and not (options.thinking_blocks and options.web_search_calls):
        # The client (the Responses translation) echoes signed thinking back and makes items of web searches.
        options = dataclasses.replace(options, thinking_blocks=True, web_search_calls=True)
    for key, value in provider.headers:
        if key == "anthropic-version":
            return dataclasses.replace(options, anthropic_version=value)
    return options


def upstream_defaults(deployment: Deployment) -> ModelCapabilities:
    """The capabilities of a deployment's model: those of its well-known family."""
    return default_capabilities(deployment.model)


def fit(body: dict[str, Any], api: str, caps: ModelCapabilities, model: str | None) -> None:
    """Fit a translated upstream ``body`` to ``caps``, logging what changed; TranslationError if it cannot."""
    for change in fit_request(body, "anthropic" if api == "anthropic" else "openai", caps):
        logger.info("translation for model %r: %s", model, change)


COUNT_TOKENS_PATH = "/v1/messages/count_tokens"


def _is_count_tokens(scope: Scope) -> bool:
    path: str = scope["path"]
    return path.endswith(COUNT_TOKENS_PATH)


def _estimate_tokens(body: bytes) -> int:
    # OpenAI-compatible APIs have no token-counting endpoint; about 4 bytes per token is the
    # usual estimate, and callers (Claude Code) only use it to decide when to compact.
    return max(1, math.ceil(len(body) / 4))
