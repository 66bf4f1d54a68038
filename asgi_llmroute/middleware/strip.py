"""Credential stripping: no client credential or hop-by-hop header travels past this layer."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from ..headers import CREDENTIAL_HEADERS, HOP_BY_HOP_HEADERS, strip_headers

__all__ = ["CredentialStripMiddleware"]


class CredentialStripMiddleware:
    """Remove client credentials and hop-by-hop headers from ``scope["headers"]`` before calling on.

    Put it after authentication (which needs the token) and in front of anything that talks to an
    upstream. ``extra_headers`` adds names (case-insensitive) to :data:`CREDENTIAL_HEADERS`.

    Scope: rewrites ``scope["headers"]``; uses no context fields.
    """

    def __init__(self, app: ASGIApp, *, extra_headers: Iterable[str] = ()) -> None:
        self._app = app
        self._drop = CREDENTIAL_HEADERS | HOP_BY_HOP_HEADERS | {h.lower().encode("latin-1") for h in extra_headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope["headers"] = strip_headers(scope["headers"], self._drop)
        await self._app(scope, receive, send)
