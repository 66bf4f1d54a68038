"""Client content -> Gemini ``parts``: text, inline media (base64 data) and media by URI
(``fileData``), for OpenAI Chat content parts and Anthropic content blocks.

Which URIs an upstream reads itself is a :class:`MediaUris`: the Gemini API fetches HTTPS URLs (public
or signed, its Files API's, YouTube's) but no ``gs://``; Vertex AI reads HTTPS and Cloud Storage
(``gs://``) URIs, the latter with the gateway's own credentials, so only from the buckets the operator
lists. Without one (the default), media must be inline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..body import each_block, each_part
from ..types import TranslationError

_AUDIO = {"wav": "audio/wav", "mp3": "audio/mp3"}
#: Media types by file extension, for ``fileData.mimeType`` (Vertex AI requires one).
_BY_EXTENSION = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
}


@dataclass(frozen=True, slots=True)
class MediaUris:
    """The ``fileData.fileUri`` values an upstream fetches itself (media sent by URL, not inline).

    ``schemes``: URI schemes it reads (``https``, ``gs``); ``buckets``: the Cloud Storage buckets
    ``gs://`` URIs may name (None: any); ``needs_mime``: ``fileData.mimeType`` is required (Vertex AI),
    so a URL whose media type cannot be told from its name is refused; ``upstream``: its name, for errors.
    """

    schemes: frozenset[str] = frozenset()
    buckets: frozenset[str] | None = frozenset()
    needs_mime: bool = False
    upstream: str = "Gemini"


#: Media inline only (the default).
NO_URIS = MediaUris()
#: The Gemini API: HTTPS URLs (external, its Files API's, YouTube's); Cloud Storage only through the Files API.
GEMINI_API_URIS = MediaUris(frozenset({"https"}), upstream="The Gemini API")


def vertex_uris(buckets: frozenset[str] | None) -> MediaUris:
    """Vertex AI: HTTPS and ``gs://`` URIs in ``buckets`` (None: any bucket); ``mimeType`` required."""
    return MediaUris(frozenset({"https", "gs"}), buckets, needs_mime=True, upstream="Vertex AI")


def split_media(parts: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(the text parts joined by newlines, the other parts) of a tool result's parts."""
    return "\n".join(p["text"] for p in parts if "text" in p), [p for p in parts if "text" not in p]


def _data_url(url: str, param: str) -> dict[str, Any]:
    head, sep, data = url[5:].partition(",")
    mime, _, encoding = head.partition(";")
    if not sep or encoding.lower() != "base64":
        raise TranslationError("only base64 data URLs can be sent to Gemini", param)
    mime = mime.strip().lower()
    if not mime:
        raise TranslationError("the data URL has no media type", param)
    return {"inlineData": {"mimeType": mime, "data": data}}


def _inline(mime: Any, data: Any, param: str) -> dict[str, Any]:
    if not isinstance(data, str) or not data:
        raise TranslationError("inline data must be a non-empty base64 string", param)
    if not isinstance(mime, str) or not mime:
        raise TranslationError("inline data needs a media type", param)
    return {"inlineData": {"mimeType": mime.lower(), "data": data}}


def _no_urls(param: str) -> TranslationError:
    return TranslationError(
        "Gemini cannot fetch media by URL through the gateway; send the data inline (base64)", param
    )


def _media_type(url: str) -> str | None:
    name = urlsplit(url).path.rpartition("/")[2]
    _, dot, extension = name.rpartition(".")
    return _BY_EXTENSION.get(extension.lower()) if dot else None


def _by_uri(url: str, media: MediaUris, param: str, mime: str | None = None) -> dict[str, Any]:
    """A ``fileData`` part for media the upstream fetches, or the 400 saying why it cannot."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower() if sep else ""
    if not media.schemes:
        raise _no_urls(param)
    if scheme not in media.schemes:
        if scheme == "gs":
            raise TranslationError(
                f"{media.upstream} does not read gs:// URIs: register the object with its Files API and send "
                "that URI, or send the data inline (base64)",
                param,
            )
        readable = " and ".join(f"{s}://" for s in sorted(media.schemes, reverse=True))
        raise TranslationError(f"{media.upstream} reads media only from {readable} URIs; send the data inline", param)
    if scheme == "gs":
        bucket = rest.partition("/")[0]
        if not bucket or (media.buckets is not None and bucket not in media.buckets):
            raise TranslationError(
                f"gs://{bucket} is not a Cloud Storage bucket this gateway reads for its clients (gs:// URIs are "
                "read with the gateway's credentials; the operator lists the buckets allowed)",
                param,
            )
    mime = mime or _media_type(url)
    if mime is None and media.needs_mime:
        raise TranslationError(
            f"{media.upstream} needs the media type of a URI: use one ending in its file extension "
            "(.png, .jpg, .pdf, ...), or send the data inline",
            param,
        )
    return {"fileData": {"mimeType": mime, "fileUri": url} if mime else {"fileUri": url}}


# -- OpenAI Chat Completions content parts ---------------------------------------------------------


def openai_parts(content: Any, param: str, *, system: bool = False, media: MediaUris = NO_URIS) -> list[dict[str, Any]]:
    """Gemini parts of an OpenAI message's ``content`` (a string or an array of parts)."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if content is None:
        return []
    parts: list[dict[str, Any]] = []
    for p, kind, part in each_part(content, param):
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise TranslationError(f"{kind} part needs a string '{kind}'", p)
            if text:
                parts.append({"text": text})
        elif system:
            raise TranslationError("system content parts must be text", p)
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise TranslationError("image_url.url must be a string", f"{p}.image_url.url")
            if url.startswith("data:"):
                parts.append(_data_url(url, f"{p}.image_url.url"))
            else:
                parts.append(_by_uri(url, media, f"{p}.image_url.url"))
        elif kind == "file":
            file = part.get("file")
            data = file.get("file_data") if isinstance(file, dict) else None
            if not isinstance(data, str) or not data:
                raise TranslationError("only inline file_data can be sent to Gemini (no file_id)", f"{p}.file")
            if data.startswith("data:"):
                parts.append(_data_url(data, f"{p}.file.file_data"))
            else:
                parts.append(_inline("application/pdf", data, f"{p}.file.file_data"))
        elif kind == "input_audio":
            audio = part.get("input_audio")
            fmt = audio.get("format") if isinstance(audio, dict) else None
            if fmt not in _AUDIO or not isinstance(audio, dict):
                raise TranslationError("input_audio needs format 'wav' or 'mp3'", f"{p}.input_audio")
            parts.append(_inline(_AUDIO[fmt], audio.get("data"), f"{p}.input_audio.data"))
        else:
            raise TranslationError(f"content part type {kind!r} cannot be sent to Gemini", f"{p}.type")
    return parts


def openai_result(content: Any, param: str, media: MediaUris = NO_URIS) -> tuple[Any, list[dict[str, Any]]]:
    """(function response value, media parts to send after the responses) of a tool message."""
    if isinstance(content, str) or content is None:
        return content or "", []
    return split_media(openai_parts(content, param, media=media))


# -- Anthropic Messages content blocks -------------------------------------------------------------


def _anthropic_source(block: dict[str, Any], param: str, media: MediaUris) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise TranslationError(f"{block.get('type')} block needs a 'source'", f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        return _inline(source.get("media_type"), source.get("data"), f"{param}.source")
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url:
            raise TranslationError("a url source needs a string 'url'", f"{param}.source.url")
        # Anthropic's URL documents are PDFs; an image's type comes from its name.
        mime = "application/pdf" if block.get("type") == "document" else None
        return _by_uri(url, media, f"{param}.source.url", mime)
    if kind == "file":
        raise TranslationError(
            "Anthropic Files API ids cannot be sent to Gemini; send the data inline (base64)", f"{param}.source"
        )
    raise TranslationError(f"source type {kind!r} cannot be sent to Gemini", f"{param}.source.type")


def _anthropic_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(b["text"] for b in value if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def anthropic_parts(content: Any, param: str, media: MediaUris = NO_URIS) -> list[dict[str, Any]]:
    """Gemini parts of user-side blocks (text, image, document)."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for p, block in each_block(content, param):
        parts.extend(anthropic_block(block, p, media))
    return parts


def anthropic_block(block: dict[str, Any], param: str, media: MediaUris = NO_URIS) -> list[dict[str, Any]]:
    """Gemini parts of one user-side block."""
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise TranslationError("text block needs a string 'text'", param)
        return [{"text": text}] if text else []
    if kind == "image":
        return [_anthropic_source(block, param, media)]
    if kind == "document":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "text":
            data = source.get("data")
            return [{"text": data}] if isinstance(data, str) and data else []
        if isinstance(source, dict) and source.get("type") == "content":
            text = _anthropic_text(source.get("content"))
            return [{"text": text}] if text else []
        return [_anthropic_source(block, param, media)]
    raise TranslationError(f"content block type {kind!r} cannot be sent to Gemini", f"{param}.type")
