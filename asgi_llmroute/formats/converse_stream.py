"""Decoded Bedrock stream events -> Anthropic stream events: the handler contract, the stream's
exceptions, and :class:`ConverseEvents` for ConverseStream (``messageStart``, ``contentBlockDelta``, ...).
The binary framing is :mod:`.eventstream`'s; tying a decoder to a handler is :mod:`.bedrock_stream`'s."""

from __future__ import annotations

from typing import Any

from .converse_response import anthropic_usage, exception_status, new_message_id, stop_reason
from .stream_base import StreamProtocolError
from .tools import ToolNames

__all__ = ["ConverseEvents", "Event", "EventHandler", "StreamException", "anthropic_error_event"]


class StreamException(Exception):
    """The upstream sent an exception frame (or an unmodeled error) inside the stream."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.status = exception_status(name)


#: One Anthropic stream event produced by a handler: (type, object, the upstream's own JSON text or None).
Event = tuple[str, dict[str, Any], "str | None"]


def _sse(kind: str, obj: dict[str, Any]) -> Event:
    return (kind, obj, None)


def anthropic_error_event(message: str, type_: str) -> Event:
    return _sse("error", {"type": "error", "error": {"type": type_, "message": message}})


class EventHandler:
    """Decoded events in, Anthropic SSE text out."""

    __slots__ = ("usage",)

    def __init__(self) -> None:
        #: Anthropic-shaped usage seen so far (merged), empty until reported.
        self.usage: dict[str, Any] = {}

    def event(self, event_type: str, payload: dict[str, Any], out: list[Event]) -> bool:  # pragma: no cover
        """Handle one event; returns True once the message is complete."""
        raise NotImplementedError

    def eof(self, out: list[Event]) -> None:  # pragma: no cover
        raise NotImplementedError


class _Block:
    __slots__ = ("index", "kind", "args_seen")

    def __init__(self, index: int, kind: str) -> None:
        self.index = index  # the gateway's own contiguous Anthropic index
        self.kind = kind  # text | thinking | redacted_thinking | tool_use
        self.args_seen = False


class ConverseEvents(EventHandler):
    """ConverseStream events -> Anthropic Messages SSE (``message_start`` ... ``message_stop``).

    Converse opens tool blocks with ``contentBlockStart`` but text and reasoning blocks with their
    first delta; block indexes are renumbered. ``messageStop`` is held until ``metadata`` (the only
    event with usage) so that ``message_delta`` carries both the stop reason and the usage.
    """

    __slots__ = (
        "_names",
        "_model",
        "_started",
        "_blocks",
        "_next",
        "_stop",
        "_stop_sequence",
        "_metadata",
        "_content",
        "warnings",
    )

    def __init__(self, names: ToolNames, model: str) -> None:
        super().__init__()
        self._names = names
        self._model = model
        self._started = False
        self._blocks: dict[Any, _Block] = {}
        self._next = 0
        self._stop: Any = None  # stopReason once messageStop arrived
        self._stop_sequence: str | None = None
        self._metadata = False
        self._content = False
        self.warnings: list[str] = []

    def _start(self, out: list[Event]) -> None:
        if self._started:
            return
        self._started = True
        message: dict[str, Any] = {
            "id": new_message_id(),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(_sse("message_start", {"type": "message_start", "message": message}))

    def _open(self, key: Any, kind: str, block: dict[str, Any], out: list[Event]) -> _Block:
        state = _Block(self._next, kind)
        self._next += 1
        self._blocks[key] = state
        self._content = True
        out.append(
            _sse("content_block_start", {"type": "content_block_start", "index": state.index, "content_block": block})
        )
        return state

    def _delta(self, state: _Block, delta: dict[str, Any], out: list[Event]) -> None:
        out.append(_sse("content_block_delta", {"type": "content_block_delta", "index": state.index, "delta": delta}))

    def _close(self, key: Any, out: list[Event]) -> None:
        state = self._blocks.pop(key, None)
        if state is None:
            return
        if state.kind == "tool_use" and not state.args_seen:
            self._delta(state, {"type": "input_json_delta", "partial_json": "{}"}, out)
        out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": state.index}))

    def event(self, event_type: str, payload: dict[str, Any], out: list[Event]) -> bool:
        if event_type == "contentBlockDelta":
            self._start(out)
            self._on_delta(payload, out)
        elif event_type == "contentBlockStart":
            self._start(out)
            key = payload.get("contentBlockIndex")
            start = payload.get("start")
            tool = start.get("toolUse") if isinstance(start, dict) else None
            if isinstance(tool, dict):
                tool_id, name = tool.get("toolUseId"), tool.get("name")
                if not isinstance(tool_id, str) or not isinstance(name, str):
                    raise StreamProtocolError("upstream toolUse start lacks toolUseId or name")
                self._close(key, out)
                block = {"type": "tool_use", "id": tool_id, "name": self._names.client(name), "input": {}}
                self._open(key, "tool_use", block, out)
            # other starts (toolResult, image) have no Anthropic stream form: their deltas are ignored
        elif event_type == "contentBlockStop":
            self._close(payload.get("contentBlockIndex"), out)
        elif event_type == "messageStart":
            self._start(out)
        elif event_type == "messageStop":
            self._start(out)
            self._stop = payload.get("stopReason") or "end_turn"
            fields = payload.get("additionalModelResponseFields")
            if isinstance(fields, dict) and isinstance(fields.get("stop_sequence"), str):
                self._stop_sequence = fields["stop_sequence"]
            for key in list(self._blocks):
                self._close(key, out)
            if self._metadata:
                return self._finish(out)
        elif event_type == "metadata":
            self.usage = anthropic_usage(payload.get("usage"))
            self._metadata = True
            if self._stop is not None:
                return self._finish(out)
        # unknown events: ignored (new members may appear in the union)
        return False

    def _on_delta(self, payload: dict[str, Any], out: list[Event]) -> None:
        key = payload.get("contentBlockIndex")
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            raise StreamProtocolError("upstream contentBlockDelta carries no delta")
        state = self._blocks.get(key)
        if "text" in delta:
            text = delta["text"]
            if not isinstance(text, str):
                raise StreamProtocolError("upstream text delta is not a string")
            if state is None:
                state = self._open(key, "text", {"type": "text", "text": ""}, out)
            if text and state.kind == "text":
                self._delta(state, {"type": "text_delta", "text": text}, out)
        elif "toolUse" in delta:
            tool = delta["toolUse"]
            fragment = tool.get("input") if isinstance(tool, dict) else None
            if not isinstance(fragment, str):
                raise StreamProtocolError("upstream toolUse delta carries no input")
            if state is None or state.kind != "tool_use":
                raise StreamProtocolError("upstream toolUse delta outside a tool block")
            if fragment:
                state.args_seen = True
                self._delta(state, {"type": "input_json_delta", "partial_json": fragment}, out)
        elif "reasoningContent" in delta:
            reasoning = delta["reasoningContent"]
            if not isinstance(reasoning, dict):
                raise StreamProtocolError("upstream reasoning delta is not an object")
            redacted = reasoning.get("redactedContent")
            if isinstance(redacted, str):
                if state is None:
                    self._open(key, "redacted_thinking", {"type": "redacted_thinking", "data": redacted}, out)
                return
            if state is None:
                state = self._open(key, "thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
            if state.kind != "thinking":
                return
            text = reasoning.get("text")
            if isinstance(text, str) and text:
                self._delta(state, {"type": "thinking_delta", "thinking": text}, out)
            signature = reasoning.get("signature")
            if isinstance(signature, str) and signature:
                self._delta(state, {"type": "signature_delta", "signature": signature}, out)
        # citation, toolResult, image deltas: no Anthropic stream field

    def _finish(self, out: list[Event]) -> bool:
        reason, warning = stop_reason(self._stop, self._content)
        if warning is not None:
            self.warnings.append(warning)
        if reason is None:
            raise StreamException("modelStreamErrorException", warning or "upstream returned no usable output")
        usage = dict(self.usage) if self.usage else {"output_tokens": 0}
        delta = {"stop_reason": reason, "stop_sequence": self._stop_sequence}
        out.append(_sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        out.append(_sse("message_stop", {"type": "message_stop"}))
        return True

    def eof(self, out: list[Event]) -> None:
        if self._stop is None:
            raise StreamProtocolError("upstream stream ended before messageStop")
        self._finish(out)  # messageStop without metadata: usage unknown
