"""Media by URI to Gemini (``fileData``): what the Gemini API and Vertex AI each fetch themselves, and a
400 naming the client's field for every URI the upstream cannot read."""

from __future__ import annotations

from typing import Any

import pytest

from asgi_llmroute.formats import TranslationError, TranslationOptions
from asgi_llmroute.formats.gemini import GEMINI_API_URIS, NO_URIS, GeminiTranslator, MediaUris, vertex_uris

OPTIONS = TranslationOptions(clock=lambda: 1700000000)
VERTEX = vertex_uris(frozenset({"media-bucket"}))


def openai_image(url: str, media: MediaUris) -> list[dict[str, Any]]:
    body = {
        "model": "gemini-2.5-flash",
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}],
    }
    parts: list[dict[str, Any]] = GeminiTranslator("openai", OPTIONS, media=media).request(body)["contents"][0]["parts"]
    return parts


def anthropic_block(block: dict[str, Any], media: MediaUris) -> list[dict[str, Any]]:
    body = {"model": "gemini-2.5-flash", "max_tokens": 5, "messages": [{"role": "user", "content": [block]}]}
    parts: list[dict[str, Any]] = GeminiTranslator("anthropic", OPTIONS, media=media).request(body)["contents"][0][
        "parts"
    ]
    return parts


@pytest.mark.parametrize(
    ("url", "media", "part"),
    [
        ("https://example.com/cat.PNG?sig=1", GEMINI_API_URIS, {"mimeType": "image/png"}),
        ("https://generativelanguage.googleapis.com/v1beta/files/abc123", GEMINI_API_URIS, {}),  # Files API
        ("https://example.com/a/cat.jpeg", VERTEX, {"mimeType": "image/jpeg"}),
        ("gs://media-bucket/photos/cat.webp", VERTEX, {"mimeType": "image/webp"}),
        ("gs://any-bucket/cat.png", vertex_uris(None), {"mimeType": "image/png"}),
    ],
)
def test_uris_the_upstream_reads_become_file_data(url: str, media: MediaUris, part: dict[str, Any]) -> None:
    assert openai_image(url, media) == [{"fileData": {**part, "fileUri": url}}]


@pytest.mark.parametrize(
    ("url", "media", "match"),
    [
        ("https://example.com/cat.png", NO_URIS, "send the data inline"),
        ("gs://media-bucket/cat.png", GEMINI_API_URIS, "does not read gs://"),
        ("http://example.com/cat.png", GEMINI_API_URIS, "only from https://"),
        ("ftp://example.com/cat.png", VERTEX, "only from https:// and gs://"),
        ("gs://other-bucket/cat.png", VERTEX, "gs://other-bucket is not a Cloud Storage bucket"),
        ("gs:///cat.png", vertex_uris(None), "gs:// is not a Cloud Storage bucket"),
        ("gs://media-bucket/cat.png", vertex_uris(frozenset()), "operator lists the buckets"),
        ("https://example.com/image?id=3", VERTEX, "needs the media type"),
        ("cat.png", VERTEX, "only from https:// and gs://"),
    ],
)
def test_uris_the_upstream_cannot_read_are_a_400(url: str, media: MediaUris, match: str) -> None:
    with pytest.raises(TranslationError, match=match) as info:
        openai_image(url, media)
    assert info.value.param == "messages[0].content[0].image_url.url"


def test_anthropic_url_sources() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "gs://media-bucket/cat.jpg"}}
    assert anthropic_block(image, VERTEX) == [
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://media-bucket/cat.jpg"}}
    ]
    document = {"type": "document", "source": {"type": "url", "url": "https://example.com/report"}}
    assert anthropic_block(document, VERTEX) == [  # Anthropic's URL documents are PDFs
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/report"}}
    ]
    with pytest.raises(TranslationError, match="string 'url'") as info:
        anthropic_block({"type": "image", "source": {"type": "url"}}, VERTEX)
    assert info.value.param == "messages[0].content[0].source.url"
    with pytest.raises(TranslationError, match="Files API ids") as info:
        anthropic_block({"type": "image", "source": {"type": "file", "file_id": "file_1"}}, VERTEX)
    assert info.value.param == "messages[0].content[0].source"


def test_media_in_tool_results_follow_the_same_rules() -> None:
    body = {
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "user", "content": "look"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [{"type": "image_url", "image_url": {"url": "gs://media-bucket/shot.png"}}],
            },
        ],
    }
    out = GeminiTranslator("openai", OPTIONS, media=VERTEX).request(body)
    assert out["contents"][-1]["parts"] == [
        {"fileData": {"mimeType": "image/png", "fileUri": "gs://media-bucket/shot.png"}}
    ]
    with pytest.raises(TranslationError, match="does not read gs://"):
        GeminiTranslator("openai", OPTIONS, media=GEMINI_API_URIS).request(body)
