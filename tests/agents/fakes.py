"""Fake upstreams for real agents: they answer like the real APIs and refuse what the real APIs refuse.

One policy for every agent, so that a run is a text turn and a tool round:
- a request without tools (titles, quota checks, summaries) gets a short text answer;
- a request with tools whose conversation has no tool result yet calls one of the offered tools
  (arguments built from its schema so that it reads ``SECRET_FILE`` or returns its value);
- a request carrying a tool result answers ``RESULT: <the tool's output>`` as text.

Validation, as the real APIs do it (a violation is a 400 in the API's own format, and is recorded in
``violations`` for the test to show): credentials and version headers; roles; every tool result
answers a tool call of the previous assistant turn; Anthropic's thinking rule (an assistant turn with a
tool_use that was generated with thinking must come back with its signed thinking block first, or the
request is refused with Anthropic's own message); OpenAI's refusal of parameters a model does not take.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Receive, Scope, Send

from tests.support.servers import read_body

SECRET_FILE = "hello.txt"
SECRET = "the-password-is-swordfish-42"
_ids = itertools.count(1)


def _sign(text: str) -> str:
    return "sig" + hashlib.sha256(b"fake-upstream:" + text.encode()).hexdigest()


def _sse(obj: Any, event: str | None = None) -> bytes:
    data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
    return (f"event: {event}\n".encode() + data) if event else data


async def _send_json(send: Send, status: int, obj: Any) -> None:
    data = json.dumps(obj).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _send_stream(send: Send, chunks: list[bytes]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class Refused(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def tool_arguments(name: str, schema: Any, workdir: str) -> dict[str, Any]:
    """Arguments for the offered tool ``name`` that make it read the secret file or return the secret."""
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
    path = f"{workdir}/{SECRET_FILE}"
    if "file_path" in props:  # Claude Code's Read
        return {"file_path": path}
    if "cmd" in props:  # Codex exec_command
        return (
            {"cmd": f"cat {SECRET_FILE}", "workdir": workdir} if "workdir" in props else {"cmd": f"cat {SECRET_FILE}"}
        )
    if "command" in props:  # Codex shell (array) / shell_command (string), Claude Code's Bash
        command = f"cat {SECRET_FILE}"
        if props["command"].get("type") == "array":
            args: dict[str, Any] = {"command": ["bash", "-lc", command]}
        else:
            args = {"command": command}
        if "workdir" in props:
            args["workdir"] = workdir
        return args
    return {k: "x" for k in schema.get("required", [])} if isinstance(schema, dict) else {}


# The output caps the fake OpenAI models enforce, as OpenAI does.
_MAX_OUTPUT = {"gpt-4o": 16_384}

# Tools the fakes prefer to call, by agent: read-only ones.
_PREFERRED = ("Read", "exec_command", "shell_command", "shell", "get_secret")


def _pick(tools: list[tuple[str, Any]]) -> tuple[str, Any]:
    for name, schema in tools:
        if name.startswith("mcp__"):  # an MCP server's tool (Codex): the one the test configured
            return name, schema
    for wanted in _PREFERRED:
        for name, schema in tools:
            if name == wanted:
                return name, schema
    return tools[0]


@dataclass
class FakeAPI:
    """Serves ``/v1/messages`` (Anthropic) and ``/v1/chat/completions`` + ``/v1/responses`` (OpenAI)."""

    anthropic_key: str
    openai_key: str
    workdir: str
    #: OpenAI models that take reasoning parameters (others refuse ``reasoning_effort``, as OpenAI does).
    reasoning_models: tuple[str, ...] = ("gpt-5", "o3", "o4")
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    # tool_use id -> the signed thinking block generated with it
    _thinking: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        raw = await read_body(receive)
        path = scope["path"]
        anthropic_api = path.startswith("/v1/messages")
        try:
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                raise Refused("body is not JSON") from None
            self.requests.append((path, body))
            if anthropic_api:
                if headers.get("x-api-key") != self.anthropic_key:
                    raise Refused("invalid x-api-key", 401)
                if "anthropic-version" not in headers:
                    raise Refused("anthropic-version header is required")
                if path == "/v1/messages/count_tokens":
                    await _send_json(send, 200, {"input_tokens": max(1, len(raw) // 4)})
                    return
                if path != "/v1/messages":
                    raise Refused(f"unknown path {path}", 404)
                await self._messages(body, send)
            elif path in ("/v1/chat/completions", "/v1/responses"):
                if headers.get("authorization") != f"Bearer {self.openai_key}":
                    raise Refused("Incorrect API key provided", 401)
                if path == "/v1/chat/completions":
                    await self._chat(body, send)
                else:
                    await self._responses(body, send)
            else:
                raise Refused(f"unknown path {path}", 404)
        except Refused as exc:
            self.violations.append(f"{path}: {exc.message}")
            if anthropic_api:
                kind = "authentication_error" if exc.status == 401 else "invalid_request_error"
                error: Any = {"type": "error", "error": {"type": kind, "message": exc.message}}
            else:
                error = {
                    "error": {"message": exc.message, "type": "invalid_request_error", "param": None, "code": None}
                }
            await _send_json(send, exc.status, error)

    # -- Anthropic Messages ----------------------------------------------------------------------
    async def _messages(self, body: dict[str, Any], send: Send) -> None:
        messages = body.get("messages")
        if not isinstance(body.get("model"), str) or not isinstance(body.get("max_tokens"), int):
            raise Refused("model and max_tokens are required")
        if not isinstance(messages, list) or not messages:
            raise Refused("messages: at least one message is required")
        thinking = isinstance(body.get("thinking"), dict) and body["thinking"].get("type") in ("enabled", "adaptive")
        result: str | None = None
        previous_calls: set[str] = set()
        for i, message in enumerate(messages):
            role, content = message.get("role"), message.get("content")
            if role not in ("user", "assistant"):
                raise Refused(f"messages.{i}.role: unexpected role {role!r}")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not isinstance(blocks, list):
                raise Refused(f"messages.{i}.content: must be a string or a list")
            if role == "assistant":
                calls = [b for b in blocks if b.get("type") == "tool_use"]
                for call in calls:
                    signed = self._thinking.get(call.get("id"))
                    if signed is not None and thinking:
                        first = blocks[0]
                        if first.get("type") not in ("thinking", "redacted_thinking"):
                            raise Refused(
                                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                                f"`{first.get('type')}`. When `thinking` is enabled, a final `assistant` message must "
                                "start with a thinking block (preceeding the lastmost set of `tool_use` and "
                                "`tool_result` blocks)."
                            )
                        if first.get("signature") != signed["signature"] or first.get("thinking") != signed["thinking"]:
                            raise Refused(f"messages.{i}.content.0: Invalid `signature` in `thinking` block")
                previous_calls = {c.get("id") for c in calls}
            else:
                for block in blocks:
                    if block.get("type") == "tool_result":
                        if block.get("tool_use_id") not in previous_calls:
                            raise Refused(
                                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                                f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                                "`tool_use` block in the previous message."
                            )
                        result = _text_of(block.get("content"))
                previous_calls = set()
        _check_anthropic_tools(body.get("tools"))
        tools = [
            (t["name"], t.get("input_schema")) for t in body.get("tools") or [] if "name" in t and "input_schema" in t
        ]
        model = body["model"]
        out: list[dict[str, Any]] = []
        if result is not None:
            out.append({"type": "text", "text": f"RESULT: {result.strip()[:200]}"})
            stop = "end_turn"
        elif tools:
            name, schema = _pick(tools)
            call_id = f"toolu_{next(_ids):04d}"
            if thinking:
                text = f"I should call {name} to read the file."
                block = {"type": "thinking", "thinking": text, "signature": _sign(text)}
                self._thinking[call_id] = block
                out.append(block)
            out.append(
                {"type": "tool_use", "id": call_id, "name": name, "input": tool_arguments(name, schema, self.workdir)}
            )
            stop = "tool_use"
        else:
            out.append({"type": "text", "text": "pong"})
            stop = "end_turn"
        usage = {"input_tokens": 21, "output_tokens": 7}
        message_id = f"msg_{next(_ids):04d}"
        if not body.get("stream"):
            await _send_json(
                send,
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": out,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                },
            )
            return
        start = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 21, "output_tokens": 1},
        }
        chunks = [_sse({"type": "message_start", "message": start}, "message_start")]
        for index, block in enumerate(out):
            kind = block["type"]
            if kind == "text":
                chunks.append(
                    _sse(
                        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                        "content_block_start",
                    )
                )
                chunks.append(
                    _sse(
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": block["text"]},
                        },
                        "content_block_delta",
                    )
                )
            elif kind == "thinking":
                chunks.append(
                    _sse(
                        {
                            "type": "content_block_start",
                            "index": index,
                            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                        },
                        "content_block_start",
                    )
                )
                chunks.append(
                    _sse(
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "thinking_delta", "thinking": block["thinking"]},
                        },
                        "content_block_delta",
                    )
                )
                chunks.append(
                    _sse(
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "signature_delta", "signature": block["signature"]},
                        },
                        "content_block_delta",
                    )
                )
            else:
                chunks.append(
                    _sse(
                        {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}},
                        "content_block_start",
                    )
                )
                chunks.append(
                    _sse(
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
                        },
                        "content_block_delta",
                    )
                )
            chunks.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        chunks.append(
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 7},
                },
                "message_delta",
            )
        )
        chunks.append(_sse({"type": "message_stop"}, "message_stop"))
        await _send_stream(send, chunks)

    # -- OpenAI Chat Completions -----------------------------------------------------------------
    def _check_openai_model(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        if not isinstance(model, str):
            raise Refused("you must provide a model parameter")
        reasoning = model.startswith(self.reasoning_models)
        if not reasoning and ("reasoning_effort" in body or "reasoning" in body):
            name = "reasoning_effort" if "reasoning_effort" in body else "reasoning"
            raise Refused(f"Unrecognized request argument supplied: {name}")
        limit = _MAX_OUTPUT.get(model)
        for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
            value = body.get(key)
            if limit is not None and isinstance(value, int) and value > limit:
                raise Refused(
                    f"max_tokens is too large: {value}. This model supports at most {limit} completion tokens, "
                    f"whereas you provided {value}."
                )
        return model

    async def _chat(self, body: dict[str, Any], send: Send) -> None:
        model = self._check_openai_model(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise Refused("messages: must be a non-empty array")
        result: str | None = None
        pending: set[str] = set()
        for i, message in enumerate(messages):
            role = message.get("role")
            if role not in ("system", "developer", "user", "assistant", "tool"):
                raise Refused(f"messages[{i}].role: invalid value {role!r}")
            if role == "tool":
                if message.get("tool_call_id") not in pending:
                    raise Refused(
                        f"Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                        f"with 'tool_calls' (messages[{i}])."
                    )
                result = _text_of(message.get("content"))
                continue
            if pending and role != "tool":
                raise Refused(
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                    f"'tool_call_id' (messages[{i}])."
                )
            pending = {c.get("id") for c in message.get("tool_calls") or []} if role == "assistant" else set()
        _check_openai_tools(body.get("tools"))
        tools = [
            (t["function"]["name"], t["function"].get("parameters"))
            for t in body.get("tools") or []
            if t.get("type") == "function"
        ]
        usage = {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28}
        reply: dict[str, Any] = {"role": "assistant", "content": None}
        if result is not None and messages[-1].get("role") == "tool":
            reply["content"] = f"RESULT: {result.strip()[:200]}"
            finish = "stop"
        elif tools:
            name, schema = _pick(tools)
            call = {
                "id": f"call_{next(_ids):04d}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(tool_arguments(name, schema, self.workdir))},
            }
            reply["tool_calls"] = [call]
            finish = "tool_calls"
        else:
            reply["content"] = "pong"
            finish = "stop"
        head = {"id": f"chatcmpl-{next(_ids)}", "created": 1, "model": model}
        if not body.get("stream"):
            await _send_json(
                send,
                200,
                {
                    **head,
                    "object": "chat.completion",
                    "usage": usage,
                    "choices": [{"index": 0, "message": reply, "finish_reason": finish}],
                },
            )
            return
        chunk = {**head, "object": "chat.completion.chunk"}

        def event(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            return _sse({**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})

        chunks = [event({"role": "assistant", "content": ""})]
        if reply["content"]:
            chunks.append(event({"content": reply["content"]}))
        for n, call in enumerate(reply.get("tool_calls") or []):
            chunks.append(
                event(
                    {
                        "tool_calls": [
                            {
                                "index": n,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            chunks.append(
                event({"tool_calls": [{"index": n, "function": {"arguments": call["function"]["arguments"]}}]})
            )
        chunks.append(event({}, finish))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            chunks.append(_sse({**chunk, "choices": [], "usage": usage}))
        chunks.append(b"data: [DONE]\n\n")
        await _send_stream(send, chunks)

    # -- OpenAI Responses ------------------------------------------------------------------------
    async def _responses(self, body: dict[str, Any], send: Send) -> None:
        model = self._check_openai_model(body)
        items = body.get("input")
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        if not isinstance(items, list):
            raise Refused("input: must be a string or an array")
        calls: set[str] = set()
        result: str | None = None
        for i, item in enumerate(items):
            kind = item.get("type", "message")
            if kind == "item_reference":
                raise Refused(f"input[{i}]: Item with id '{item.get('id')}' not found.", 404)
            if kind == "function_call":
                calls.add(item.get("call_id"))
            elif kind == "function_call_output":
                if item.get("call_id") not in calls:
                    raise Refused(f"No tool call found for function call output with call_id {item.get('call_id')}.")
                result = _text_of(item.get("output"))
        tools = [(t["name"], t.get("parameters")) for t in body.get("tools") or [] if t.get("type") == "function"]
        response_id = f"resp_{next(_ids):04d}"
        output: list[dict[str, Any]]
        if result is not None and items[-1].get("type") == "function_call_output":
            text = f"RESULT: {result.strip()[:200]}"
            output = [
                {
                    "type": "message",
                    "id": f"msg_{next(_ids)}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ]
        elif tools:
            name, schema = _pick(tools)
            output = [
                {
                    "type": "function_call",
                    "id": f"fc_{next(_ids)}",
                    "call_id": f"call_{next(_ids):04d}",
                    "name": name,
                    "arguments": json.dumps(tool_arguments(name, schema, self.workdir)),
                    "status": "completed",
                }
            ]
        else:
            output = [
                {
                    "type": "message",
                    "id": f"msg_{next(_ids)}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "pong", "annotations": []}],
                }
            ]
        usage = {
            "input_tokens": 21,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 28,
        }
        response = {
            "id": response_id,
            "object": "response",
            "created_at": 1,
            "status": "completed",
            "model": model,
            "output": output,
            "usage": usage,
            "error": None,
            "incomplete_details": None,
            "tools": [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
        }
        if not body.get("stream"):
            await _send_json(send, 200, response)
            return
        seq = itertools.count()

        def event(kind: str, **fields: Any) -> bytes:
            return _sse({"type": kind, "sequence_number": next(seq), **fields}, kind)

        pending = {**response, "status": "in_progress", "output": [], "usage": None}
        chunks = [event("response.created", response=pending), event("response.in_progress", response=pending)]
        for index, item in enumerate(output):
            chunks.append(
                event("response.output_item.added", output_index=index, item={**item, "status": "in_progress"})
            )
            if item["type"] == "message":
                text = item["content"][0]["text"]
                chunks.append(
                    event(
                        "response.output_text.delta",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        delta=text,
                    )
                )
            chunks.append(event("response.output_item.done", output_index=index, item=item))
        chunks.append(event("response.completed", response=response))
        await _send_stream(send, chunks)


_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
# Anthropic's server tools the fake knows: their type and the fields their schema takes.
_SERVER_TOOLS = {
    "web_search_20250305": {"type", "name", "max_uses", "allowed_domains", "blocked_domains", "user_location"},
}


def _check_anthropic_tools(tools: Any) -> None:
    """Anthropic's checks of ``tools``: names ``^[a-zA-Z0-9_-]{1,128}$``, unique; server tools' fixed names."""
    seen: set[str] = set()
    for i, tool in enumerate(tools or []):
        name = tool.get("name")
        kind = tool.get("type")
        if kind in _SERVER_TOOLS:
            if name != "web_search" or set(tool) - _SERVER_TOOLS[kind]:
                raise Refused(f"tools.{i}.{kind}: Input tag does not match the expected schema")
        elif kind not in (None, "custom"):
            raise Refused(f"tools.{i}: Input tag '{kind}' found using 'type' does not match any of the expected tags")
        elif not isinstance(name, str) or not _TOOL_NAME.match(name) or len(name) > 128:
            length = len(name) if isinstance(name, str) else 0
            raise Refused(
                f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$' (length {length})"
            )
        if name in seen:
            raise Refused("tools: Tool names must be unique.")
        seen.add(name)


def _check_openai_tools(tools: Any) -> None:
    """OpenAI's checks of Chat Completions function names: ``^[a-zA-Z0-9_-]+$``, at most 64 characters."""
    for i, tool in enumerate(tools or []):
        name = (tool.get("function") or {}).get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise Refused(f"Invalid 'tools[{i}].function.name': string does not match pattern.")
        if len(name) > 64:
            raise Refused(
                f"Invalid 'tools[{i}].function.name': string too long. Expected a string with maximum length 64, "
                f"but got a string with length {len(name)} instead."
            )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            _text_of(part.get("text", part.get("content", ""))) for part in content if isinstance(part, dict)
        )
    return ""
