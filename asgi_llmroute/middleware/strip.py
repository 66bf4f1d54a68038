"""Credential stripping: no client credential or hop-by-hop header travels past this layer."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from ..headers import CREDENTIAL_HEADERS, HOP_BY_HOP_HEADERS, strip_headers

__all__ = ["CredentialStripMiddleware"]


class CredentialStripMiddleware:
    """Remove client credentials and hop-by-hop headers from ``scope["headers"]`` before calling on.

    Put it after authentication (which needs the token) and in front of anything that talks to an
    upstream. ``extra_headers`` adds names (case-insensitive) to :data:`CREDENTIAL_HEADERS`. A
    ``key`` query parameter (Google's API-key-in-the-URL convention) is removed too.

    Scope: rewrites ``scope["headers"]`` and ``scope["query_string"]``; uses no context fields.
    """

    def __init__(self, app: ASGIApp, *, extra_headers: Iterable[str] = ()) -> None:
        self._app = app
        self._drop = CREDENTIAL_HEADERS | HOP_BY_HOP_HEADERS | {h.lower().encode("latin-1") for h in extra_headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["headers"] = strip_headers(scope["headers"], self._drop)
            query: bytes = scope.get("query_string", b"")
            if b"key=" in query:
                scope["query_string"] = _without_key(query)
        await self._app(scope, receive, send)


def _without_key(query: bytes) -> bytes:
    return b"&".join(p for p in query.split(b"&") if p.split(b"=", 1)[0] != b"key")
