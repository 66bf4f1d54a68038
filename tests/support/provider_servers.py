"""Local upstreams that check requests the way each provider kind does: path, query, auth header, body.

:class:`KindUpstream` answers OpenAI Chat Completions (JSON, SSE, tool calls) only when the request
has the expected path, query and credentials, and answers like the provider otherwise (401 for a
wrong or missing key, 404 for a wrong path). :class:`TokenEndpoint` is a Microsoft Entra ID token
endpoint (client credentials) that counts its exchanges.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Receive, Scope, Send

from tests.support.servers import Recorded, read_body


def _record(scope: Scope, body: bytes) -> Recorded:
    headers: dict[str, str] = {}
    for k, v in scope["headers"]:
        headers[k.decode("latin-1")] = v.decode("latin-1")
    return Recorded(scope["method"], scope["path"], scope["query_string"].decode(), headers, body)


async def _json(send: Send, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(obj).encode()
    hdrs = [(b"content-type", b"application/json"), *((k.encode(), v.encode()) for k, v in (headers or {}).items())]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


def completion(model: str, content: str, tool_call: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None if tool_call else content}
    if tool_call:
        message["tool_calls"] = [tool_call]
    return {
        "id": "chatcmpl-kind-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_call else "stop", "logprobs": None}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def stream_chunks(model: str, content: str, tool_call: dict[str, Any] | None = None) -> list[bytes]:
    base = {"id": "chatcmpl-kind-1", "object": "chat.completion.chunk", "created": 1700000000, "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
        obj = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage is not None:
            obj = {**base, "choices": [], "usage": usage}
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    out = [chunk({"role": "assistant", "content": ""})]
    if tool_call:
        fn = tool_call["function"]
        first = {
            "index": 0,
            "id": tool_call["id"],
            "type": "function",
            "function": {"name": fn["name"], "arguments": ""},
        }
        out.append(chunk({"tool_calls": [first]}))
        out.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": fn["arguments"]}}]}))
        out.append(chunk({}, "tool_calls"))
    else:
        for word in content.split(" "):
            out.append(chunk({"content": word + " "}))
        out.append(chunk({}, "stop"))
    out.append(chunk({}, usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}))
    out.append(b"data: [DONE]\n\n")
    return out


@dataclass
class KindUpstream:
    """An OpenAI-wire upstream that insists on one URL shape and one credential header.

    ``path_prefix``: every request path must start with it (``/openai/v1``, ``/openai/deployments/d``);
    ``query``: required query parameters; ``auth``: (header, value) it requires, and ``forbidden``:
    credential headers it must not see (Azure: never both ``api-key`` and ``Authorization``).
    ``reply_status``/``reply_headers``/``reply_body`` override the answer (errors, throttling).
    """

    path_prefix: str
    auth: tuple[str, str] | None
    query: dict[str, str] = field(default_factory=dict)
    forbidden: tuple[str, ...] = ()
    content: str = "hello from the kind"
    reply_status: int | None = None
    reply_headers: dict[str, str] = field(default_factory=dict)
    reply_body: Any = None
    requests: list[Recorded] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        recorded = _record(scope, await read_body(receive))
        self.requests.append(recorded)
        headers = recorded.headers
        if self.auth is not None and headers.get(self.auth[0]) != self.auth[1]:
            error = {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
            await _json(send, 401, {"error": error})
            return
        if any(name in headers for name in self.forbidden):
            await _json(send, 400, {"error": {"message": "both credentials sent", "type": "invalid_request_error"}})
            return
        query = dict(urllib.parse.parse_qsl(recorded.query))
        if not recorded.path.startswith(self.path_prefix) or any(query.get(k) != v for k, v in self.query.items()):
            await _json(send, 404, {"error": {"code": "404", "message": "Resource not found"}})
            return
        if self.reply_status is not None:
            await _json(send, self.reply_status, self.reply_body, self.reply_headers)
            return
        operation = recorded.path[len(self.path_prefix) :]
        if operation == "/embeddings":
            await _json(
                send, 200, {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}]}
            )
            return
        if operation != "/chat/completions":
            await _json(send, 404, {"error": {"message": f"no {operation}", "type": "invalid_request_error"}})
            return
        body = recorded.json()
        for i, tool in enumerate(body.get("tools") or []):  # OpenAI's function name rule
            name = tool.get("function", {}).get("name", "")
            if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name):
                message = (
                    f"Invalid 'tools[{i}].function.name': string too long or not matching '^[a-zA-Z0-9_-]{{1,64}}$'."
                )
                await _json(send, 400, {"error": {"message": message, "type": "invalid_request_error"}})
                return
        tool_call = None
        if body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            tool_call = {"id": "call_kind_1", "type": "function", "function": {"name": name, "arguments": '{"q": 1}'}}
        model = body.get("model", "?")
        if body.get("stream"):
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
            )
            for chunk in stream_chunks(model, self.content, tool_call):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        await _json(send, 200, completion(model, self.content, tool_call))

    @property
    def last(self) -> Recorded:
        return self.requests[-1]


@dataclass
class TokenEndpoint:
    """``POST /{tenant}/oauth2/v2.0/token`` with client credentials, as Microsoft Entra ID answers it."""

    tenant: str
    client_id: str
    client_secret: str
    lifetime: int = 3599
    issued: list[str] = field(default_factory=list)
    fail_with: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        form = dict(urllib.parse.parse_qsl((await read_body(receive)).decode()))
        if self.fail_with is not None:
            await _json(send, self.fail_with, {"error": "temporarily_unavailable"})
            return
        if scope["path"] != f"/{self.tenant}/oauth2/v2.0/token" or scope["method"] != "POST":
            await _json(send, 404, {"error": "invalid_request"})
            return
        ok = (
            form.get("grant_type") == "client_credentials"
            and form.get("client_id") == self.client_id
            and form.get("client_secret") == self.client_secret
            and form.get("scope") == "https://cognitiveservices.azure.com/.default"
        )
        if not ok:
            await _json(send, 401, {"error": "invalid_client", "error_description": "AADSTS7000215"})
            return
        token = f"entra-token-{len(self.issued) + 1}-{int(time.time())}"
        self.issued.append(token)
        await _json(send, 200, {"token_type": "Bearer", "expires_in": self.lifetime, "access_token": token})
