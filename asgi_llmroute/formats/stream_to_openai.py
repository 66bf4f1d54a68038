"""Anthropic Messages stream -> OpenAI ``chat.completion.chunk`` stream."""

from __future__ import annotations

from typing import Any

from ._json import dumps
from .accounting import accounting_from_anthropic, openai_usage
from .mapping import finish_reason
from .sse import SSEEvent, sse_frame, sse_head
from .state import TranslationState
from .stream_base import StreamProtocolError, StreamTranslator, load_event_object
from .types import TranslationOptions
from .web_search import ANTHROPIC_NAME, chat_annotations, result_status, search_query

_DONE = sse_frame("[DONE]")
_ROLE_DELTA = '{"role":"assistant","content":""}'
_NOT_STARTED = "upstream stream did not start with message_start"


class _Block:
    __slots__ = ("kind", "tool", "args_seen", "thinking", "signature", "start", "citations", "search_id")

    def __init__(self, kind: str, tool: int = -1) -> None:
        self.kind = kind  # text | tool_use | thinking | search (a web search's server_tool_use) | other
        self.tool = tool  # OpenAI tool index (D-7) of a tool_use block
        self.args_seen = False
        self.thinking: list[str] | None = None  # only kept for the thinking_blocks extension; a search's input
        self.signature = ""
        self.start = 0  # text blocks: offset of their text in the message's (for citations)
        self.citations: list[Any] = []  # text blocks: web search citations
        self.search_id = ""


class AnthropicToOpenAIStream(StreamTranslator):
    """Anthropic SSE events in, OpenAI chunks out (``data:`` lines only, ``[DONE]`` at the end)."""

    __slots__ = (
        "_ctx",
        "_reasoning",
        "_thinking_blocks",
        "_clock",
        "_started",
        "_finished",
        "_blocks",
        "_next_tool",
        "_usage",
        "_prefix",
        "_suffix",
        "_finish_suffix",
        "_head",
        "_length",
        "_searches",
    )

    def __init__(self, ctx: TranslationState, options: TranslationOptions) -> None:
        super().__init__(options)
        self._ctx = ctx
        self._reasoning = options.reasoning_content
        self._thinking_blocks = options.thinking_blocks
        self._clock = options.clock
        self._started = False
        self._finished = False
        self._blocks: dict[Any, _Block] = {}
        self._next_tool = 0
        self._usage: dict[str, Any] = {}
        usage_null = ',"usage":null' if ctx.include_usage else ""
        self._head: dict[str, Any] = {}
        self._prefix = ""
        self._suffix = ',"logprobs":null,"finish_reason":null}]' + usage_null + "}\n\n"
        self._finish_suffix = "}]" + usage_null + "}\n\n"
        self._length = 0  # characters of content sent (citations' offsets)
        self._searches = options.web_search_calls  # emit the web_search_calls extension

    # -- emission helpers --------------------------------------------------------------------
    def _chunk(self, delta: str, out: list[str]) -> None:
        out.append(self._prefix + delta + self._suffix)

    def _tool_args(self, tool: int, arguments: str, out: list[str]) -> None:
        self._chunk(
            '{"tool_calls":[{"index":' + str(tool) + ',"function":{"arguments":' + dumps(arguments) + "}}]}", out
        )

    def _finish(self, reason: str, out: list[str]) -> None:
        out.append(self._prefix + '{},"logprobs":null,"finish_reason":"' + reason + '"' + self._finish_suffix)
        self._finished = True

    def _error(self, out: list[str], message: str, type_: str | None) -> None:
        error = {"message": message, "type": type_ or "api_error", "param": None, "code": None}
        out.append(sse_frame(dumps({"error": error})))

    # -- event handling ------------------------------------------------------------------------
    def _event(self, event: SSEEvent, out: list[str]) -> None:
        if event.event == "ping":
            return
        data = event.data
        if data == "[DONE]":  # some "Anthropic-compatible" upstreams append it; meaningless here
            return
        obj = load_event_object(data)
        kind = obj.get("type")
        self.event_object(obj, kind if isinstance(kind, str) else event.event, out)

    def event_object(self, obj: dict[str, Any], kind: str, out: list[str]) -> None:
        """Translate one already-parsed Anthropic event (used directly by the Bedrock streams)."""
        if kind == "content_block_delta":
            self._delta(obj, out)
        elif kind == "content_block_start":
            self._block_start(obj, out)
        elif kind == "content_block_stop":
            self._block_stop(obj, out)
        elif kind == "message_start":
            self._message_start(obj, out)
        elif kind == "message_delta":
            self._message_delta(obj, out)
        elif kind == "message_stop":
            self._message_stop(out)
        elif kind == "error":
            err = obj.get("error")
            err = err if isinstance(err, dict) else {}
            message = err.get("message")
            type_ = err.get("type")
            self._error(
                out,
                message if isinstance(message, str) and message else "upstream reported an error",
                type_ if isinstance(type_, str) and type_ else "api_error",
            )
            self._done = True
        # ping and unknown event types: ignored (Anthropic's versioning policy).

    def _message_start(self, obj: dict[str, Any], out: list[str]) -> None:
        if self._started:
            return
        message = obj.get("message")
        if not isinstance(message, dict):
            raise StreamProtocolError("upstream message_start carries no message")
        msg_id = message.get("id")
        model = message.get("model")
        self._head = {
            "id": msg_id if isinstance(msg_id, str) else "",
            "object": "chat.completion.chunk",
            "created": self._clock(),
            "model": model if isinstance(model, str) else "",
        }
        head = dumps(self._head)
        self._prefix = sse_head() + head[:-1] + ',"choices":[{"index":0,"delta":'
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)
            self.usage = accounting_from_anthropic(self._usage)
        self._started = True
        self._chunk(_ROLE_DELTA, out)

    def _block_start(self, obj: dict[str, Any], out: list[str]) -> None:
        if not self._started:
            raise StreamProtocolError(_NOT_STARTED)
        index = obj.get("index")
        block = obj.get("content_block")
        if not isinstance(block, dict):
            raise StreamProtocolError("upstream content_block_start carries no block")
        kind = block.get("type")
        if kind == "text":
            state = _Block("text")
            state.start = self._length
            self._blocks[index] = state
            if isinstance(block.get("citations"), list):
                state.citations.extend(block["citations"])
            text = block.get("text")
            if isinstance(text, str) and text:
                self._length += len(text)
                self._chunk('{"content":' + dumps(text) + "}", out)
        elif kind == "tool_use":
            tool_id, name = block.get("id"), block.get("name")
            if not isinstance(tool_id, str) or not isinstance(name, str):
                raise StreamProtocolError("upstream tool_use block lacks id or name")
            tool = self._next_tool
            self._next_tool += 1
            state = _Block("tool_use", tool)
            self._blocks[index] = state
            call = {
                "index": tool,
                "id": tool_id,
                "type": "function",
                "function": {"name": self._ctx.tool_names.client(name), "arguments": ""},
            }
            self._chunk('{"tool_calls":[' + dumps(call) + "]}", out)
            initial = block.get("input")
            if isinstance(initial, dict) and initial:  # non-standard upstream sending the input up front
                state.args_seen = True
                self._tool_args(tool, dumps(initial), out)
        elif kind == "thinking":
            state = _Block("thinking")
            self._blocks[index] = state
            thinking = block.get("thinking")
            if isinstance(thinking, str) and thinking:
                self._thinking(state, thinking, out)
            if self._thinking_blocks:
                state.thinking = [thinking] if isinstance(thinking, str) else []
        elif kind == "redacted_thinking":
            self._blocks[index] = _Block("other")
            if self._thinking_blocks and self._reasoning:
                redacted = {"type": "redacted_thinking", "data": block.get("data", "")}
                self._chunk('{"thinking_blocks":[' + dumps(redacted) + "]}", out)
        elif kind == "server_tool_use" and block.get("name") == ANTHROPIC_NAME and isinstance(block.get("id"), str):
            state = _Block("search")
            state.search_id = block["id"]
            initial = block.get("input")
            state.thinking = [dumps(initial)] if isinstance(initial, dict) and initial else []  # the input's JSON
            self._blocks[index] = state
            self._search(state.search_id, "in_progress", None, out)
        elif kind == "web_search_tool_result":
            self._blocks[index] = _Block("other")
            tool_use_id = block.get("tool_use_id")
            if isinstance(tool_use_id, str):
                self._search(tool_use_id, result_status(block), None, out)
        else:  # other server tools' blocks, future block types: not representable
            self._blocks[index] = _Block("other")

    def _search(self, search_id: str, status: str, query: str | None, out: list[str]) -> None:
        """A web search's progress, as the ``web_search_calls`` extension (when asked for)."""
        if not self._searches:
            return
        call: dict[str, Any] = {"id": search_id, "status": status}
        if query is not None:
            call["query"] = query
        self._chunk('{"web_search_calls":[' + dumps(call) + "]}", out)

    def _thinking(self, state: _Block, text: str, out: list[str]) -> None:
        if self._reasoning:
            self._chunk('{"reasoning_content":' + dumps(text) + "}", out)
        if state.thinking is not None:
            state.thinking.append(text)

    def _delta(self, obj: dict[str, Any], out: list[str]) -> None:
        if not self._started:
            raise StreamProtocolError(_NOT_STARTED)
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            raise StreamProtocolError("upstream content_block_delta carries no delta")
        state = self._blocks.get(obj.get("index"))
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            if not isinstance(text, str):
                raise StreamProtocolError("upstream text_delta carries no text")
            if text and (state is None or state.kind == "text"):
                self._length += len(text)
                self._chunk('{"content":' + dumps(text) + "}", out)
        elif kind == "input_json_delta":
            partial = delta.get("partial_json")
            if not isinstance(partial, str):
                raise StreamProtocolError("upstream input_json_delta carries no partial_json")
            if partial and state is not None and state.kind == "tool_use":
                state.args_seen = True
                self._tool_args(state.tool, partial, out)
            elif state is not None and state.kind == "search" and state.thinking is not None:
                state.thinking.append(partial)
        elif kind == "citations_delta":
            if state is not None and state.kind == "text":
                state.citations.append(delta.get("citation"))
        elif kind == "thinking_delta":
            text = delta.get("thinking")
            if isinstance(text, str) and text and state is not None and state.kind == "thinking":
                self._thinking(state, text, out)
        elif kind == "signature_delta":
            signature = delta.get("signature")
            if isinstance(signature, str) and state is not None:
                state.signature = signature  # replaces, does not append
        # unknown deltas: no OpenAI field.

    def _block_stop(self, obj: dict[str, Any], out: list[str]) -> None:
        state = self._blocks.pop(obj.get("index"), None)
        if state is None:
            return
        if state.kind == "tool_use" and not state.args_seen:
            self._tool_args(state.tool, "{}", out)  # a tool without parameters: still valid JSON
        elif state.kind == "search":
            self._search(state.search_id, "searching", search_query("".join(state.thinking or ())), out)
        elif state.kind == "text" and state.citations:
            annotations = chat_annotations(state.citations, state.start, self._length)
            if annotations:
                self._chunk('{"annotations":' + dumps(annotations) + "}", out)
        elif state.thinking is not None and self._reasoning:
            block = {"type": "thinking", "thinking": "".join(state.thinking), "signature": state.signature}
            self._chunk('{"thinking_blocks":[' + dumps(block) + "]}", out)

    def _message_delta(self, obj: dict[str, Any], out: list[str]) -> None:
        if not self._started:
            raise StreamProtocolError(_NOT_STARTED)
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)  # cumulative totals: overwrite, never add
            self.usage = accounting_from_anthropic(self._usage)
        delta = obj.get("delta")
        reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if reason is not None and not self._finished:
            self._finish(finish_reason(reason), out)

    def _message_stop(self, out: list[str]) -> None:
        if not self._started:
            raise StreamProtocolError(_NOT_STARTED)
        if not self._finished:
            self._finish("stop", out)
        if self._ctx.include_usage:
            chunk = {**self._head, "choices": [], "usage": openai_usage(self._usage)}
            out.append(sse_frame(dumps(chunk)))
        out.append(_DONE)
        self._done = True

    def _eof(self, out: list[str]) -> None:
        self._error(out, "upstream stream ended before message_stop", "api_error")
