"""Credential stripping: no client credential or hop-by-hop header travels past this layer."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["CREDENTIAL_HEADERS", "HOP_BY_HOP_HEADERS", "CredentialStripMiddleware", "strip_headers"]

#: Headers that carry a client's credentials (or account identity) for some provider.
CREDENTIAL_HEADERS = frozenset(
    {
        b"authorization",
        b"proxy-authorization",
        b"x-api-key",
        b"api-key",
        b"x-goog-api-key",
        b"x-litellm-api-key",
        b"ocp-apim-subscription-key",
        b"cookie",
        b"openai-organization",
        b"openai-project",
    }
)

#: RFC 9110 section 7.6.1 connection-specific headers, plus ``host`` and ``content-length``,
#: which the forwarder sets for the upstream request itself.
HOP_BY_HOP_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def strip_headers(headers: Iterable[tuple[bytes, bytes]], drop: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    """``headers`` without the names in ``drop`` and without those listed in ``Connection``."""
    headers = list(headers)
    named = frozenset(
        token.strip().lower()
        for name, value in headers
        if name == b"connection"
        for token in value.split(b",")
        if token.strip()
    )
    if named:
        drop = drop | named
    return [(name, value) for name, value in headers if name not in drop]


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
