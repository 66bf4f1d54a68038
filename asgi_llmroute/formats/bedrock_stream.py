"""Bedrock streams -> the client's SSE stream.

Two layers, kept apart: :mod:`.eventstream` turns the binary body into messages, and the event
handlers here work on decoded events (event type + JSON payload):

- :class:`ConverseEvents`: ConverseStream events (``messageStart``, ``contentBlockDelta``, ...)
  -> Anthropic SSE events;
- :class:`InvokeChunks`: InvokeModelWithResponseStream ``chunk`` events, whose base64 ``bytes``
  already are Anthropic stream events -> those events as SSE, unchanged.

:class:`BedrockStream` ties a decoder to a handler; for OpenAI clients the Anthropic SSE is fed
through the Anthropic -> OpenAI stream translator.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ._json import dumps, loads
from .accounting import accounting_from_anthropic
from .converse_response import (
    anthropic_usage,
    bedrock_anthropic_type,
    exception_status,
    new_message_id,
    stop_reason,
)
from .eventstream import EventStreamDecoder, EventStreamError, EventStreamMessage
from .sse import SSEEvent
from .state import TranslationState
from .stream_base import StreamProtocolError, StreamTranslator
from .stream_to_openai import AnthropicToOpenAIStream
from .tools import ToolNames
from .types import TranslationOptions

__all__ = ["BedrockStream", "ConverseEvents", "InvokeChunks", "StreamException"]


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


class _Handler:
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


class ConverseEvents(_Handler):
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


class InvokeChunks(_Handler):
    """InvokeModelWithResponseStream ``chunk`` events -> the Anthropic SSE events they carry.

    Each chunk's base64 ``bytes`` is one Anthropic stream event; it is relayed as its own
    ``data:`` line (re-serialised only if it spans lines). Usage comes from ``message_start`` and
    ``message_delta``; Bedrock's ``amazon-bedrock-invocationMetrics`` on ``message_stop`` fills in
    when those are missing.
    """

    __slots__ = ("_stopped",)

    def __init__(self) -> None:
        super().__init__()
        self._stopped = False

    def event(self, event_type: str, payload: dict[str, Any], out: list[Event]) -> bool:
        if event_type != "chunk":
            return False
        encoded = payload.get("bytes")
        if not isinstance(encoded, str):
            raise StreamProtocolError("upstream chunk carries no bytes")
        try:
            raw = base64.b64decode(encoded, validate=True)
            text = raw.decode()
            obj = loads(text)
        except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
            raise StreamProtocolError("upstream chunk is not a base64 JSON event") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise StreamProtocolError("upstream chunk is not an Anthropic stream event")
        kind: str = obj["type"]
        if kind == "message_start":
            message = obj.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                self.usage.update(usage)
        elif kind == "message_delta":
            usage = obj.get("usage")
            if isinstance(usage, dict):
                self.usage.update({k: v for k, v in usage.items() if v is not None})
        elif kind == "message_stop":
            self._metrics(obj.get("amazon-bedrock-invocationMetrics"))
        if "\n" in text or "\r" in text:
            text = dumps(obj)  # one event, one data line
        out.append((kind, obj, text))
        if kind == "message_stop":
            self._stopped = True
            return True
        return kind == "error"

    def _metrics(self, metrics: Any) -> None:
        if not isinstance(metrics, dict) or self.usage.get("output_tokens"):
            return
        for key, name in (
            ("input_tokens", "inputTokenCount"),
            ("output_tokens", "outputTokenCount"),
            ("cache_read_input_tokens", "cacheReadInputTokenCount"),
            ("cache_creation_input_tokens", "cacheWriteInputTokenCount"),
        ):
            value = metrics.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                self.usage[key] = value

    def eof(self, out: list[Event]) -> None:
        raise StreamProtocolError("upstream stream ended before message_stop")


class BedrockStream(StreamTranslator):
    """Translates a Bedrock ``application/vnd.amazon.eventstream`` body for the client.

    Same contract as every :class:`StreamTranslator`: ``feed``/``close``/``fail`` never raise;
    a corrupt frame (bad CRC, impossible length, cut mid-frame), an exception frame or a broken
    event ends the client stream with an error event in the client's format.
    """

    __slots__ = ("_decoder", "_handler", "_inner")

    def __init__(
        self,
        handler: ConverseEvents | InvokeChunks,
        client: str,
        ctx: TranslationState,
        options: TranslationOptions,
    ) -> None:
        super().__init__(options)
        self._decoder = EventStreamDecoder(options.max_event_bytes)
        self._handler = handler
        self._inner = AnthropicToOpenAIStream(ctx, options) if client == "openai" else None

    @property
    def warnings(self) -> list[str]:
        return getattr(self._handler, "warnings", [])

    def _emit(self, out: list[Event]) -> bytes:
        inner = self._inner
        if inner is None:  # Anthropic client: the events as SSE (InvokeModel's own JSON text kept)
            return "".join(
                "event: " + kind + "\ndata: " + (text if text is not None else dumps(obj)) + "\n\n"
                for kind, obj, text in out
            ).encode()
        chunks: list[str] = []  # OpenAI client: the event objects straight into the Anthropic translator
        for kind, obj, _ in out:
            try:
                inner.event_object(obj, kind, chunks)
            except StreamProtocolError as exc:
                inner._fail_into(chunks, exc.message)
            except Exception:
                inner._fail_into(chunks, "upstream stream could not be translated")
            if inner.done:
                self._done = True
                break
        return "".join(chunks).encode()

    def _sync_usage(self) -> None:
        if self._handler.usage:
            self.usage = accounting_from_anthropic(self._handler.usage)

    def feed(self, chunk: bytes) -> bytes:
        if self._done or not chunk:
            return b""
        out: list[Event] = []
        try:
            for message in self._decoder.feed(chunk):
                if self._message(message, out):
                    self._done = True
                    break
        except EventStreamError as exc:
            self._fail_events(out, exc.message)
        except StreamException as exc:
            self._exception(exc, out)
        except StreamProtocolError as exc:
            self._fail_events(out, exc.message)
        except Exception:  # never let a malformed upstream escape as an exception
            self._fail_events(out, "upstream stream could not be translated")
        self._sync_usage()
        done = self._done
        data = self._emit(out)
        if done and self._inner is not None and not self._inner.done:
            data += self._inner.close()
        return data

    def _message(self, message: EventStreamMessage, out: list[Event]) -> bool:
        headers = message.headers
        kind = headers.get(":message-type")
        if kind == "event":
            event_type = headers.get(":event-type")
            if not isinstance(event_type, str):
                raise StreamProtocolError("upstream event has no :event-type")
            try:
                payload = loads(message.payload) if message.payload else {}
            except (ValueError, RecursionError):
                raise StreamProtocolError("upstream event payload is not valid JSON") from None
            if not isinstance(payload, dict):
                raise StreamProtocolError("upstream event payload is not a JSON object")
            return self._handler.event(event_type, payload, out)
        if kind == "exception":
            name = headers.get(":exception-type")
            try:
                body = loads(message.payload)
            except (ValueError, RecursionError):
                body = None
            text = body.get("message") or body.get("Message") if isinstance(body, dict) else None
            raise StreamException(
                name if isinstance(name, str) else "internalServerException",
                text if isinstance(text, str) and text else "upstream reported an error in the stream",
            )
        if kind == "error":
            code = headers.get(":error-code")
            text = headers.get(":error-message")
            raise StreamException(
                code if isinstance(code, str) else "internalServerException",
                text if isinstance(text, str) and text else "upstream reported an error in the stream",
            )
        raise StreamProtocolError("upstream sent an event-stream message of unknown type")

    def _fail_events(self, out: list[Event], message: str) -> None:
        if not self._done:
            out.append(anthropic_error_event(message, "api_error"))
            self._done = True

    def _exception(self, exc: StreamException, out: list[Event]) -> None:
        if not self._done:
            self._error(out, exc.message, bedrock_anthropic_type(exc.status))
            self._done = True

    def close(self) -> bytes:
        if self._done:
            return b""
        out: list[Event] = []
        try:
            self._decoder.close()
            self._handler.eof(out)
        except EventStreamError as exc:
            self._fail_events(out, exc.message)
        except StreamException as exc:
            self._exception(exc, out)
        except StreamProtocolError as exc:
            self._fail_events(out, exc.message)
        except Exception:
            self._fail_events(out, "upstream stream could not be translated")
        self._done = True
        self._sync_usage()
        data = self._emit(out)
        if self._inner is not None and not self._inner.done:
            data += self._inner.close()
        return data

    def _error(self, out: list[Any], message: str, type_: str | None) -> None:
        out.append(anthropic_error_event(message, type_ or "api_error"))

    def _event(self, event: SSEEvent, out: list[Any]) -> None:  # pragma: no cover - not an SSE input
        raise NotImplementedError

    def _eof(self, out: list[Any]) -> None:  # pragma: no cover
        raise NotImplementedError
