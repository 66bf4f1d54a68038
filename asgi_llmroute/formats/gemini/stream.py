"""Gemini ``streamGenerateContent?alt=sse`` -> OpenAI chunks / Anthropic events.

Each Gemini event is a whole ``GenerateContentResponse`` carrying incremental text and whole
function calls; usage repeats, cumulative; ``finishReason`` comes on the last candidate chunk and
the stream ends at EOF (no terminator). A stream that ends without a ``finishReason`` was cut:
the client gets an error event, never a clean stop.
"""

from __future__ import annotations

from typing import Any

from .._json import dumps, dumps_str, loads_object_str, loads_str
from ..accounting import openai_usage
from ..sse import SSEEvent
from ..stream_base import StreamProtocolError, StreamTranslator
from ..types import TranslationOptions, UpstreamProtocolError
from .errors import google_error_fields
from .ids import GeminiToolNames, mint_call_id, response_seed
from .response import Chunk, accounting, anthropic_client_usage, finish_pair, function_call, usage_as_anthropic
from .stream_shape import EventShape

_CUT = "upstream stream ended without a finishReason"


def _chunk(obj: dict[str, Any]) -> tuple[Chunk | None, dict[str, Any] | None]:
    """(checked chunk, None) or (None, the error object of an in-band error event)."""
    if obj.get("error"):
        return None, obj
    try:
        return Chunk(obj), None
    except UpstreamProtocolError as exc:
        raise StreamProtocolError(exc.message) from None


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
        "_shape",
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
        # The shape of the usual event, learnt from one that was parsed whole.
        self._shape: EventShape | None = None

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
        if shape is not None:
            read = shape.read(data)
            if read is not None:
                text, usage_text = read
                if usage_text is not None:
                    self._meta = usage_text
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
                        self._shape = EventShape.learn(data, usage) or shape
                    elif self._finish is None:
                        self._finish = finish
                    return
        self._full(obj, out)

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
