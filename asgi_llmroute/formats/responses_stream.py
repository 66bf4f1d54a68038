"""OpenAI ``chat.completion.chunk`` stream -> OpenAI Responses event stream.

A state machine over the chat deltas: reasoning, text (and refusal) and each tool call become
output items, announced with ``response.output_item.added``, filled by ``*.delta`` events and
finished with ``*.done`` events; the stream opens with ``response.created`` /
``response.in_progress`` and always ends with exactly one of ``response.completed``,
``response.incomplete`` or ``response.failed`` (clients such as Codex wait for one of them).
Every event is ``event: <type>`` + one ``data:`` line with an increasing ``sequence_number``; there
is no ``[DONE]``.
"""

from __future__ import annotations

from typing import Any

from ._json import dumps
from .responses_items import StreamItem, StreamPart
from .responses_response import id_base, item_id, response_object, responses_usage, status_for
from .sse import sse_head
from .stream_base import ChatChunkStream, StreamProtocolError, tool_call_fragment, tool_call_fragments
from .thinking_carry import encode_thinking
from .tools import ToolNameMap, new_tool_id
from .types import TranslationOptions
from .web_search import responses_annotation

_RATE_LIMITED = frozenset({"rate_limit_exceeded", "rate_limit_error", "requests", "tokens"})


class ChatToResponsesStream(ChatChunkStream):
    """Chat Completions chunks in, Responses named events out (``event:`` = ``data.type``)."""

    __slots__ = (
        "_echo",
        "_tool_names",
        "_clock",
        "_max",
        "_seq",
        "_base",
        "_response_id",
        "_created",
        "_model",
        "_items",
        "_current",
        "_calls",
        "_last_call",
        "_size",
        "_searches",
        "_chars",
    )

    def __init__(
        self,
        echo: dict[str, Any],
        options: TranslationOptions,
        tool_names: ToolNameMap | None = None,
    ) -> None:
        super().__init__(options)
        self._echo = echo
        self._tool_names = tool_names
        self._clock = options.clock
        self._max = options.max_event_bytes
        self._seq = 0
        self._base = ""
        self._response_id = ""
        self._created = 0
        self._model = ""
        self._items: list[StreamItem] = []
        self._current: StreamItem | None = None  # the open message or reasoning item
        self._calls: dict[Any, StreamItem] = {}  # open function calls by chunk index (or id)
        self._last_call: Any = None
        self._size = 0  # bytes of output kept for the final events (bounded by max_event_bytes)
        self._searches: dict[str, StreamItem] = {}  # web_search_call items by the upstream's search id
        self._chars = 0  # characters of chat content so far (annotations' offsets)

    # -- emission ------------------------------------------------------------------------------
    def _emit(self, out: list[str], type_: str, fields: str) -> None:
        """One event; ``fields`` are the JSON members after ``type`` (without braces)."""
        out.append(
            sse_head(type_) + '{"type":"' + type_ + '",' + fields + ',"sequence_number":' + str(self._seq) + "}\n\n"
        )
        self._seq += 1

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(
            self._echo,
            response_id=self._response_id,
            created_at=self._created,
            model=self._model,
            status=status,
            output=[item.snapshot() for item in self._items],
            **extra,
        )

    def _start(self, obj: dict[str, Any], out: list[str]) -> None:
        self._started = True
        self._base = id_base(obj.get("id"))
        self._response_id = "resp_" + self._base
        created, model = obj.get("created"), obj.get("model")
        self._created = created if isinstance(created, int) and not isinstance(created, bool) else self._clock()
        self._model = model if isinstance(model, str) else ""
        response = dumps(self._response("in_progress"))
        self._emit(out, "response.created", '"response":' + response)
        self._emit(out, "response.in_progress", '"response":' + response)

    def _error(self, out: list[str], message: str, type_: str | None) -> None:
        if not self._started:
            self._start({}, out)  # the SDK needs response.created before anything else
        for item in self._items:
            if item.status == "in_progress":
                item.status = "incomplete"
        code = "rate_limit_exceeded" if type_ in _RATE_LIMITED else "server_error"
        failed = self._response("failed", error={"code": code, "message": message})
        self._emit(out, "response.failed", '"response":' + dumps(failed))

    def _keep(self, text: str) -> None:
        self._size += len(text)
        if self._size > self._max:
            raise StreamProtocolError("upstream response is larger than the gateway accepts")

    # -- items -----------------------------------------------------------------------------------
    def _open(self, kind: str, prefix: str, out: list[str]) -> StreamItem:
        item = StreamItem(kind, item_id(prefix, self._base, len(self._items)), len(self._items))
        self._items.append(item)
        self._emit(out, "response.output_item.added", f'"output_index":{item.index},"item":' + dumps(item.snapshot()))
        return item

    def _close_current(self, out: list[str], status: str = "completed") -> None:
        item = self._current
        if item is None:
            return
        self._current = None
        if item.kind == "message":
            if item.parts:
                self._close_part(item, item.parts[-1], out)
        else:
            if item.text_part:
                text = "".join(item.chunks)
                done = item.prefix + ',"content_index":0,"text":' + dumps(text)
                self._emit(out, "response.reasoning_text.done", done)
                part = '{"type":"reasoning_text","text":' + dumps(text) + "}"
                self._emit(out, "response.content_part.done", item.prefix + ',"content_index":0,"part":' + part)
            if item.blocks:
                item.encrypted = encode_thinking(item.blocks)
        self._close_item(item, status, out)

    def _close_item(self, item: StreamItem, status: str, out: list[str]) -> None:
        item.status = status
        self._emit(out, "response.output_item.done", f'"output_index":{item.index},"item":' + dumps(item.snapshot()))

    def _close_part(self, item: StreamItem, part: StreamPart, out: list[str]) -> None:
        if part.text is not None:
            return
        part.text = text = "".join(part.chunks)
        head = part.head
        if part.kind == "output_text":
            self._emit(out, "response.output_text.done", head + ',"text":' + dumps(text) + ',"logprobs":[]')
            annotations = dumps(part.annotations)
            body = '{"type":"output_text","text":' + dumps(text) + ',"annotations":' + annotations + ',"logprobs":[]}'
        else:
            self._emit(out, "response.refusal.done", head + ',"refusal":' + dumps(text))
            body = '{"type":"refusal","refusal":' + dumps(text) + "}"
        self._emit(out, "response.content_part.done", head + ',"part":' + body)

    def _reasoning_item(self, out: list[str]) -> StreamItem:
        item = self._current
        if item is None or item.kind != "reasoning":
            self._close_current(out)
            item = self._current = self._open("reasoning", "rs_", out)
        return item

    def _reasoning(self, text: str, out: list[str]) -> None:
        item = self._reasoning_item(out)
        if not item.text_part:
            item.text_part = True
            part = '{"type":"reasoning_text","text":""}'
            self._emit(out, "response.content_part.added", item.prefix + ',"content_index":0,"part":' + part)
        self._keep(text)
        item.chunks.append(text)
        self._emit(out, "response.reasoning_text.delta", item.prefix + ',"content_index":0,"delta":' + dumps(text))

    def _thinking_blocks(self, blocks: list[Any], out: list[str]) -> None:
        """Signed thinking (the chat ``thinking_blocks`` extension): kept for the item's encrypted_content."""
        item = self._reasoning_item(out)  # a redacted block may come without any reasoning text
        for block in blocks:
            if isinstance(block, dict):
                for key in ("thinking", "signature", "data"):
                    value = block.get(key)
                    if isinstance(value, str):
                        self._keep(value)
                item.blocks.append(block)

    def _text(self, kind: str, text: str, out: list[str]) -> None:
        item = self._current
        if item is None or item.kind != "message":
            self._close_current(out)
            item = self._current = self._open("message", "msg_", out)
        part = item.parts[-1] if item.parts else None
        if part is None or part.kind != kind:
            if part is not None:
                self._close_part(item, part, out)
            part = StreamPart(kind, item.prefix + ',"content_index":' + str(len(item.parts)), self._chars)
            item.parts.append(part)
            empty = '{"type":"output_text","text":"","annotations":[],"logprobs":[]}'
            if kind == "refusal":
                empty = '{"type":"refusal","refusal":""}'
            self._emit(out, "response.content_part.added", part.head + ',"part":' + empty)
        self._keep(text)
        part.chunks.append(text)
        if kind == "output_text":
            self._chars += len(text)
            self._emit(out, "response.output_text.delta", part.head + ',"logprobs":[],"delta":' + dumps(text))
        else:
            self._emit(out, "response.refusal.delta", part.head + ',"delta":' + dumps(text))

    def _tool_fragment(self, fragment: Any, out: list[str]) -> None:
        raw_id, key, function = tool_call_fragment(fragment, self._last_call)
        name = function.get("name")
        call = self._calls.get(key) if key is not None else None
        if call is None or (raw_id is not None and raw_id != call.raw_id):
            self._close_current(out)
            call = StreamItem("function_call", item_id("fc_", self._base, len(self._items)), len(self._items))
            call.raw_id = raw_id
            call.call_id = raw_id if raw_id is not None else new_tool_id("call_")
            call.name = name if isinstance(name, str) else ""
            call.tool_names = self._tool_names
            self._items.append(call)
            if key is None:
                key = ("anonymous", len(self._items))
            self._calls[key] = call
            self._emit(
                out, "response.output_item.added", f'"output_index":{call.index},"item":' + dumps(call.snapshot())
            )
        elif not call.name and isinstance(name, str):
            call.name = name  # some servers send the name after the first fragment
        self._last_call = key
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._keep(arguments)
            call.chunks.append(arguments)
            self._emit(out, "response.function_call_arguments.delta", call.prefix + ',"delta":' + dumps(arguments))

    def _annotations(self, annotations: list[Any], out: list[str]) -> None:
        """url_citation annotations of the text so far (the ``annotations`` of a chat delta)."""
        item = self._current
        part = item.parts[-1] if item is not None and item.kind == "message" and item.parts else None
        if part is None or part.kind != "output_text":
            return
        for raw in annotations:
            annotation = responses_annotation(raw, part.offset)
            if annotation is None:
                continue
            part.annotations.append(annotation)
            fields = f',"annotation_index":{len(part.annotations) - 1},"annotation":' + dumps(annotation)
            self._emit(out, "response.output_text.annotation.added", part.head + fields)

    def _search(self, call: Any, out: list[str]) -> None:
        """One entry of the ``web_search_calls`` extension: a web search's progress."""
        if not isinstance(call, dict) or not isinstance(call.get("id"), str):
            return
        status = call.get("status")
        item = self._searches.get(call["id"])
        if item is None:
            self._close_current(out)  # text after the search is a new message item
            item = self._open("web_search_call", "ws_", out)
            self._searches[call["id"]] = item
            self._emit(out, "response.web_search_call.in_progress", item.prefix)
        if item.status != "in_progress":
            return  # already done
        if isinstance(call.get("query"), str):
            item.name = call["query"]
        if status in ("searching", "completed") and not item.searching:
            item.searching = True
            self._emit(out, "response.web_search_call.searching", item.prefix)
        if status == "completed":
            self._emit(out, "response.web_search_call.completed", item.prefix)
            self._close_item(item, "completed", out)
        elif status == "failed":
            self._close_item(item, "failed", out)

    def _close_all(self, status: str, out: list[str]) -> None:
        self._close_current(out, status)
        for search in self._searches.values():
            if search.status == "in_progress":  # never answered
                self._close_item(search, "failed", out)
        for call in self._calls.values():
            arguments = "".join(call.chunks)
            self._emit(out, "response.function_call_arguments.done", call.prefix + ',"arguments":' + dumps(arguments))
            self._close_item(call, status, out)
        self._calls.clear()

    # -- chunk handling ------------------------------------------------------------------------
    def _delta(self, delta: dict[str, Any], out: list[str]) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self._reasoning(reasoning, out)
        blocks = delta.get("thinking_blocks")
        if isinstance(blocks, list) and blocks:
            self._thinking_blocks(blocks, out)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text("output_text", content, out)
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._text("refusal", refusal, out)
        for fragment in tool_call_fragments(delta):
            self._tool_fragment(fragment, out)
        searches = delta.get("web_search_calls")  # the gateway's extension (web_search.py)
        if isinstance(searches, list):
            for call in searches:
                self._search(call, out)
        annotations = delta.get("annotations")
        if isinstance(annotations, list) and annotations:
            self._annotations(annotations, out)

    def _finished(self, out: list[str]) -> None:
        reason = self._finish
        # Close the items now (usage may still follow): their status depends on the reason.
        self._close_all("incomplete" if status_for(reason)[1] else "completed", out)

    def _upstream_error(self, error: Any, out: list[str]) -> None:
        if isinstance(error, dict):
            message = error.get("message")
            kind = error.get("code") if error.get("code") in _RATE_LIMITED else error.get("type")
        else:
            message, kind = error, None
        text = message if isinstance(message, str) and message else "upstream reported an error"
        self._error(out, text, kind if isinstance(kind, str) else None)
        self._done = True

    def _finish_stream(self, out: list[str]) -> None:
        if not self._started:
            self._error(out, "upstream stream ended before any chunk", None)
            self._done = True
            return
        status, incomplete = status_for(self._finish)
        self._close_all("incomplete" if incomplete else "completed", out)
        usage = responses_usage(self._chat_usage) if self._chat_usage is not None else None
        final = self._response(status, usage=usage, incomplete=incomplete)
        self._emit(
            out, "response.completed" if incomplete is None else "response.incomplete", '"response":' + dumps(final)
        )
        self._done = True

    def _eof(self, out: list[str]) -> None:
        if self._finish_seen:  # some servers omit [DONE]
            self._finish_stream(out)
            return
        self._error(out, "upstream stream ended without a finish_reason", None)
