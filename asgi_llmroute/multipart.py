"""Read and replace one text field of a ``multipart/form-data`` body, leaving every other byte alone.

OpenAI's upload endpoints (``/v1/audio/transcriptions``, ``/v1/images/edits``, ...) send ``model`` as a
form field instead of JSON. Routing needs that one field; the file parts are relayed untouched, so this
is a scanner over the body's bytes (RFC 7578), not a general form parser.
"""

from __future__ import annotations

import re

__all__ = ["form_boundary", "form_field", "replace_form_field"]

_BOUNDARY = re.compile(rb';\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))', re.IGNORECASE)
_DISPOSITION = re.compile(rb"^content-disposition:\s*form-data\s*;(.*)$", re.IGNORECASE | re.MULTILINE)
_NAME = re.compile(rb';?\s*name="([^"]*)"')


def form_boundary(content_type: bytes) -> bytes | None:
    """The boundary of a ``multipart/form-data`` content type, else None."""
    if not content_type.lower().lstrip().startswith(b"multipart/form-data"):
        return None
    match = _BOUNDARY.search(content_type)
    if match is None:
        return None
    return match.group(1) or match.group(2)


def _field_span(body: bytes, boundary: bytes, name: str) -> tuple[int, int] | None:
    """Where the value of the first non-file field ``name`` starts and ends in ``body``."""
    delimiter = b"--" + boundary
    wanted = name.encode()
    position = body.find(delimiter)
    while position != -1:
        head_start = position + len(delimiter)
        if body.startswith(b"--", head_start):
            return None  # the closing delimiter
        head_end = body.find(b"\r\n\r\n", head_start)
        if head_end == -1:
            return None
        value_start = head_end + 4
        following = body.find(b"\r\n" + delimiter, value_start)
        if following == -1:
            return None
        head = body[head_start:head_end]
        disposition = _DISPOSITION.search(head)
        if disposition is not None and b"filename" not in disposition.group(1).lower():
            found = _NAME.search(disposition.group(1))
            if found is not None and found.group(1) == wanted:
                return value_start, following
        position = following + 2
    return None


def form_field(body: bytes, boundary: bytes, name: str) -> str | None:
    """The value of text field ``name`` (not a file part), or None if there is none or it is not UTF-8."""
    span = _field_span(body, boundary, name)
    if span is None:
        return None
    try:
        return body[span[0] : span[1]].decode("utf-8")
    except UnicodeDecodeError:
        return None


def replace_form_field(body: bytes, boundary: bytes, name: str, value: str) -> bytes:
    """``body`` with the value of text field ``name`` replaced (unchanged if there is no such field)."""
    span = _field_span(body, boundary, name)
    if span is None:
        return body
    return body[: span[0]] + value.encode("utf-8") + body[span[1] :]
