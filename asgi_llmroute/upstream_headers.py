"""The header plan: which client headers the forwarder drops and what it adds for a provider.

Worked out once per provider record and kept on it (``provider.memo``), so a removed or rotated
provider's key does not outlive the record: the provider's configured ``headers``, its credentials
in its kind's style, the ``anthropic-version`` default, and the kind's URL builder. Checked there: a
provider header or credential that is not a well-formed HTTP header (a CR, LF or NUL in the value, a
name that is not a token, a character outside Latin-1), from the config file, the store or the admin
API alike, makes the provider answer a clear 502 instead of reaching the wire.
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import UpstreamError
from .formats.types import DEFAULT_ANTHROPIC_VERSION
from .headers import CREDENTIAL_HEADERS, HOP_BY_HOP_HEADERS
from .providers.kinds import UrlBuilder
from .providers.types import Provider
from .transport import validate_header

__all__ = ["HeaderPlan", "header_plan"]

# Never sent upstream: the client's credentials (also stripped earlier in the standard stack; the
# forwarder drops them again so it is safe alone), connection-specific headers, the headers the
# forwarder sets itself, and ``Expect``: the gateway holds the whole body before it sends, so a client's
# 100-continue was answered on the client's connection; passed on, the upstream client would wait for an
# upstream 100 Continue before sending the body, until the timeout when the upstream sends none.
_REQUEST_DROP = CREDENTIAL_HEADERS | HOP_BY_HOP_HEADERS | {b"host", b"content-length", b"expect"}


class HeaderPlan(NamedTuple):
    drop: frozenset[bytes]  # client headers not to forward
    fixed: tuple[tuple[bytes, bytes], ...]  # provider headers and credentials
    fixed_with_version: tuple[tuple[bytes, bytes], ...]  # the same plus anthropic-version
    version: bytes | None  # the anthropic-version the provider sends when the client sent none
    url: UrlBuilder  # (path, upstream model) -> URL, from the provider's kind


def header_plan(provider: Provider) -> HeaderPlan:
    """What the forwarder adds for ``provider`` (kept on the record); raises a 502
    :class:`UpstreamError` naming the malformed header (never its value)."""
    plan: HeaderPlan | None = provider.memo.get("upstream_headers")
    if plan is None:
        plan = provider.memo["upstream_headers"] = _plan(provider)
    return plan


def _plan(provider: Provider) -> HeaderPlan:
    configured = [_checked(provider, k, v, "header") for k, v in provider.headers]
    version: bytes | None = None
    if provider.api == "anthropic":
        version = next((v for k, v in configured if k == b"anthropic-version"), DEFAULT_ANTHROPIC_VERSION.encode())
        configured = [(k, v) for k, v in configured if k != b"anthropic-version"]
    kind = provider.kind
    for name, value in kind.credentials(provider):
        if value:
            configured.append(_checked(provider, name, value, "credential"))
    # Configured headers replace the client's of the same name; anthropic-version is decided per request.
    drop = _REQUEST_DROP | {k for k, _ in configured}
    fixed = tuple(configured)
    with_version = (*fixed, (b"anthropic-version", version)) if version is not None else fixed
    return HeaderPlan(frozenset(drop), fixed, with_version, version, kind.endpoint(provider))


def _checked(provider: Provider, name: str, value: str, what: str) -> tuple[bytes, bytes]:
    """``(name, value)`` as bytes (the name lower-cased), or the 502 naming the malformed one."""
    try:
        raw_name, raw_value = name.lower().encode("latin-1"), value.encode("latin-1")
        validate_header(raw_name, raw_value)
    except (UnicodeEncodeError, ValueError):
        shown = "API key" if what == "credential" else f"header {name!r}"
        raise UpstreamError(
            502,
            f"Provider {provider.name!r} is misconfigured: its {shown} is not a valid HTTP header "
            "(CR, LF, NUL, or a character outside Latin-1).",
            code="provider_misconfigured",
        ) from None
    return raw_name, raw_value
