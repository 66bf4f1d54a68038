"""The multipart/form-data field scanner used to route upload endpoints."""

from __future__ import annotations

import httpx
import pytest

from asgi_llmroute.multipart import form_boundary, form_field, replace_form_field

AUDIO = b'RIFF\r\n--not-the-boundary\r\nname="model"\r\n\r\nfake\x00\xff audio'


def encoded(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, bytes]:
    """A form as httpx (the OpenAI SDK's transport) encodes it: (content type, body)."""
    request = httpx.Request("POST", "http://x/", data=fields, files=files)
    return request.headers["content-type"].encode(), request.read()


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        (b"multipart/form-data; boundary=abc123", b"abc123"),
        (b'multipart/form-data; boundary="a b:c"', b"a b:c"),
        (b"Multipart/Form-Data;charset=utf-8;BOUNDARY=xyz", b"xyz"),
        (b"application/json", None),
        (b"multipart/form-data", None),
        (b"multipart/mixed; boundary=abc", None),
    ],
)
def test_form_boundary(content_type: bytes, boundary: bytes | None) -> None:
    assert form_boundary(content_type) == boundary


def test_reads_and_replaces_the_model_field_around_file_parts() -> None:
    content_type, body = encoded({"model": "whisper-alias", "language": "fr"}, {"file": ("speech.wav", AUDIO)})
    boundary = form_boundary(content_type)
    assert boundary is not None
    assert form_field(body, boundary, "model") == "whisper-alias"
    assert form_field(body, boundary, "language") == "fr"
    assert form_field(body, boundary, "missing") is None
    replaced = replace_form_field(body, boundary, "model", "whisper-1-ünicode")
    assert form_field(replaced, boundary, "model") == "whisper-1-ünicode"
    assert replaced.replace(b"whisper-1-\xc3\xbcnicode", b"whisper-alias") == body  # nothing else moved
    assert AUDIO in replaced


def test_a_file_part_named_model_is_not_the_model() -> None:
    content_type, body = encoded({}, {"model": ("model.bin", b"gpt-4o")})
    boundary = form_boundary(content_type)
    assert boundary is not None
    assert form_field(body, boundary, "model") is None
    assert replace_form_field(body, boundary, "model", "x") == body


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nunterminated',
        b'--b\r\nContent-Disposition: form-data; name="model"',
        b"--b--\r\n",
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\n\xff\xfe\r\n--b--\r\n',
    ],
)
def test_malformed_forms_have_no_model(body: bytes) -> None:
    assert form_field(body, b"b", "model") is None
    assert replace_form_field(body, b"b", "model", "x") in (body, body.replace(b"\xff\xfe", b"x"))
