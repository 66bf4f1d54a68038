"""Chunk-boundary independence: any split, 1-byte reads and CRLF framing give identical output."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ._helpers import FIXTURES, read, stream_translator_for, translate_stream

STREAMS = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/stream_*.sse") if ".expected." not in p.name)


def whole(rel: str) -> bytes:
    return translate_stream(stream_translator_for(rel), read(rel))


def to_crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.parametrize("rel", STREAMS)
def test_one_byte_reads(rel: str) -> None:
    raw = read(rel)
    reads = [raw[i : i + 1] for i in range(len(raw))]
    assert translate_stream(stream_translator_for(rel), raw, reads) == whole(rel)


@pytest.mark.parametrize("rel", STREAMS)
def test_crlf_and_cr_framing(rel: str) -> None:
    crlf = to_crlf(read(rel))
    assert translate_stream(stream_translator_for(rel), crlf) == whole(rel)
    cr = crlf.replace(b"\r\n", b"\r")
    assert translate_stream(stream_translator_for(rel), cr) == whole(rel)
    # CRLF split exactly between CR and LF
    reads = [piece + b"\r" for piece in crlf.split(b"\r")[:-1]] + [crlf.split(b"\r")[-1]]
    assert translate_stream(stream_translator_for(rel), crlf, [r for r in reads if r]) == whole(rel)


@pytest.mark.parametrize("rel", STREAMS)
def test_comments_and_extra_blank_lines_are_ignored(rel: str) -> None:
    raw = read(rel).replace(b"\n\n", b"\n\n: keepalive\n\n\n")
    assert translate_stream(stream_translator_for(rel), b": hello\n\n" + raw) == whole(rel)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(STREAMS), st.booleans(), st.data())
def test_random_splits(rel: str, crlf: bool, data: st.DataObject) -> None:
    raw = to_crlf(read(rel)) if crlf else read(rel)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=40)))
    reads = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert translate_stream(stream_translator_for(rel), raw, reads) == whole(rel)
