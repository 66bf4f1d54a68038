"""Common machinery of the two stream translators: SSE parsing, terminal state, error safety."""

from __future__ import annotations

from typing import Any

from ._json import loads, loads_str
from .accounting import accounting_from_openai
from .sse import SSEBufferOverflow, SSEEvent, SSEParser
from .types import TranslationOptions


class StreamProtocolError(Exception):
    """The upstream stream broke its protocol; the translator ends the client stream with an error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def load_event_object(data: str | bytes, what: str = "an event") -> dict[str, Any]:
    """One stream event's JSON data as an object, or StreamProtocolError saying what came (``what``: "a chunk")."""
    try:
        obj = loads_str(data) if type(data) is str else loads(data)
    except (ValueError, RecursionError):
        raise StreamProtocolError(f"upstream sent {what} that is not valid JSON") from None
    if not isinstance(obj, dict):
        raise StreamProtocolError(f"upstream sent {what} that is not a JSON object")
    return obj


def chat_chunk_parts(obj: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None, Any]:
    """A chunk's ``usage``, first choice's ``delta`` (None if empty) and ``finish_reason``, checked."""
    usage = obj.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise StreamProtocolError("upstream chunk usage is not an object")
    choices = obj.get("choices")
    if not choices:
        return usage, None, None
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise StreamProtocolError("upstream chunk choices are malformed")
    choice = choices[0]
    delta = choice.get("delta")
    if delta and not isinstance(delta, dict):
        raise StreamProtocolError("upstream chunk delta is not an object")
    return usage, delta or None, choice.get("finish_reason")


def tool_call_fragments(delta: dict[str, Any]) -> list[Any]:
    """A chunk delta's ``tool_calls`` (checked to be a list), or none."""
    calls = delta.get("tool_calls")
    if not calls:
        return []
    if not isinstance(calls, list):
        raise StreamProtocolError("upstream tool_calls is not an array")
    return calls


def tool_call_fragment(fragment: Any, last_key: Any) -> tuple[str | None, Any, dict[str, Any]]:
    """One ``tool_calls`` fragment, checked: its id (or None), the key of the call it belongs to, its ``function``.

    The key is the fragment's ``index``; without one (seen on some compatible servers) the call's id,
    else ``last_key``, the call the previous fragment belonged to.
    """
    if not isinstance(fragment, dict):
        raise StreamProtocolError("upstream tool call fragment is not an object")
    raw_id = fragment.get("id")
    raw_id = raw_id if isinstance(raw_id, str) and raw_id else None
    key: Any = fragment.get("index")
    if not isinstance(key, int) or isinstance(key, bool):
        key = ("id", raw_id) if raw_id is not None else last_key
    function = fragment.get("function")
    return raw_id, key, function if isinstance(function, dict) else {}


class StreamTranslator:
    """Translates one upstream ``text/event-stream`` body into the client's stream format.

    ``feed()`` takes network reads of any size and returns the bytes to send now; ``close()`` is
    called at upstream EOF (a stream cut short ends with an error event). Neither ever raises: broken
    upstream input ends the client stream with a client-format error event, after which
    :attr:`done` is true and further input is ignored.
    """

    __slots__ = ("_parser", "_done", "usage")

    def __init__(self, options: TranslationOptions) -> None:
        self._parser = SSEParser(options.max_event_bytes)
        self._done = False
        #: Token counts seen so far (``input_tokens`` incl. cache, ``output_tokens``,
        #: ``cache_read_tokens``, ``cache_write_tokens``), None until the upstream reported any.
        self.usage: dict[str, int] | None = None

    @property
    def done(self) -> bool:
        """A terminal event (end of message or error) has been emitted."""
        return self._done

    def feed(self, chunk: bytes) -> bytes:
        """Translate one upstream read; returns the client bytes to send now (may be empty)."""
        if self._done or not chunk:
            return b""
        out: list[str] = []
        try:
            self._translate_read(chunk, out)
        except SSEBufferOverflow:
            self._fail_into(out, "upstream sent an event larger than the gateway accepts")
        except StreamProtocolError as exc:
            self._fail_into(out, exc.message)
        except Exception:  # never let a malformed upstream escape as an exception
            self._fail_into(out, "upstream stream could not be translated")
        return "".join(out).encode("utf-8", "backslashreplace")  # a lone surrogate: its JSON escape

    def close(self) -> bytes:
        """Upstream EOF: finish the client stream, with an error event if it was incomplete."""
        if self._done:
            return b""
        out: list[str] = []
        try:
            self._parser.close()
            self._eof(out)
        except StreamProtocolError as exc:
            self._fail_into(out, exc.message)
        except Exception:
            self._fail_into(out, "upstream stream could not be translated")
        self._done = True
        return "".join(out).encode("utf-8", "backslashreplace")  # a lone surrogate: its JSON escape

    def _fail_into(self, out: list[str], message: str) -> None:
        if not self._done:
            self._error(out, message, None)
            self._done = True

    def _translate_read(self, chunk: bytes, out: list[str]) -> None:
        """Parse one read and translate the events it completed, until a terminal one."""
        for event in self._parser.feed(chunk):
            self._event(event, out)
            if self._done:
                break

    # Direction-specific hooks.
    def _event(self, event: SSEEvent, out: list[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _eof(self, out: list[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _error(self, out: list[str], message: str, type_: str | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class ChatChunkStream(StreamTranslator):
    """The loop over an OpenAI ``chat.completion.chunk`` stream, shared by every translator that reads one.

    It parses each chunk, reports upstream errors, keeps the usage (last one wins) and the first
    ``finish_reason``; subclasses write the client's events in the hooks: :meth:`_start` (first chunk),
    :meth:`_delta`, :meth:`_finished` (first ``finish_reason``), :meth:`_upstream_error` and
    :meth:`_finish_stream` (``[DONE]``).
    """

    __slots__ = ("_started", "_finish", "_finish_seen", "_chat_usage")

    def __init__(self, options: TranslationOptions) -> None:
        super().__init__(options)
        self._started = False
        self._finish: Any = None
        self._finish_seen = False
        self._chat_usage: dict[str, Any] | None = None

    def _event(self, event: SSEEvent, out: list[str]) -> None:
        data = event.data
        if data == "[DONE]":
            self._finish_stream(out)
            return
        obj = load_event_object(data, "a chunk")
        error = obj.get("error")
        if error:
            self._upstream_error(error, out)
            return
        usage, delta, reason = chat_chunk_parts(obj)
        if not self._started:
            if delta is None and reason is None and usage is None:
                # An annotation frame (Azure's prompt_filter_results, content-filter results): no id,
                # model or content of the answer yet, so it does not start the client's stream.
                return
            self._start(obj, out)
        if usage is not None:
            self._chat_usage = usage  # last one wins
            self.usage = accounting_from_openai(usage)
        if delta is not None:
            self._delta(delta, out)
        if reason is not None and not self._finish_seen:
            self._finish = reason
            self._finish_seen = True
            self._finished(out)

    # Hooks.
    def _start(self, obj: dict[str, Any], out: list[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _delta(self, delta: dict[str, Any], out: list[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finished(self, out: list[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _upstream_error(self, error: Any, out: list[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finish_stream(self, out: list[str]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
