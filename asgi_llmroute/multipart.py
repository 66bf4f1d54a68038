"""Read and replace one text field of a ``multipart/form-data`` body, leaving every other byte alone.

OpenAI's upload endpoints (``/v1/audio/transcriptions``, ``/v1/images/edits``, ...) send ``model`` as a
form field instead of JSON. Routing needs that one field; the file parts are relayed untouched.

The body is parsed with python-multipart, the parser Starlette (and so FastAPI, vLLM, LiteLLM's proxy)
uses, so the gateway sees the form exactly as such an upstream will. A form in which the field is
ambiguous (named by several parts, or by a file part) or that does not parse is refused with
:class:`FormError`, never guessed at: the allow-list and the upstream must agree on the model.
"""

from __future__ import annotations

import re

# python-multipart is imported when a form is read (not with this module, which every request's context loads).

__all__ = ["FormError", "form_boundary", "form_field", "replace_form_field"]

_BOUNDARY = re.compile(rb';\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))', re.IGNORECASE)


class FormError(ValueError):
    """The body is not a form whose field can be read unambiguously; ``str()`` says why."""


def form_boundary(content_type: bytes) -> bytes | None:
    """The boundary of a ``multipart/form-data`` content type, else None."""
    if not content_type.lower().lstrip().startswith(b"multipart/form-data"):
        return None
    match = _BOUNDARY.search(content_type)
    if match is None:
        return None
    return match.group(1) or match.group(2)


class _Scan:
    """python-multipart callbacks noting where the parts named ``wanted`` keep their values."""

    def __init__(self, body: bytes, wanted: bytes) -> None:
        self.body = body
        self.wanted = wanted
        self.spans: list[tuple[int, int]] = []
        self.files = 0
        self._field = b""
        self._value = b""
        self._disposition: bytes | None = None
        self._start: int | None = None
        self._end = 0
        self._headers_end = 0
        self._contiguous = True
        self.ended = False

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end_of_body,
        }

    def _part_begin(self) -> None:
        self._field = self._value = b""
        self._disposition = None
        self._start = None
        self._contiguous = True

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]
        self._headers_end = end

    def _header_end(self) -> None:
        if self._field.lower() == b"content-disposition":
            self._disposition = self._value
        self._field = self._value = b""

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        # The whole body is written at once, so offsets are the body's own (else: not contiguous).
        if data is not self.body or (self._start is not None and start != self._end):
            self._contiguous = False
        if self._start is None:
            self._start = start
        self._end = end

    def _part_end(self) -> None:
        from python_multipart.multipart import parse_options_header

        if self._disposition is None:
            return
        kind, options = parse_options_header(self._disposition)
        if kind.lower() != b"form-data" or options.get(b"name") != self.wanted:
            return
        if b"filename" in options:
            self.files += 1
            return
        if not self._contiguous:
            raise FormError("the form field could not be located in the body")
        if self._start is None:
            # An empty value (python-multipart reports no data): right after the blank line ending the headers.
            start = self.body.find(b"\r\n\r\n", self._headers_end) + 4
            self.spans.append((start, start))
        else:
            self.spans.append((self._start, self._end))

    def _end_of_body(self) -> None:
        self.ended = True


def _field_span(body: bytes, boundary: bytes, name: str) -> tuple[int, int] | None:
    """Where the value of the one text field ``name`` starts and ends in ``body`` (None if absent)."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser

    scan = _Scan(body, name.encode("utf-8"))
    parser = MultipartParser(boundary, scan.callbacks())  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError:
        raise FormError("the body is not a valid multipart/form-data body") from None
    if not scan.ended:
        raise FormError("the multipart/form-data body is truncated (no closing delimiter)")
    if len(scan.spans) + scan.files > 1:
        raise FormError(f"the form has several {name!r} fields")
    if scan.files:
        raise FormError(f"the form's {name!r} field is a file, not a text field")
    return scan.spans[0] if scan.spans else None


def form_field(body: bytes, boundary: bytes, name: str) -> str | None:
    """The value of text field ``name``, or None if the form has no part of that name.

    :class:`FormError` if the body does not parse, if several parts (or a file part) carry the
    name, or if the value is not UTF-8.
    """
    span = _field_span(body, boundary, name)
    if span is None:
        return None
    try:
        return body[span[0] : span[1]].decode("utf-8")
    except UnicodeDecodeError:
        raise FormError(f"the form's {name!r} field is not UTF-8 text") from None


def replace_form_field(body: bytes, boundary: bytes, name: str, value: str) -> bytes:
    """``body`` with the value of text field ``name`` replaced in place (unchanged if there is no such field).

    :class:`FormError` as for :func:`form_field`.
    """
    span = _field_span(body, boundary, name)
    if span is None:
        return body
    return body[: span[0]] + value.encode("utf-8") + body[span[1] :]
