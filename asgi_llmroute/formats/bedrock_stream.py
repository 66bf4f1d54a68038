"""Bedrock streams -> the client's SSE stream.

Two layers, kept apart: :mod:`.eventstream` turns the binary body into messages, and the event
handlers work on decoded events (event type + JSON payload):

- :class:`~.converse_stream.ConverseEvents` (in :mod:`.converse_stream`): ConverseStream events
  (``messageStart``, ``contentBlockDelta``, ...) -> Anthropic SSE events;
- :class:`InvokeChunks` (here): InvokeModelWithResponseStream ``chunk`` events, whose base64 ``bytes``
  already are Anthropic stream events -> those events as SSE, unchanged.

:class:`BedrockStream` ties a decoder to a handler; for OpenAI clients the Anthropic SSE is fed
through the Anthropic -> OpenAI stream translator.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from ._json import dumps, loads
from .accounting import accounting_from_anthropic
from .converse_response import bedrock_anthropic_type
from .converse_stream import ConverseEvents, Event, EventHandler, StreamException, anthropic_error_event
from .eventstream import EventStreamDecoder, EventStreamError, EventStreamMessage
from .sse import SSEEvent
from .state import TranslationState
from .stream_base import StreamProtocolError, StreamTranslator, load_event_object
from .stream_to_openai import AnthropicToOpenAIStream
from .types import TranslationOptions

__all__ = ["BedrockStream", "InvokeChunks"]


class InvokeChunks(EventHandler):
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
            ).encode("utf-8", "backslashreplace")  # a lone surrogate: its JSON escape
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
        return "".join(chunks).encode("utf-8", "backslashreplace")  # a lone surrogate: its JSON escape

    def _sync_usage(self) -> None:
        if self._handler.usage:
            self.usage = accounting_from_anthropic(self._handler.usage)

    def feed(self, chunk: bytes) -> bytes:
        if self._done or not chunk:
            return b""
        return self._step(self._feed, chunk)

    def close(self) -> bytes:
        if self._done:
            return b""
        return self._step(self._close, b"", closing=True)

    def _feed(self, chunk: bytes, out: list[Event]) -> None:
        for message in self._decoder.feed(chunk):
            if self._message(message, out):
                self._done = True
                break

    def _close(self, _: bytes, out: list[Event]) -> None:
        self._decoder.close()
        self._handler.eof(out)

    def _step(self, work: Callable[[bytes, list[Event]], None], chunk: bytes, *, closing: bool = False) -> bytes:
        """Run ``work`` (feeding or closing) and emit what it produced; a failure becomes an error event."""
        out: list[Event] = []
        try:
            work(chunk, out)
        except EventStreamError as exc:
            self._fail_events(out, exc.message)
        except StreamException as exc:
            self._exception(exc, out)
        except StreamProtocolError as exc:
            self._fail_events(out, exc.message)
        except Exception:  # never let a malformed upstream escape as an exception
            self._fail_events(out, "upstream stream could not be translated")
        if closing:
            self._done = True
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
            payload = load_event_object(message.payload, "an event payload") if message.payload else {}
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

    def _error(self, out: list[Any], message: str, type_: str | None) -> None:
        out.append(anthropic_error_event(message, type_ or "api_error"))

    def _event(self, event: SSEEvent, out: list[Any]) -> None:  # pragma: no cover - not an SSE input
        raise NotImplementedError

    def _eof(self, out: list[Any]) -> None:  # pragma: no cover
        raise NotImplementedError
