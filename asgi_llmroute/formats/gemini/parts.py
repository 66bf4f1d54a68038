"""Client content -> Gemini ``parts``: text, inline media (base64 data), for OpenAI Chat content
parts and Anthropic content blocks. Gemini cannot fetch media by URL through the gateway."""

from __future__ import annotations

from typing import Any

from ..body import each_block, each_part
from ..types import TranslationError

_AUDIO = {"wav": "audio/wav", "mp3": "audio/mp3"}


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


# -- OpenAI Chat Completions content parts ---------------------------------------------------------


def openai_parts(content: Any, param: str, *, system: bool = False) -> list[dict[str, Any]]:
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
            if not url.startswith("data:"):
                raise _no_urls(f"{p}.image_url.url")
            parts.append(_data_url(url, f"{p}.image_url.url"))
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


def openai_result(content: Any, param: str) -> tuple[Any, list[dict[str, Any]]]:
    """(function response value, media parts to send after the responses) of a tool message."""
    if isinstance(content, str) or content is None:
        return content or "", []
    return split_media(openai_parts(content, param))


# -- Anthropic Messages content blocks -------------------------------------------------------------


def _anthropic_source(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise TranslationError(f"{block.get('type')} block needs a 'source'", f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        return _inline(source.get("media_type"), source.get("data"), f"{param}.source")
    if kind in ("url", "file"):
        raise _no_urls(f"{param}.source")
    raise TranslationError(f"source type {kind!r} cannot be sent to Gemini", f"{param}.source.type")


def _anthropic_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(b["text"] for b in value if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def anthropic_parts(content: Any, param: str) -> list[dict[str, Any]]:
    """Gemini parts of user-side blocks (text, image, document)."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for p, block in each_block(content, param):
        parts.extend(anthropic_block(block, p))
    return parts


def anthropic_block(block: dict[str, Any], param: str) -> list[dict[str, Any]]:
    """Gemini parts of one user-side block."""
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise TranslationError("text block needs a string 'text'", param)
        return [{"text": text}] if text else []
    if kind == "image":
        return [_anthropic_source(block, param)]
    if kind == "document":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "text":
            data = source.get("data")
            return [{"text": data}] if isinstance(data, str) and data else []
        if isinstance(source, dict) and source.get("type") == "content":
            text = _anthropic_text(source.get("content"))
            return [{"text": text}] if text else []
        return [_anthropic_source(block, param)]
    raise TranslationError(f"content block type {kind!r} cannot be sent to Gemini", f"{param}.type")
