"""Header sets the gateway treats specially: client credentials and connection-specific headers."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CREDENTIAL_HEADERS", "HOP_BY_HOP_HEADERS", "strip_headers"]

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
