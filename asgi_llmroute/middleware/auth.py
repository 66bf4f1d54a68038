"""Router-token authentication: ``Authorization: Bearer`` or ``x-api-key``, checked in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Collection, Iterable
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..context import Principal, ensure_context, receive_body, route_path
from ..errors import GatewayError, render_error, send_error
from ..tokens import TokenEntry, presented_tokens, token_digest

__all__ = ["TokenAuthMiddleware", "TokenLookup", "TokenTable"]


class TokenLookup(Protocol):
    """What authentication asks: the principal of a presented token, or None."""

    def lookup(self, token: str) -> Principal | None: ...


class TokenTable:
    """Router tokens, looked up by digest.

    The presented token is hashed and the digest compared with :func:`hmac.compare_digest`, so the
    time taken reveals nothing about stored tokens (a dict probe on SHA-256 digests leaks only
    digest bits, which do not help to guess a token).
    """

    __slots__ = ("_digests", "_principals")

    def __init__(self, entries: Iterable[TokenEntry]) -> None:
        self._principals: dict[bytes, Principal] = {}
        for entry in entries:
            if len(entry.digest) != 32:
                raise ValueError(f"token {entry.name!r}: a digest must be 32 bytes of SHA-256")
            if entry.digest in self._principals:
                other = self._principals[entry.digest].name
                raise ValueError(f"token {entry.name!r} has the same key as token {other!r}")
            self._principals[entry.digest] = Principal(name=entry.name, models=entry.models)
        self._digests = {digest: digest for digest in self._principals}

    def __len__(self) -> int:
        return len(self._principals)

    def lookup(self, token: str) -> Principal | None:
        """The principal of ``token``, or None."""
        digest = token_digest(token)
        stored = self._digests.get(digest)
        if stored is not None and hmac.compare_digest(stored, digest):
            return self._principals[digest]
        return None


class TokenAuthMiddleware:
    """Authenticate every HTTP request and WebSocket connection with a router token.

    Reads the token from ``Authorization: Bearer <token>``, ``x-api-key`` and ``x-goog-api-key``
    (Gemini-API clients); when several are
    present the request passes if either is a valid router token (clients send them in both
    arrangements). Missing or invalid tokens get 401; a token whose allow-list does not
    cover the request's ``model`` gets 403 (the body is then read once and replayed).

    A WebSocket without a valid token is refused before it is accepted: with a 401 HTTP response
    where the server supports the ``websocket.http.response`` extension, else with a close (code
    1008, policy violation), which servers answer with HTTP 403. Other scope types (``lifespan``)
    pass through.

    ``exempt_paths`` (matched below ``root_path``) skip authentication; there are none by default,
    so wrapping an app never opens any of its routes.

    Scope: writes ``ctx.principal``; reads the body only for tokens with a model allow-list.
    """

    def __init__(self, app: ASGIApp, *, tokens: TokenLookup, exempt_paths: Collection[str] = ()) -> None:
        self._app = app
        self._tokens = tokens
        self._exempt = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (kind != "http" and kind != "websocket") or route_path(scope) in self._exempt:
            await self._app(scope, receive, send)
            return
        ctx = ensure_context(scope)
        try:
            principal = self._authenticate(scope)
            ctx.principal = principal
            if kind == "http" and principal.restricted and scope["method"] == "POST":
                ctx, receive = await receive_body(scope, receive)
                model = ctx.requested_model()
                if isinstance(model, str):
                    principal.check(model)
        except GatewayError as exc:
            if kind == "websocket":
                await _deny_websocket(scope, receive, send, ctx.client_api.wire, exc)
            else:
                await send_error(send, ctx.client_api.wire, exc)
            return
        await self._app(scope, receive, send)

    def _authenticate(self, scope: Scope) -> Principal:
        presented = presented_tokens(scope["headers"])
        for token in presented:
            principal = self._tokens.lookup(token)
            if principal is not None:
                return principal
        if presented:
            raise GatewayError(401, "Invalid router token.", code="invalid_api_key", headers=_CHALLENGE)
        raise GatewayError(
            401,
            "Missing router token: send it as 'Authorization: Bearer <token>' or 'x-api-key: <token>'.",
            code="missing_api_key",
            headers=_CHALLENGE,
        )


_CHALLENGE = (("www-authenticate", "Bearer"),)


async def _deny_websocket(scope: Scope, receive: Receive, send: Send, wire: str, error: GatewayError) -> None:
    """Refuse a WebSocket before accepting it (after its ``websocket.connect`` message)."""
    message: Message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client already left
    if "websocket.http.response" in scope.get("extensions", {}):
        headers = [(b"content-type", b"application/json")]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers]
        await send({"type": "websocket.http.response.start", "status": error.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": render_error(wire, error)})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": error.code or ""})
