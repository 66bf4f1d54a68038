"""The Gemini stream's hot path (data-only SSE cutting, the usual event read inline) against the full parse.

The reference translators below take the line-by-line SSE parser and `json.loads` + `Chunk` for every
event, as the stream did before it had a fast path; on any stream, split anyhow, well-formed or not, both
must write the same bytes, end the same way and count the same usage.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llmroute.formats import StreamTranslator, TranslationOptions
from asgi_llmroute.formats.gemini import GeminiTranslator
from asgi_llmroute.formats.gemini.response import Chunk
from asgi_llmroute.formats.gemini.stream import GeminiToAnthropicStream, GeminiToOpenAIStream
from asgi_llmroute.formats.stream_base import StreamProtocolError

OPTIONS = TranslationOptions(clock=lambda: 1700000000)


def _full_data(self: Any, data: str, out: list[str]) -> None:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        raise StreamProtocolError("upstream sent an event that is not valid JSON") from None
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, dict):
        raise StreamProtocolError("upstream sent an event that is not a JSON object")
    self._full(obj, out)


class FullOpenAI(GeminiToOpenAIStream):
    __slots__ = ()
    _translate_read = StreamTranslator._translate_read
    _data = _full_data


class FullAnthropic(GeminiToAnthropicStream):
    __slots__ = ()
    _translate_read = StreamTranslator._translate_read
    _data = _full_data


def _streams(client: str) -> tuple[StreamTranslator, StreamTranslator]:
    tr = GeminiTranslator(client, OPTIONS)  # type: ignore[arg-type]
    body: dict[str, Any] = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}
    body["stream"] = True
    if client == "openai":
        body["stream_options"] = {"include_usage": True}
        tr.request(body)
        return tr.stream(), FullOpenAI(tr.tool_names, OPTIONS, include_usage=True)
    body.update(max_tokens=100, thinking={"type": "enabled", "budget_tokens": 1024})
    tr.request(body)
    return tr.stream(), FullAnthropic(tr.tool_names, OPTIONS, thinking=True)


_text = st.text(st.characters(codec="utf-8"), max_size=8) | st.sampled_from(["", "é ☕", 'a"b\\c', "\n", "\u2028"])
_usage = st.fixed_dictionaries(
    {"promptTokenCount": st.integers(0, 50)},
    optional={"candidatesTokenCount": st.integers(-1, 50), "thoughtsTokenCount": st.integers(0, 9)},
) | st.just({"promptTokenCount": 9, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}]})
_part = st.one_of(
    st.builds(lambda t: {"text": t}, _text),
    st.builds(lambda t: {"text": t, "thought": True}, _text),
    st.builds(lambda t, s: {"text": t, "thoughtSignature": s}, _text, st.sampled_from(["c2ln", "x"])),
    st.builds(lambda n: {"functionCall": {"name": n, "args": {"q": 1}}}, st.sampled_from(["f", "g"])),
    st.sampled_from([{"functionCall": {"args": {}}}, {"text": 5}, {}, {"inlineData": {"data": "AA=="}}]),
)
_parts: Any = st.lists(_part, max_size=3) | st.sampled_from([None, "x", [1]])
_candidate = st.builds(
    lambda parts, finish, role: {
        **({"content": {"parts": parts, "role": role}} if parts is not None else {}),
        **({"finishReason": finish} if finish else {}),
        "index": 0,
    },
    _parts,
    st.sampled_from([None, None, None, "STOP", "MAX_TOKENS", "SAFETY", "MALFORMED_FUNCTION_CALL", 3]),
    st.sampled_from(["model", "model", "user"]),
)
_candidates: Any = st.lists(_candidate, min_size=1, max_size=2) | st.sampled_from([[], "x", [1], [{"content": 1}]])


@st.composite
def _event(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:  # not a chunk: bad JSON, another value, an in-band error, an array-wrapped chunk
        return draw(
            st.sampled_from(
                [
                    b"{not json",
                    b"[1, 2]",
                    b"5",
                    b"",
                    b'{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}',
                    b'[{"candidates": [{"content": {"parts": [{"text": "wrapped"}]}}]}]',
                    b'{"candidates": [{"content": {"parts": [{"text": "x"}]}}]}  ',
                    b' {"candidates": [{"content": {"parts": [{"text": "x"}]}}]}',
                    b'{"candidates": [{"content": {"parts": [{"text": "x"}]}}]}}',
                    b'{"promptFeedback": {"blockReason": "SAFETY"}}',
                    b'{"candidates": [{"content": {"parts": [{"text": "\\u00e9\\n"}]}}], "error": null}',
                    b'{"candidates": [{"content": {"parts": [{"text": "\\ud800"}]}}]}',
                    b'{"candidates": [{"content": {"parts": [{"text": "x"}]}}], "error": {"message": "m"}}',
                ]
            )
        )
    if kind < 5:  # the usual event: one candidate, one text part
        candidate: dict[str, Any] = {"content": {"parts": [{"text": draw(_text)}], "role": "model"}, "index": 0}
        candidates: Any = [candidate]
        if draw(st.integers(0, 5)) == 0:
            candidate["finishReason"] = draw(st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "OTHER"]))
    else:
        candidates = draw(_candidates)
    obj: dict[str, Any] = {"candidates": candidates}
    if draw(st.integers(0, 3)):
        obj["usageMetadata"] = draw(_usage | st.sampled_from([None, 7]))
    if draw(st.booleans()):
        obj["modelVersion"] = "gemini-2.5-flash"
    if draw(st.integers(0, 3)):
        obj["responseId"] = draw(st.sampled_from(["resp-1", "", 5]))
    separators = draw(st.sampled_from([(",", ": "), (",", ":"), (", ", ": ")]))
    text = json.dumps(obj, separators=separators, ensure_ascii=draw(st.booleans()))
    number = re.search(r"(?<=[:,] )[1-9][0-9]+|(?<=[:,])[1-9][0-9]+", text)
    if number and draw(st.integers(0, 5)) == 0:  # a number with a leading 0: not JSON, the same shape
        text = text[: number.start()] + "0" + text[number.start() + 1 :]
    return text.encode()


@st.composite
def _stream(draw: st.DrawFn) -> bytes:
    newline = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    out = [b"\xef\xbb\xbf"] if draw(st.integers(0, 9)) == 0 else []
    previous = b""
    for data in draw(st.lists(_event(), max_size=8)):
        if previous and draw(st.integers(0, 2)) == 0:  # the previous event with other digits (0 too)
            size = len(previous)
            digits = iter(draw(st.lists(st.sampled_from(b"0123456789"), min_size=size, max_size=size)))
            data = bytes(next(digits) if 0x30 <= c <= 0x39 else c for c in previous)
        previous = data
        framing = draw(st.integers(0, 12))
        if framing == 0:
            out.append(b": keep-alive" + newline)
        elif framing == 1:
            out.append(b"event: message" + newline)
        elif framing == 2:
            out.append(b"id: 3" + newline)
        if framing == 3 and len(data) > 2:  # the data on two lines (the JSON text keeps its meaning)
            out.append(b"data: " + data[:2] + newline + b"data:" + data[2:] + newline + newline)
        elif framing == 4:
            out.append(b"data:" + data + newline + newline)  # no space after the colon
        else:
            out.append(b"data: " + data + newline + newline)
    if draw(st.booleans()):
        out.append(draw(st.sampled_from([b"data: {", b"data: x\n", b"\n", b"\r", b"retry: 5\n\n"])))
    return b"".join(out)


def _run(stream: StreamTranslator, reads: list[bytes]) -> tuple[bytes, bool, Any]:
    out = b"".join(stream.feed(p) for p in reads) + stream.close()
    return out, stream.done, stream.usage


@settings(max_examples=400, deadline=None)
@given(_stream(), st.sampled_from(["openai", "anthropic"]), st.data())
def test_fast_path_writes_what_the_full_parse_writes(raw: bytes, client: str, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    reads = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    with mock.patch("uuid.uuid4", return_value=uuid.UUID(int=7)):
        fast, full = _streams(client)
        assert _run(fast, reads) == _run(full, reads)


def test_the_usual_stream_takes_the_fast_path() -> None:
    # The fast path is not dead code: the bench's stream goes through it (no Chunk after the first event).
    from bench.bodies import gemini_stream_events

    raw = b"".join(gemini_stream_events())
    fast, _ = _streams("openai")
    with mock.patch("asgi_llmroute.formats.gemini.stream.Chunk", wraps=Chunk) as chunk:
        out = fast.feed(raw) + fast.close()
    assert chunk.call_count == 1
    assert out.endswith(b"data: [DONE]\n\n")


def _usual(text: str, usage: str) -> bytes:
    return (
        b'data: {"candidates": [{"content": {"parts": [{"text": "%s"}],"role": "model"},"index": 0}],'
        b'"usageMetadata": {"promptTokenCount": %s},"modelVersion": "gemini-2.5-flash","responseId": "r-01"}\r\n\r\n'
        % (text.encode(), usage.encode())
    )


def test_learnt_shapes_take_other_digits_but_not_a_number_with_a_leading_zero() -> None:
    start = _usual("a", "31") + _usual("b", "32")  # the second is read whole and its shape learnt
    for tail, ok in [(_usual("cc", "47"), True), (_usual("c", "07"), False), (_usual("d", "00"), False)]:
        for client in ("openai", "anthropic"):
            fast, full = _streams(client)
            result = _run(fast, [start + tail])
            assert result == _run(full, [start + tail])
            assert (b"not valid JSON" not in result[0]) is ok, result
    fast, _ = _streams("openai")
    fast.feed(start + _usual("c", "47") + _usual("e", "50"))
    assert isinstance(fast, GeminiToOpenAIStream)
    assert fast._shape is not None and fast._meta == '{"promptTokenCount": 50}'  # the last, as JSON text


def test_shapes_not_learnt_and_events_not_of_the_shape() -> None:
    start = _usual("a", "31")
    repeated = start.replace(b',"index": 0}', b',"index": 0, "finishReason": null}')  # a key the reading uses
    named = start.replace(b'"r-01"', b'"usageMetadata"')  # "usageMetadata" twice in the rest
    bad_text = _usual("b", "32").replace(b'"b"', b'"\\x"')  # the learnt head, then no valid JSON string
    for second, learnt in [(repeated, False), (named, False), (start, True)]:
        fast, full = _streams("openai")
        raw = start + second + bad_text
        assert _run(fast, [raw]) == _run(full, [raw])
        fast, _ = _streams("openai")
        fast.feed(start + second)
        assert isinstance(fast, GeminiToOpenAIStream) and (fast._shape is not None) is learnt
