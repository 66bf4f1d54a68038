"""OpenAI content parts -> Anthropic content blocks: text, images, files, echoed thinking."""

from __future__ import annotations

from typing import Any

from .body import each_part
from .types import TranslationError

__all__ = ["IMAGE_TYPES", "text_block", "thinking_blocks", "user_blocks"]

IMAGE_TYPES = frozenset(("image/jpeg", "image/png", "image/gif", "image/webp"))


def text_block(text: str, part: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A text block, or None for empty/whitespace-only text (Anthropic rejects those, 2.3)."""
    if not text.strip():
        return None
    block: dict[str, Any] = {"type": "text", "text": text}
    if part is not None and isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def parse_data_url(url: str, param: str) -> tuple[str, str]:
    """``data:<mime>;base64,<data>`` -> (mime, data)."""
    head, sep, data = url[5:].partition(",")
    mime, _, encoding = head.partition(";")
    if not sep or encoding.lower() != "base64":
        raise TranslationError("only base64 data URLs are supported", param)
    return mime.strip().lower(), data


def image_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise TranslationError("image_url.url must be a string", param)
    if url.startswith("data:"):
        mime, data = parse_data_url(url, param)
        if mime == "application/pdf":
            return {"type": "document", "source": {"type": "base64", "media_type": mime, "data": data}}
        if mime not in IMAGE_TYPES:
            raise TranslationError(f"unsupported image type {mime!r} (jpeg, png, gif, webp)", param)
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError("image_url.url must be an http(s) URL or a base64 data URL", param)


def file_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    file = part.get("file")
    if not isinstance(file, dict):
        raise TranslationError("file part needs a 'file' object", param)
    data = file.get("file_data")
    if not isinstance(data, str) or not data:
        raise TranslationError("only inline file_data is supported (file_id cannot be sent to Anthropic)", param)
    mime, payload = parse_data_url(data, param) if data.startswith("data:") else ("application/pdf", data)
    if mime == "application/pdf":
        block: dict[str, Any] = {"type": "document", "source": {"type": "base64", "media_type": mime, "data": payload}}
    elif mime in IMAGE_TYPES:
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": payload}}
    else:
        raise TranslationError(f"unsupported file type {mime!r} (PDF or image)", param)
    filename = file.get("filename")
    if isinstance(filename, str) and filename:
        block["title"] = filename
    return block


def user_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        block = text_block(content)
        return [block] if block else []
    if content is None:
        return []
    blocks: list[dict[str, Any]] = []
    for p, kind, part in each_part(content, param):
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise TranslationError("text part needs a string 'text'", p)
            block = text_block(text, part)
            if block:
                blocks.append(block)
        elif kind == "image_url":
            blocks.append(image_block(part, p))
        elif kind == "file":
            blocks.append(file_block(part, p))
        elif kind == "input_audio":
            raise TranslationError("audio input is not supported by this model's API", p)
        else:
            raise TranslationError(f"unsupported content part type {kind!r}", p)
    return blocks


def thinking_blocks(value: Any) -> list[dict[str, Any]]:
    """Signed thinking / redacted_thinking blocks echoed by the client, copied unchanged."""
    out: list[dict[str, Any]] = []
    if not isinstance(value, list):
        return out
    for block in value:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        signature = block.get("signature")
        if kind == "thinking" and isinstance(signature, str) and signature:
            thinking = block.get("thinking")
            out.append(
                {"type": "thinking", "thinking": thinking if isinstance(thinking, str) else "", "signature": signature}
            )
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            out.append({"type": "redacted_thinking", "data": block["data"]})
    return out
