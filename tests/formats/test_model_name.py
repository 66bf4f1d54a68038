"""The model-name span rewrite: any read boundaries, only the member, nothing else changed."""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llmroute.formats.model_name import _MODEL, ModelNameRewriter


def run(body: bytes, cuts: list[int], *, stream: bool, once: bool) -> bytes:
    rewriter = ModelNameRewriter("alias", stream=stream, once=once)
    out = b""
    for a, b in zip([0, *cuts], [*cuts, len(body)], strict=False):
        out += rewriter.feed(body[a:b])
    return out + rewriter.close()


CHUNKS = (
    b"".join(
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model": "gpt-4o-2024-08-06",'
        b'"choices":[{"index":0,"delta":{"content":"say \\"model\\": \\"x\\""}}]}\n\n'
        for _ in range(3)
    )
    + b"data: [DONE]\n\n"
)
MESSAGE = (
    b'{"id":"msg_1","type":"message","role":"assistant","model":"claude-x-20250929","content":[{"type":"text",'
    b'"text":"the \\"model\\":\\"y\\" key"}],"stop_reason":"end_turn"}'
)
ANTHROPIC = (
    b'event: message_start\ndata: {"type":"message_start","message":{"model":"claude-x-20250929"}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"input_json_delta",'
    b'"partial_json":"{\\"model\\": \\"z\\"}"},"model":"not-replaced"}\n\n'
)


@pytest.mark.parametrize("seed", range(30))
def test_every_chunk_of_an_openai_stream_is_renamed_whatever_the_reads(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(CHUNKS)), 8))
    out = run(CHUNKS, cuts, stream=True, once=False)
    assert out == CHUNKS.replace(b'"model": "gpt-4o-2024-08-06"', b'"model":"alias"')
    for line in out.split(b"\n\n")[:3]:
        assert json.loads(line[6:])["model"] == "alias"


@pytest.mark.parametrize("seed", range(30))
def test_a_json_body_is_renamed_once(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(MESSAGE)), 5))
    out = run(MESSAGE, cuts, stream=False, once=True)
    assert json.loads(out) == {**json.loads(MESSAGE), "model": "alias"}


@pytest.mark.parametrize("cuts", [[30, 31, 90], [100, 140], [60]])
def test_an_anthropic_stream_is_renamed_in_message_start_only(cuts: list[int]) -> None:
    out = run(ANTHROPIC, cuts, stream=True, once=True)
    assert out == ANTHROPIC.replace(b'"claude-x-20250929"', b'"alias"')


def test_a_body_without_a_model_is_unchanged() -> None:
    body = b'{"a":1,' + b'"b":"' + b"x" * 100_000 + b'"}'
    assert run(body, [10, 70_000], stream=False, once=True) == body
    assert run(b"data: {}\n\ndata: {", [3], stream=True, once=False) == b"data: {}\n\ndata: {"


@settings(max_examples=300, deadline=None)
@given(name=st.text(), cut=st.integers(min_value=1, max_value=len(CHUNKS) - 1))
def test_any_model_name_is_spliced_as_json_in_bodies_and_streams(name: str, cut: int) -> None:
    # The name is written as the JSON string it encodes to: no escape in it is read as a template.
    rewriter = ModelNameRewriter(name, stream=False, once=True)
    assert json.loads(rewriter.feed(MESSAGE) + rewriter.close()) == {**json.loads(MESSAGE), "model": name}
    for once, body in ((False, CHUNKS), (True, ANTHROPIC)):
        rewriter = ModelNameRewriter(name, stream=True, once=once)
        cut = min(cut, len(body) - 1)
        out = rewriter.feed(body[:cut]) + rewriter.feed(body[cut:]) + rewriter.close()
        events = out.split(b"\n\n")
        assert len(events) == len(body.split(b"\n\n"))
        data = [json.loads(e.split(b"data: ", 1)[1]) for e in events if e and e != b"data: [DONE]"]
        models = [d["model"] for d in data] if not once else [data[0]["message"]["model"]]
        assert set(models) == {name}


_PIECES = st.sampled_from(
    [b'"model"', b'"model":"', b":", b" ", b'"', b"\\", b"\n", b"\r", b"x", b"gpt-4o", b"{", b","]
)
_PLAIN = re.compile(rb'"model"\s*:\s*"(?:[^"\\\r\n]|\\.)*"')  # the pattern without possessive quantifiers


@settings(max_examples=500, deadline=None)
@given(data=st.lists(_PIECES, max_size=30).map(b"".join), pos=st.integers(min_value=0, max_value=40))
def test_the_possessive_pattern_finds_what_the_plain_one_finds(data: bytes, pos: int) -> None:
    plain, possessive = _PLAIN.search(data, pos), _MODEL.search(data, pos)
    assert (plain.span() if plain else None) == (possessive.span() if possessive else None)
