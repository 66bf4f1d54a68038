"""The multipart/form-data field scanner used to route upload endpoints."""

from __future__ import annotations

import httpx
import pytest

from asgi_llmroute.multipart import FormError, form_boundary, form_field, replace_form_field

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


def test_a_file_part_named_model_is_refused() -> None:
    content_type, body = encoded({}, {"model": ("model.bin", b"gpt-4o")})
    boundary = form_boundary(content_type)
    assert boundary is not None
    with pytest.raises(FormError, match="file"):
        form_field(body, boundary, "model")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nunterminated',
        b'--b\r\nContent-Disposition: form-data; name="model"',
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\n\xff\xfe\r\n--b--\r\n',
        # LF-only line ends: not RFC 7578, and the parsers upstreams use refuse it too
        b'--b\nContent-Disposition: form-data; name="model"\n\ngpt-4o\n--b--\n',
    ],
)
def test_malformed_forms_are_refused(body: bytes) -> None:
    with pytest.raises(FormError):
        form_field(body, b"b", "model")
    if b"\xff" not in body:
        with pytest.raises(FormError):
            replace_form_field(body, b"b", "model", "x")


def test_a_form_without_the_field() -> None:
    content_type, body = encoded({"language": "fr"}, {"file": ("speech.wav", AUDIO)})
    boundary = form_boundary(content_type)
    assert boundary is not None
    assert form_field(body, boundary, "model") is None
    assert form_field(b"--b--\r\n", b"b", "model") is None


def _form(*parts: bytes) -> bytes:
    return b"".join(b"--b\r\n" + part + b"\r\n" for part in parts) + b"--b--\r\n"


def test_several_model_fields_are_refused() -> None:
    # Starlette and python-multipart based upstreams read the last one: the allow-list must see the same.
    body = _form(
        b'Content-Disposition: form-data; name="model"\r\n\r\nallowed',
        b'Content-Disposition: form-data; name="model"\r\n\r\nforbidden',
    )
    with pytest.raises(FormError, match="several"):
        form_field(body, b"b", "model")
    body = _form(
        b'Content-Disposition: form-data; name="model"\r\n\r\nallowed',
        b'Content-Disposition: form-data; name="model"; filename="m.txt"\r\n\r\nforbidden',
    )
    with pytest.raises(FormError, match="several"):
        form_field(body, b"b", "model")


def test_field_names_are_parsed_not_searched() -> None:
    body = _form(
        b'Content-Disposition: form-data; myname="model"; name="other"\r\n\r\nsomething-else',
        b"Content-Disposition: form-data; name=model\r\n\r\nthe-model",
    )
    assert form_field(body, b"b", "model") == "the-model"
    replaced = replace_form_field(body, b"b", "model", "rewritten")
    assert replaced == body.replace(b"the-model", b"rewritten")
    assert form_field(replaced, b"b", "other") == "something-else"


def test_an_empty_field_is_read_and_replaced() -> None:
    body = _form(
        b'Content-Disposition: form-data; name="model"\r\n\r\n',
        b'Content-Disposition: form-data; name="x"\r\n\r\ny',
    )
    assert form_field(body, b"b", "model") == ""
    replaced = replace_form_field(body, b"b", "model", "m")
    assert form_field(replaced, b"b", "model") == "m"
    assert form_field(replaced, b"b", "x") == "y"
