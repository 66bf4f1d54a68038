"""OpenAI ``chat.completion.chunk`` stream -> Anthropic Messages stream."""

from __future__ import annotations

from typing import Any

from ._json import dumps
from .accounting import anthropic_usage
from .errors import openai_error_to_anthropic_type
from .mapping import stop_reason
from .sse import sse_frame, sse_head
from .state import TranslationState
from .stream_base import ChatChunkStream, StreamProtocolError, tool_call_fragment, tool_call_fragments
from .tools import new_tool_id, sanitize_id
from .types import TranslationOptions

_EMPTY_USAGE = '{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}'
_START = sse_head("content_block_start")
_DELTA = sse_head("content_block_delta") + '{"type":"content_block_delta","index":'
_STOP = sse_head("content_block_stop") + '{"type":"content_block_stop","index":'
_MESSAGE_STOP = sse_frame('{"type":"message_stop"}', "message_stop")
_MESSAGE_DELTA = sse_head("message_delta")


class _Tool:
    __slots__ = ("block", "raw_id", "id", "name", "args", "size")

    def __init__(self, block: int, raw_id: str | None, tool_id: str, name: str) -> None:
        self.block = block  # Anthropic block index (-1 while buffered)
        self.raw_id = raw_id  # id as the upstream sent it, to detect a new call reusing an index
        self.id = tool_id
        self.name = name
        self.args: list[str] = []  # buffered mode only
        self.size = 0


class OpenAIToAnthropicStream(ChatChunkStream):
    """OpenAI chunks in, Anthropic named events out (``event:`` = ``data.type``, no ``[DONE]``)."""

    __slots__ = (
        "_ctx",
        "_thinking",
        "_buffered",
        "_max",
        "_next_block",
        "_open",
        "_open_kind",
        "_delta_prefix",
        "_tools",
        "_last_tool",
        "_saw_tool",
        "_saw_refusal",
        "_buffered_size",
    )

    def __init__(self, ctx: TranslationState, options: TranslationOptions) -> None:
        super().__init__(options)
        self._ctx = ctx
        self._thinking = ctx.thinking_requested
        self._buffered = options.buffer_tool_calls
        self._max = options.max_event_bytes
        self._next_block = 0
        self._open = -1
        self._open_kind = ""
        self._delta_prefix = ""
        self._tools: dict[Any, _Tool] = {}
        self._last_tool: Any = None
        self._saw_tool = False
        self._saw_refusal = False
        self._buffered_size = 0

    # -- emission helpers --------------------------------------------------------------------
    def _error(self, out: list[str], message: str, type_: str | None) -> None:
        payload = {"type": "error", "error": {"type": type_ or "api_error", "message": message}}
        out.append(sse_frame(dumps(payload), "error"))

    def _open_block(self, kind: str, block_json: str, out: list[str]) -> int:
        if self._open >= 0:
            self._close_block(out)
        index = self._next_block
        self._next_block += 1
        out.append(
            _START + '{"type":"content_block_start","index":' + str(index) + ',"content_block":' + block_json + "}\n\n"
        )
        self._open = index
        self._open_kind = kind
        self._delta_prefix = _DELTA + str(index) + ',"delta":'
        return index

    def _close_block(self, out: list[str]) -> None:
        out.append(_STOP + str(self._open) + "}\n\n")
        self._open = -1
        self._open_kind = ""

    def _text(self, text: str, out: list[str]) -> None:
        if self._open_kind != "text":
            self._open_block("text", '{"type":"text","text":""}', out)
        out.append(self._delta_prefix + '{"type":"text_delta","text":' + dumps(text) + "}}\n\n")

    # -- chunk handling ------------------------------------------------------------------------
    def _finished(self, out: list[str]) -> None:
        if self._open >= 0:
            self._close_block(out)

    def _start(self, obj: dict[str, Any], out: list[str]) -> None:
        msg_id = obj.get("id")
        model = obj.get("model")
        message = (
            '{"type":"message_start","message":{"id":'
            + dumps(msg_id if isinstance(msg_id, str) and msg_id else new_tool_id("msg_"))
            + ',"type":"message","role":"assistant","model":'
            + dumps(model if isinstance(model, str) else "")
            + ',"content":[],"stop_reason":null,"stop_sequence":null,"usage":'
            + _EMPTY_USAGE
            + "}}"
        )
        out.append(sse_frame(message, "message_start"))
        self._started = True

    def _delta(self, delta: dict[str, Any], out: list[str]) -> None:
        if self._thinking:
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                if self._open_kind != "thinking":
                    self._open_block("thinking", '{"type":"thinking","thinking":"","signature":""}', out)
                out.append(self._delta_prefix + '{"type":"thinking_delta","thinking":' + dumps(reasoning) + "}}\n\n")
        content = delta.get("content")
        if content and isinstance(content, str):
            self._text(content, out)
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            self._saw_refusal = True
            self._text(refusal, out)
        for fragment in tool_call_fragments(delta):
            self._tool_fragment(fragment, out)

    def _tool_fragment(self, fragment: Any, out: list[str]) -> None:
        raw_id, key, function = tool_call_fragment(fragment, self._last_tool)
        arguments = function.get("arguments")
        tool = self._tools.get(key) if key is not None else None
        if tool is None or (raw_id is not None and raw_id != tool.raw_id):
            name = function.get("name")
            tool = _Tool(
                -1,
                raw_id,
                sanitize_id(raw_id) if raw_id is not None else new_tool_id("toolu_"),
                self._ctx.tool_names.client(name) if isinstance(name, str) else "",
            )
            if key is None:
                key = ("anonymous", len(self._tools))
            self._tools[key] = tool
            self._saw_tool = True
            if not self._buffered:
                block = {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}
                tool.block = self._open_block("tool_use", dumps(block), out)
        self._last_tool = key
        if not isinstance(arguments, str) or not arguments:
            return
        if self._buffered:
            tool.args.append(arguments)
            self._buffered_size += len(arguments)
            if self._buffered_size > self._max:
                raise StreamProtocolError("upstream tool call arguments exceed the gateway's limit")
            return
        if tool.block != self._open:
            # D-15: a fragment for a tool whose block was already closed cannot be represented.
            raise StreamProtocolError("upstream interleaved tool call fragments")
        out.append(self._delta_prefix + '{"type":"input_json_delta","partial_json":' + dumps(arguments) + "}}\n\n")

    def _upstream_error(self, error: Any, out: list[str]) -> None:
        if isinstance(error, dict):
            message = error.get("message")
            type_ = openai_error_to_anthropic_type(None, error.get("type"), error.get("code"))
        else:
            message, type_ = error, "api_error"
        self._error(out, message if isinstance(message, str) and message else "upstream reported an error", type_)
        self._done = True

    def _finish_stream(self, out: list[str]) -> None:
        if not self._started:
            self._error(out, "upstream stream ended before any chunk", "api_error")
            self._done = True
            return
        if self._open >= 0:
            self._close_block(out)
        if self._buffered:
            for tool in self._tools.values():
                block = {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}
                self._open_block("tool_use", dumps(block), out)
                if tool.args:
                    arguments = "".join(tool.args)
                    out.append(
                        self._delta_prefix + '{"type":"input_json_delta","partial_json":' + dumps(arguments) + "}}\n\n"
                    )
                self._close_block(out)
        reason = stop_reason(self._finish, saw_tool=self._saw_tool, saw_refusal=self._saw_refusal)
        usage = dumps(anthropic_usage(self._chat_usage)) if self._chat_usage is not None else '{"output_tokens":0}'
        out.append(
            _MESSAGE_DELTA
            + '{"type":"message_delta","delta":{"stop_reason":"'
            + reason
            + '","stop_sequence":null},"usage":'
            + usage
            + "}\n\n"
        )
        out.append(_MESSAGE_STOP)
        self._done = True

    def _eof(self, out: list[str]) -> None:
        if self._finish_seen:  # some servers omit [DONE]
            self._finish_stream(out)
            return
        if self._open >= 0:
            self._close_block(out)
        self._error(out, "upstream stream ended without a finish_reason", "api_error")
