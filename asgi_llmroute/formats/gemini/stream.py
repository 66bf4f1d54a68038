"""Gemini ``streamGenerateContent?alt=sse`` -> OpenAI chunks / Anthropic events.

Each Gemini event is a whole ``GenerateContentResponse`` carrying incremental text and whole
function calls; usage repeats, cumulative; ``finishReason`` comes on the last candidate chunk and
the stream ends at EOF (no terminator). A stream that ends without a ``finishReason`` was cut:
the client gets an error event, never a clean stop.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

from .._json import dumps, dumps_str, loads_object_str, loads_str, scan_once, scan_string
from ..accounting import openai_usage
from ..sse import SSEEvent
from ..stream_base import StreamProtocolError, StreamTranslator
from ..types import TranslationOptions, UpstreamProtocolError
from .errors import google_error_fields
from .ids import GeminiToolNames, mint_call_id, response_seed
from .response import Chunk, accounting, anthropic_client_usage, finish_pair, function_call, usage_as_anthropic

_CUT = "upstream stream ended without a finishReason"

# The start of the usual event up to its text's opening quote, as the Gemini API and Vertex AI space it.
_HEADS = ('{"candidates": [{"content": {"parts": [{"text": "', '{"candidates":[{"content":{"parts":[{"text":"')
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NUMBER_START = re.compile(r"(?<![0-9])[1-9][0-9]+")
# Keys whose second occurrence after the text could change what the event means (JSON: the last one wins).
_KEYS_AFTER_TEXT = ('"text"', '"content"', '"parts"', '"candidates"', '"error"', '"finishReason"')


def _chunk(obj: dict[str, Any]) -> tuple[Chunk | None, dict[str, Any] | None]:
    """(checked chunk, None) or (None, the error object of an in-band error event)."""
    if obj.get("error"):
        return None, obj
    try:
        return Chunk(obj), None
    except UpstreamProtocolError as exc:
        raise StreamProtocolError(exc.message) from None


def _mask(text: str) -> bytes:
    """``text`` as UTF-8 with every digit made 0 (bytes.translate: a str's translate is ~10x slower)."""
    return text.encode("utf-8", "surrogatepass").translate(_DIGITS_TO_ZERO)


def _load(data: str) -> dict[str, Any]:
    """An event's data as a JSON object (StreamProtocolError if it is not one)."""
    try:
        obj = loads_object_str(data)
    except (ValueError, RecursionError):
        raise StreamProtocolError("upstream sent an event that is not valid JSON") from None
    if type(obj) is dict:
        return obj
    if isinstance(obj, list) and len(obj) == 1:  # some Google front ends wrap objects in an array
        obj = obj[0]
    if not isinstance(obj, dict):
        raise StreamProtocolError("upstream sent an event that is not a JSON object")
    return obj


class _GeminiStream(StreamTranslator):
    __slots__ = (
        "_names",
        "_seed",
        "_started",
        "_finish",
        "_calls",
        "_saw_text",
        "_meta",
        "_usage",
        "_blocked",
        "_text_head",
        "_shape",
        "_span",
        "_leads",
    )

    def __init__(self, names: GeminiToolNames, options: TranslationOptions) -> None:
        super().__init__(options)
        self._names = names
        self._seed = ""
        self._started = False
        self._finish: Any = None
        self._calls = 0
        self._saw_text = False
        # The latest usageMetadata (cumulative), or its JSON text: read at the end.
        self._meta: dict[str, Any] | str | None = None
        self._usage: dict[str, Any] = usage_as_anthropic(None)
        self._blocked = False
        # The shape of the usual event learnt from one that was parsed whole (see _learn).
        self._text_head = ""
        self._shape: bytes | None = None
        self._span: tuple[int, int] | None = None
        self._leads: Any = None

    def _fail_into(self, out: list[str], message: str) -> None:
        self._settle_usage()
        super()._fail_into(out, message)

    def _settle_usage(self) -> None:
        meta = self._meta
        if meta is not None:
            self._usage = usage_as_anthropic(loads_str(meta) if type(meta) is str else meta)
            self.usage = accounting(self._usage)

    def _translate_read(self, chunk: bytes, out: list[str]) -> None:
        # The events' data is all a Gemini stream carries (no event types): the parser's data-only way.
        for data in self._parser.feed_data(chunk):
            if data:
                self._data(data, out)
                if self._done:
                    break

    def _event(self, event: SSEEvent, out: list[str]) -> None:
        if event.data:
            self._data(event.data, out)

    def _data(self, data: str, out: list[str]) -> None:
        """One event. The usual one (one candidate, one text part, no finishReason) of a shape seen before
        is read without parsing its JSON; the usual one of a new shape is parsed and read inline; any other
        goes through :class:`Chunk`. The result is the same."""
        shape = self._shape
        if shape is not None and data.startswith(self._text_head):
            try:
                text, end = scan_string(data, len(self._text_head), True)
            except ValueError:
                pass  # not a valid string: the parse below says so
            else:
                rest = data[end:]
                leads = self._leads
                if _mask(rest) == shape and (leads is None or "0" not in leads(rest)):
                    span = self._span
                    if span is not None:
                        self._meta = rest[span[0] : span[1]]
                    if text:
                        self._saw_text = True
                        self._text(text, out)
                    return
        obj = _load(data)
        candidates = obj.get("candidates")
        if self._started and type(candidates) is list and len(candidates) == 1 and not obj.get("error"):
            candidate = candidates[0]
            content = candidate.get("content") if type(candidate) is dict else None
            parts = content.get("parts") if type(content) is dict else None
            if type(parts) is list and len(parts) == 1:
                part = parts[0]
                value = part.get("text") if type(part) is dict and len(part) == 1 else None
                if type(value) is str:
                    text = value
                    usage = obj.get("usageMetadata")
                    if type(usage) is dict:
                        self._meta = usage
                    if text:
                        self._saw_text = True
                        self._text(text, out)
                    finish = candidate.get("finishReason")
                    if finish is None:
                        self._learn(data, usage)
                    elif self._finish is None:
                        self._finish = finish
                    return
        self._full(obj, out)

    def _learn(self, data: str, usage: Any) -> None:
        """Remember the shape of a usual event that parsed: the text after its text part (its "rest") with
        every digit made 0, where its usage object is, and where a number of two or more digits starts.

        A later event with the same head, a valid JSON string for its text and a rest of the same shape
        whose numbers do not start with 0 where this one's did not, is a valid JSON text that means the
        same but for the text and the digits: one candidate with that one text part, no finishReason, no
        error, and usage (if any) the JSON object at the same place. JSON lets a key repeat (the last one
        counts), so a rest that names a key the reading depends on is not learnt.
        """
        for head in _HEADS:
            if data.startswith(head):
                break
        else:
            return
        _, end = scan_string(data, len(head), True)  # valid: the event parsed
        rest = data[end:]
        if any(key in rest for key in _KEYS_AFTER_TEXT):
            return
        span = None
        if type(usage) is dict:
            if rest.count('"usageMetadata"') != 1:
                return
            start = rest.index(":", rest.index('"usageMetadata"') + 15) + 1
            while rest[start] in " \t\n\r":
                start += 1
            value, stop = scan_once(rest, start)
            if value != usage:  # pragma: no cover - the one "usageMetadata" of the rest is the event's
                return
            span = (start, stop)
        positions = [m.start() for m in _NUMBER_START.finditer(rest)]
        self._text_head, self._shape, self._span = head, _mask(rest), span
        self._leads = itemgetter(*positions) if positions else None

    def _full(self, obj: dict[str, Any], out: list[str]) -> None:
        chunk, error = _chunk(obj)
        if chunk is None:
            assert error is not None
            message, status, _ = google_error_fields(0, error)
            self._settle_usage()
            self._upstream_error(out, message, status)
            self._done = True
            return
        if not self._started:
            self._seed = response_seed(chunk.response_id)
            self._start(chunk, out)
            self._started = True
        if chunk.usage is not None:
            self._meta = chunk.usage
        for part in chunk.parts:
            call = function_call(part) if "functionCall" in part else None
            if call is not None:
                call_id = mint_call_id(self._prefix(), self._seed, self._calls, part.get("thoughtSignature"))
                self._tool(call_id, self._names.client(call[0]), dumps(call[1]), out)
                self._calls += 1
                continue
            text = part.get("text")
            if type(text) is str and text:
                if part.get("thought") is True:
                    self._thought(text, out)
                else:
                    self._saw_text = True
                    self._text(text, out)
        if chunk.blocked and not chunk.parts:
            self._blocked = True
        if chunk.finish is not None and self._finish is None:
            self._finish = chunk.finish

    def _eof(self, out: list[str]) -> None:
        self._settle_usage()
        if not self._started:
            self._error(out, "upstream stream ended before any event", "api_error")
            return
        if self._finish is None and not self._blocked:
            self._error(out, _CUT, "api_error")
            return
        if self._blocked and self._finish is None:
            pair = ("content_filter", "refusal")
        else:
            try:
                pair = finish_pair(self._finish, saw_tool=self._calls > 0, saw_content=self._saw_text)
            except UpstreamProtocolError as exc:
                self._error(out, exc.message, "api_error")
                return
        self._end(pair, out)

    # Client-format hooks.
    def _prefix(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _start(self, chunk: Chunk, out: list[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _text(self, text: str, out: list[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _thought(self, text: str, out: list[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _tool(self, call_id: str, name: str, arguments: str, out: list[str]) -> None:  # pragma: no cover
        raise NotImplementedError

    def _end(self, pair: tuple[str, str], out: list[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _upstream_error(self, out: list[str], message: str, status: str | None) -> None:  # pragma: no cover
        raise NotImplementedError


class GeminiToOpenAIStream(_GeminiStream):
    """Gemini events in, ``chat.completion.chunk`` events out, ``[DONE]`` at the end."""

    __slots__ = ("_include_usage", "_reasoning", "_clock", "_head", "_prefix_text", "_suffix")

    def __init__(self, names: GeminiToolNames, options: TranslationOptions, *, include_usage: bool = False) -> None:
        super().__init__(names, options)
        self._include_usage = include_usage
        self._reasoning = options.reasoning_content
        self._clock = options.clock
        self._head: dict[str, Any] = {}
        self._prefix_text = ""
        usage_null = ',"usage":null' if include_usage else ""
        self._suffix = ',"logprobs":null,"finish_reason":null}]' + usage_null + "}\n\n"

    def _prefix(self) -> str:
        return "call_"

    def _emit(self, delta: str, out: list[str]) -> None:
        out.append(self._prefix_text + delta + self._suffix)

    def _start(self, chunk: Chunk, out: list[str]) -> None:
        response_id = chunk.response_id
        self._head = {
            "id": response_id if isinstance(response_id, str) and response_id else "chatcmpl-" + self._seed[:24],
            "object": "chat.completion.chunk",
            "created": self._clock(),
            "model": chunk.model,
        }
        self._prefix_text = "data: " + dumps(self._head)[:-1] + ',"choices":[{"index":0,"delta":'
        self._emit('{"role":"assistant","content":""}', out)

    def _text(self, text: str, out: list[str]) -> None:
        self._emit('{"content":' + dumps_str(text) + "}", out)

    def _thought(self, text: str, out: list[str]) -> None:
        if self._reasoning:
            self._emit('{"reasoning_content":' + dumps_str(text) + "}", out)

    def _tool(self, call_id: str, name: str, arguments: str, out: list[str]) -> None:
        call = {
            "index": self._calls,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        self._emit('{"tool_calls":[' + dumps(call) + "]}", out)

    def _end(self, pair: tuple[str, str], out: list[str]) -> None:
        usage_null = ',"usage":null' if self._include_usage else ""
        out.append(self._prefix_text + '{},"logprobs":null,"finish_reason":"' + pair[0] + '"}]' + usage_null + "}\n\n")
        if self._include_usage:
            chunk = {**self._head, "choices": [], "usage": openai_usage(self._usage)}
            out.append("data: " + dumps(chunk) + "\n\n")
        out.append("data: [DONE]\n\n")

    def _upstream_error(self, out: list[str], message: str, status: str | None) -> None:
        self._error_with_code(out, message, "api_error", status)

    def _error(self, out: list[str], message: str, type_: str | None) -> None:
        self._error_with_code(out, message, type_ or "api_error", None)

    @staticmethod
    def _error_with_code(out: list[str], message: str, type_: str, code: str | None) -> None:
        error = {"message": message, "type": type_, "param": None, "code": code}
        out.append("data: " + dumps({"error": error}) + "\n\n")


_BLOCK_START = 'event: content_block_start\ndata: {"type":"content_block_start","index":'
_BLOCK_STOP = 'event: content_block_stop\ndata: {"type":"content_block_stop","index":'


class GeminiToAnthropicStream(_GeminiStream):
    """Gemini events in, Anthropic named events out (``message_start`` ... ``message_stop``)."""

    __slots__ = ("_thinking", "_next", "_open", "_delta")

    def __init__(self, names: GeminiToolNames, options: TranslationOptions, *, thinking: bool = False) -> None:
        super().__init__(names, options)
        self._thinking = thinking
        self._next = 0
        self._open = ""  # kind of the open block ("" when none)
        self._delta = ""

    def _prefix(self) -> str:
        return "toolu_"

    def _start(self, chunk: Chunk, out: list[str]) -> None:
        response_id = chunk.response_id
        msg_id = response_id if isinstance(response_id, str) and response_id else self._seed[:24]
        message = {
            "type": "message_start",
            "message": {
                "id": msg_id if msg_id.startswith("msg_") else "msg_" + msg_id,
                "type": "message",
                "role": "assistant",
                "model": chunk.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 0,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 0,
                },
            },
        }
        out.append("event: message_start\ndata: " + dumps(message) + "\n\n")

    def _open_block(self, kind: str, block: str, out: list[str]) -> None:
        self._close(out)
        index = str(self._next)
        self._next += 1
        out.append(_BLOCK_START + index + ',"content_block":' + block + "}\n\n")
        self._open = kind
        self._delta = 'event: content_block_delta\ndata: {"type":"content_block_delta","index":' + index + ',"delta":'

    def _close(self, out: list[str]) -> None:
        if self._open:
            out.append(_BLOCK_STOP + str(self._next - 1) + "}\n\n")
            self._open = ""

    def _text(self, text: str, out: list[str]) -> None:
        if self._open != "text":
            self._open_block("text", '{"type":"text","text":""}', out)
        out.append(self._delta + '{"type":"text_delta","text":' + dumps_str(text) + "}}\n\n")

    def _thought(self, text: str, out: list[str]) -> None:
        if not self._thinking:
            return
        if self._open != "thinking":
            self._open_block("thinking", '{"type":"thinking","thinking":"","signature":""}', out)
        out.append(self._delta + '{"type":"thinking_delta","thinking":' + dumps_str(text) + "}}\n\n")

    def _tool(self, call_id: str, name: str, arguments: str, out: list[str]) -> None:
        block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        self._open_block("tool_use", dumps(block), out)
        out.append(self._delta + '{"type":"input_json_delta","partial_json":' + dumps(arguments) + "}}\n\n")
        self._close(out)

    def _end(self, pair: tuple[str, str], out: list[str]) -> None:
        self._close(out)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": pair[1], "stop_sequence": None},
            "usage": anthropic_client_usage(self._usage),
        }
        out.append("event: message_delta\ndata: " + dumps(delta) + "\n\n")
        out.append('event: message_stop\ndata: {"type":"message_stop"}\n\n')

    def _upstream_error(self, out: list[str], message: str, status: str | None) -> None:
        from .errors import anthropic_type_for

        self._error(out, message, anthropic_type_for(0, status))

    def _error(self, out: list[str], message: str, type_: str | None) -> None:
        self._close(out)
        payload = {"type": "error", "error": {"type": type_ or "api_error", "message": message}}
        out.append("event: error\ndata: " + dumps(payload) + "\n\n")
