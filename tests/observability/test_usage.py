"""Usage accounting: stream and non-stream, both API formats, relayed and translated."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llmroute.formats.usage_scan import OpenAIUsageStripper, StreamUsageScanner, usage_from_json
from tests.support.gateway import ROUTER_TOKEN

from ._support import anthropic_stream, openai_stream
from .conftest import Running

AUTH = {"authorization": f"Bearer {ROUTER_TOKEN}"}
MESSAGES: Any = [{"role": "user", "content": "Hi"}]
OPENAI_COUNTS = (11, 7)  # what the OpenAI-like upstream reports
ANTHROPIC_COUNTS = (15, 9)  # 13 input + 2 cache reads; output 9 (cumulative, not 1 + 9)


def _counts(running: Running) -> tuple[int, int]:
    line = running.logs.access()[0]
    return line["input_tokens"], line["output_tokens"]


@pytest.mark.parametrize("stream", [False, True])
def test_openai_client_openai_upstream(gw: Running, stream: bool) -> None:
    gw.logs.clear()
    result: Any = gw.openai().chat.completions.create(model="gpt-test", messages=MESSAGES, stream=stream)
    if stream:
        chunks = list(result)
        assert all(chunk.usage is None for chunk in chunks)  # the client did not ask: it sees no usage
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there!"
    else:
        assert result.usage.prompt_tokens == 11
    assert _counts(gw) == OPENAI_COUNTS


def test_openai_stream_client_that_asked_sees_usage(gw: Running) -> None:
    gw.logs.clear()
    options: Any = {"include_usage": True}
    stream = gw.openai().chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, stream_options=options
    )
    usage = [chunk.usage for chunk in stream if chunk.usage is not None]
    assert [(u.prompt_tokens, u.completion_tokens) for u in usage] == [OPENAI_COUNTS]
    assert _counts(gw) == OPENAI_COUNTS


def _raw_stream(running: Running, body: dict[str, Any]) -> bytes:
    with httpx.stream("POST", f"{running.url}/v1/chat/completions", headers=AUTH, json=body) as response:
        assert response.status_code == 200
        return response.read()


def test_openai_stream_is_byte_exact_with_and_without_include_usage(gw: Running) -> None:
    base = {"model": "gpt-test", "messages": MESSAGES, "stream": True}
    gw.logs.clear()
    # What the upstream sends unasked, under the name the client asked for (docs/translation.md, "The model name").
    assert _raw_stream(gw, base) == openai_stream(include_usage=False, model="gpt-test")
    assert _counts(gw) == OPENAI_COUNTS
    gw.logs.clear()
    asked = {**base, "stream_options": {"include_usage": True}}
    assert _raw_stream(gw, asked) == openai_stream(include_usage=True, model="gpt-test")  # relayed untouched
    assert _counts(gw) == OPENAI_COUNTS
    gw.logs.clear()
    declined = {**base, "stream_options": {"include_usage": False}}
    assert _raw_stream(gw, declined) == openai_stream(include_usage=False, model="gpt-test")
    assert _counts(gw) == OPENAI_COUNTS


def test_stream_usage_can_be_switched_off(start: Any) -> None:
    running: Running = start(usage={"stream_usage": False})
    running.logs.clear()
    assert _raw_stream(running, {"model": "gpt-test", "messages": MESSAGES, "stream": True}) == openai_stream(
        False, model="gpt-test"
    )
    assert running.logs.access()[0]["input_tokens"] is None


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "counts"), [("claude", ANTHROPIC_COUNTS), ("gpt-test", OPENAI_COUNTS)])
def test_anthropic_client(gw: Running, stream: bool, model: str, counts: tuple[int, int]) -> None:
    """An Anthropic client on an Anthropic upstream (claude) and on an OpenAI one (gpt-test, translated)."""
    gw.logs.clear()
    client = gw.anthropic()
    if stream:
        with client.messages.stream(model=model, max_tokens=50, messages=MESSAGES) as s:
            assert s.get_final_text() == "Hello there!"
    else:
        message = client.messages.create(model=model, max_tokens=50, messages=MESSAGES)
        assert message.usage.output_tokens == counts[1]
    assert _counts(gw) == counts


@pytest.mark.parametrize("stream", [False, True])
def test_openai_client_anthropic_upstream(gw: Running, stream: bool) -> None:
    gw.logs.clear()
    result: Any = gw.openai().chat.completions.create(model="claude", messages=MESSAGES, stream=stream)
    if stream:
        assert "".join(c.choices[0].delta.content or "" for c in result if c.choices) == "Hello there!"
    assert _counts(gw) == ANTHROPIC_COUNTS


# -- the pure readers, under arbitrary read boundaries ------------------------------------------


def _split(data: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 23)
        out.append(data[i : i + n])
        i += n
    return out


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_stripper_and_scanner_splits(seed: int, newline: bytes) -> None:
    rng = random.Random(seed)
    asked = openai_stream(True).replace(b"\n", newline)
    stripper = OpenAIUsageStripper()
    out = b"".join(stripper.feed(part) for part in _split(asked, rng)) + stripper.close()
    assert out == openai_stream(False).replace(b"\n", newline)
    expected = {"input_tokens": 11, "output_tokens": 7, "cache_read_tokens": 0, "cache_write_tokens": 0}
    assert stripper.usage == expected
    if newline == b"\r":
        return  # the scanner (which only looks) reads LF and CRLF line ends, as every provider frames
    for wire, data, want in (
        ("openai", asked, expected),
        ("anthropic", anthropic_stream().replace(b"\n", newline), None),
    ):
        scanner = StreamUsageScanner(wire)  # type: ignore[arg-type]
        for part in _split(data, rng):
            scanner.feed(part)
        scanner.close()
        if want is not None:
            assert scanner.usage == want
        else:
            assert scanner.usage == {
                "input_tokens": 15,
                "output_tokens": 9,
                "cache_read_tokens": 2,
                "cache_write_tokens": 0,
            }


def test_stripper_leaves_content_that_mentions_usage() -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": '"usage": null, "usage":{"x":1}'}}], "usage": None}
    line = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    stripper = OpenAIUsageStripper()
    out = stripper.feed(line) + stripper.close()
    assert json.loads(out[6:]) == {"choices": chunk["choices"]}
    assert stripper.usage is None


def test_responses_api_usage() -> None:
    usage = {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 3}
    assert usage_from_json("responses", json.dumps({"object": "response", "usage": usage}).encode()) == {
        "input_tokens": 5,
        "output_tokens": 3,
        "cache_read_tokens": 2,
        "cache_write_tokens": 0,
    }
    scanner = StreamUsageScanner("responses")
    scanner.feed(b'event: response.completed\ndata: {"type":"response.completed","response":{"usage":')
    scanner.feed(json.dumps(usage).encode() + b"}}\n\n")
    scanner.close()
    assert scanner.usage is not None and scanner.usage["output_tokens"] == 3
    assert usage_from_json("openai", b"not json") is None
    assert usage_from_json("anthropic", b'{"usage": null}') is None


def test_stripper_whole_events_take_the_short_way_to_the_same_bytes() -> None:
    # OpenAI's own framing: compact JSON, one data line per event, LF. Reads of whole events skip the
    # parser (usage:null cut from each chunk's end); anything else in a read goes the parser's way.
    def sse(obj: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

    head = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    chunks = [{**head, "choices": [{"index": 0, "delta": {"content": w}}]} for w in ("a", '"usage":null}', "b")]
    asked = [sse({**c, "usage": None}) for c in chunks]
    asked.append(sse({**head, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}))
    asked.append(b"data: [DONE]\n\n")
    want = b"".join(sse(c) for c in chunks) + b"data: [DONE]\n\n"
    for reads in (asked, [b"".join(asked)], [asked[0] + asked[1], b"".join(asked[2:])], [b": hi\n\n", *asked]):
        stripper = OpenAIUsageStripper()
        assert b"".join(stripper.feed(r) for r in reads) + stripper.close() == want
        assert stripper.usage == {
            "input_tokens": 3,
            "output_tokens": 2,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
        }
    # A nested usage:null is not the chunk's own member: left as it is (the parser's way).
    nested = sse({**head, "choices": [{"index": 0, "delta": {"x": {"a": 1, "usage": None}}}]})
    assert OpenAIUsageStripper().feed(nested) == nested


_EVENT_PIECES = st.sampled_from(
    [b"data: ", b'{"a":1', b',"usage":null', b'"usage"', b"}", b"\r", b"\n", b" ", b"x", b'"model"']
)


@settings(max_examples=400, deadline=None)
@given(body=st.lists(_EVENT_PIECES, max_size=12).map(b"".join))
def test_a_one_event_read_is_stripped_as_the_parser_strips_it(body: bytes) -> None:
    # The fast path (one read, whole events) and the parser's (the same bytes in two reads) agree.
    chunk = body + b"\n\n"
    if chunk.count(b"\n") != 2:
        return
    whole, parsed = OpenAIUsageStripper(), OpenAIUsageStripper()
    out = whole.feed(chunk)
    split = parsed.feed(chunk[:1]) + parsed.feed(chunk[1:])
    if out != split:  # the parser writes some events again in another framing: then only the content counts
        assert chunk.startswith(b"data: ") is False or b"\r" in chunk or chunk.endswith(b"data: \n\n")
    assert whole.usage == parsed.usage


_TAIL_CASES = [
    b'{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}',
    b'{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":4}, "service_tier":"default","fp":"f"}\n',
    b'{"content":"\xc3\xa9","usage":{"prompt_tokens":3,"completion_tokens":4}}',
    b'{"usage":{"prompt_tokens":3}, "usage": {"prompt_tokens": 5}}',
    b'{"usage":null}',
]
_NOT_TOP_LEVEL = [
    b'{"id":"x","a":{"usage":{"prompt_tokens":3}}}',
    b'{"id":"x","a":{"usage":{"prompt_tokens":3}},"b":1}',
    b'{"content":"a \\"usage\\": {\\"prompt_tokens\\":9}}"}',
    b'{"content":"say \\"usage": {"prompt_tokens":9}}',
    b'[{"usage":{"prompt_tokens":3}}]',
    b'{"usage":{"prompt_tokens":3}',
    b'{"usage":{"prompt_tokens":3}} x',
    b' {"usage" : {"prompt_tokens":3} , "z" : [1,{"usage":2}] } ',
    b'{"usage":{"prompt_tokens":3},"x":"\xc3\xa9"}',
]


def _parsed_usage(body: bytes) -> Any:
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    return obj.get("usage") if isinstance(obj, dict) else None


@pytest.mark.parametrize("body", _TAIL_CASES + _NOT_TOP_LEVEL)
def test_usage_found_from_the_end_is_the_top_level_usage(body: bytes) -> None:
    # The scan from the end answers only when the member it finds is the outer object's: the same as a full parse.
    from asgi_llmroute.formats.usage_scan import _tail_usage

    found = _tail_usage(b'"usage"', body)
    assert found == _parsed_usage(body) if body in _TAIL_CASES else found is ...
    expected = _parsed_usage(body)
    assert usage_from_json("openai", body) == (usage_from_json("openai", json.dumps({"usage": expected}).encode()))


@settings(max_examples=200, deadline=None)
@given(
    before=st.dictionaries(
        st.sampled_from(["id", "usage", "model", "content"]),
        st.recursive(
            st.none() | st.integers() | st.text(max_size=8) | st.just("usage"),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["usage", "a"]), inner, max_size=2)
            ),
            max_leaves=6,
        ),
        max_size=4,
    ),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]),
)
def test_usage_from_the_end_agrees_with_a_full_parse(before: dict[str, Any], separators: tuple[str, str]) -> None:
    from asgi_llmroute.formats.usage_scan import _tail_usage

    body = json.dumps(before, separators=separators, ensure_ascii=False).encode()
    found = _tail_usage(b'"usage"', body)
    assert found is ... or found == _parsed_usage(body)
