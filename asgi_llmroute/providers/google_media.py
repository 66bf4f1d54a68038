"""The Gemini translator bound to its provider: which media URIs the upstream fetches itself.

The Gemini API (kind ``gemini``) fetches HTTPS URLs; Vertex AI (kind ``vertex_ai``) HTTPS and ``gs://``
URIs, the latter only from the buckets its ``gcs_buckets`` option lists (Vertex reads them with the
gateway's credentials). Imported with a provider's first translated request, not with the config.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..formats.gemini import GEMINI_API_URIS, GeminiTranslator, MediaUris, vertex_uris

if TYPE_CHECKING:
    from .types import Deployment, Provider

__all__ = ["GoogleTranslator", "media_uris"]


class GoogleTranslator(GeminiTranslator):
    """The Gemini translator bound to its provider: the media URIs the upstream fetches itself differ
    between the Gemini API (HTTPS) and Vertex AI (HTTPS, and ``gs://`` in the buckets of ``gcs_buckets``)."""

    __slots__ = ()

    def bind(self, deployment: Deployment, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.media = media_uris(deployment.provider)
        self.vertex = deployment.provider.kind.name == "vertex_ai"


def media_uris(provider: Provider) -> MediaUris:
    """What a Gemini-format provider fetches by URI (worked out once per provider record)."""
    media: MediaUris | None = provider.memo.get("gemini_media")
    if media is None:
        media = provider.memo["gemini_media"] = _media_for(provider)
    return media


def _media_for(provider: Provider) -> MediaUris:
    if provider.kind.name != "vertex_ai":
        return GEMINI_API_URIS
    buckets = provider.option("gcs_buckets")
    if buckets is None:
        return vertex_uris(frozenset())
    return vertex_uris(None if buckets == "*" else frozenset(b.strip() for b in buckets.split(",") if b.strip()))
