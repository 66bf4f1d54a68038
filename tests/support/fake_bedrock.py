"""A local Bedrock runtime that checks requests the way AWS does.

- Authentication: SigV4 signatures are recomputed with botocore from the request as received
  (raw path, signed headers, body bytes) and the known test credentials; a wrong key is a 403
  ``UnrecognizedClientException``, a wrong signature a 403 ``InvalidSignatureException``. Bedrock
  API keys (``Authorization: Bearer``) are checked too.
- Bodies: Converse requests are validated with botocore's own ParamValidator against the
  bedrock-runtime service model; InvokeModel bodies must carry ``anthropic_version`` and must not
  carry ``model`` or ``stream`` (as Bedrock's schema says).
- Answers: the captured fixtures (real event-stream frames with both CRCs), or frames built with
  the event-stream encoder; a tool-use answer while the conversation has no tool result yet, a text
  answer after it.

Faults by model id: ``...throttle...`` answers 429 ThrottlingException ``throttle_times`` times,
``...malformed...`` streams a frame with a broken CRC, ``...midstream...`` streams an exception frame,
``...invalid...`` is an unknown model (400).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import Receive, Scope, Send

from asgi_llmroute.formats import encode_message
from tests.support.servers import read_body

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
ACCESS_KEY = "AKIAFAKEBEDROCK00001"
SECRET_KEY = "fake-bedrock-secret-key-do-not-leak-0001"
SESSION_KEY = "ASIAFAKEBEDROCK00002"
SESSION_SECRET = "fake-bedrock-session-secret-0002"
SESSION_TOKEN = "fake-bedrock-session-token-0002"
API_KEY = "bedrock-api-key-fake-0003"
REGION = "us-east-1"
SIGNATURE = "Zml4dHVyZS1zaWduYXR1cmU6YmVkcm9jay1jb252ZXJzZTpyZWFzb25pbmc6MDE="

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
    r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})"
)
_PATH = re.compile(r"^/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)$")


@dataclass
class Seen:
    operation: str
    model: str
    headers: dict[str, str]
    body: Any
    auth: str  # "sigv4", "sigv4-session" or "bearer"


@dataclass
class FakeBedrock:
    throttle_times: int = 0
    requests: list[Seen] = field(default_factory=list)
    _throttled: int = 0

    # -- plumbing ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        raw_path = scope.get("raw_path") or scope["path"].encode()
        status, reply_headers, chunks = self.handle(scope["method"], raw_path.decode("latin-1"), headers, body)
        await send({"type": "http.response.start", "status": status, "headers": reply_headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        match = _PATH.match(raw_path)
        if method != "POST" or match is None:
            return _error(404, "UnknownOperationException", "Unknown operation")
        auth = self.check_auth(method, raw_path, headers, body)
        if isinstance(auth, tuple):
            return auth
        model = urllib.parse.unquote(match.group(1))
        operation = match.group(2)
        try:
            parsed = json.loads(body)
        except ValueError:
            return _error(
                400, "ValidationException", "Malformed input request, please reformat your input and try again."
            )
        self.requests.append(Seen(operation, model, headers, parsed, auth))
        if "throttle" in model and self._throttled < self.throttle_times:
            self._throttled += 1
            return _error(429, "ThrottlingException", "Too many tokens, please wait before trying again.")
        if "invalid" in model:
            return _error(400, "ValidationException", "The provided model identifier is invalid.")
        if operation.startswith("converse"):
            return self.converse(operation, model, parsed)
        return self.invoke(operation, model, parsed, headers)

    # -- authentication ------------------------------------------------------------------------
    def check_auth(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> str | tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        value = headers.get("authorization", "")
        if value.startswith("Bearer "):
            if hmac.compare_digest(value[7:], API_KEY):
                return "bearer"
            return _error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        match = _AUTH.fullmatch(value)
        if match is None:
            return _error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        key, date, region, service, signed, signature = match.groups()
        secrets = {ACCESS_KEY: (SECRET_KEY, None), SESSION_KEY: (SESSION_SECRET, SESSION_TOKEN)}
        if key not in secrets:
            return _error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        secret, token = secrets[key]
        if token is not None and headers.get("x-amz-security-token") != token:
            return _error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
        if region != REGION or service != "bedrock" or not headers.get("x-amz-date", "").startswith(date):
            return _error(
                403, "InvalidSignatureException", "Credential should be scoped to a valid region and service."
            )
        names = signed.split(";")
        if "host" not in names or any(n not in headers for n in names):
            return _error(403, "InvalidSignatureException", "Signed headers are missing.")
        if not hmac.compare_digest(
            _expected_signature(method, raw_path, headers, names, body, key, secret, token, region), signature
        ):
            return _error(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            )
        return "sigv4-session" if token else "sigv4"

    # -- operations ----------------------------------------------------------------------------
    def converse(self, operation: str, model: str, body: Any) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        problem = _validate_converse(operation, model, body)
        if problem:
            return _error(400, "ValidationException", problem)
        problem = _check_conversation(body)
        if problem:
            return _error(400, "ValidationException", problem)
        stream = operation == "converse-stream"
        tool_turn = "toolConfig" in body and not _has_tool_result(body)
        if stream:
            if "malformed" in model:
                frames = _read("bedrock-converse/stream_text.bin")
                broken = bytearray(frames)
                broken[len(frames) // 2] ^= 0xFF
                return 200, _stream_headers(), [bytes(broken)]
            if "midstream" in model:
                return 200, _stream_headers(), [_read("bedrock-converse/stream_error_midstream.bin")]
            name = "stream_tool_use" if tool_turn else "stream_text"
            raw = _read(f"bedrock-converse/{name}.bin")
            return 200, _stream_headers(), [raw[i : i + 37] for i in range(0, len(raw), 37)]
        name = "response_tool_use" if tool_turn else "response_text"
        return 200, _json_headers(), [_read(f"bedrock-converse/{name}.json")]

    def invoke(
        self, operation: str, model: str, body: Any, headers: dict[str, str]
    ) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        extraneous = [k for k in ("model", "stream") if k in body]
        if extraneous or body.get("anthropic_version") != "bedrock-2023-05-31" or "messages" not in body:
            return _error(
                400,
                "ValidationException",
                "Malformed input request: " + "".join(f"#: extraneous key [{k}] is not permitted" for k in extraneous),
            )
        tool_turn = "tools" in body and not any(
            isinstance(b, dict) and b.get("type") == "tool_result"
            for m in body["messages"]
            if isinstance(m.get("content"), list)
            for b in m["content"]
        )
        if operation == "invoke":
            name = "response_tool_use" if tool_turn else "response_text"
            return 200, _json_headers(), [_read(f"bedrock-claude/{name}.json")]
        if "midstream" in model or "throttle" in model:
            return 200, _stream_headers(), [_read("bedrock-claude/stream_error_throttling.bin")]
        name = "stream_tool_use" if tool_turn else "stream_text"
        return 200, _stream_headers(), [_read(f"bedrock-claude/{name}.bin")]


def _expected_signature(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    names: list[str],
    body: bytes,
    key: str,
    secret: str,
    token: str | None,
    region: str,
) -> str:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"http://{headers['host']}{raw_path}"
    request = AWSRequest(method=method, url=url, data=body, headers={n: headers[n] for n in names})
    request.context["timestamp"] = headers["x-amz-date"]
    auth = SigV4Auth(Credentials(key, secret, token), "bedrock", region)
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))


def _blobs(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _blobs(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_blobs(v) for v in value]
    if key in ("bytes", "redactedContent") and isinstance(value, str):
        return base64.b64decode(value)
    return value


def _validate_converse(operation: str, model: str, body: Any) -> str | None:
    import botocore.session
    import botocore.validate

    service = botocore.session.get_session().get_service_model("bedrock-runtime")
    shape = service.operation_model("ConverseStream" if operation == "converse-stream" else "Converse").input_shape
    params = _blobs(copy.deepcopy(body)) if isinstance(body, dict) else body
    if isinstance(params, dict):
        params["modelId"] = model
    report = botocore.validate.ParamValidator().validate(params, shape)
    if report.has_errors():
        return "1 validation error detected: " + str(report.generate_report()).replace("\n", " ")
    return None


def _check_conversation(body: dict[str, Any]) -> str | None:
    roles = [m["role"] for m in body["messages"]]
    if roles[0] != "user" or any(a == b for a, b in zip(roles, roles[1:], strict=False)):
        return (
            "A conversation must alternate between user and assistant roles. Make sure the conversation "
            "alternates between user and assistant roles and try again."
        )
    thinking = body.get("additionalModelRequestFields", {}).get("thinking")
    for message in body["messages"]:
        content = message["content"]
        if message["role"] == "assistant" and any("toolUse" in b for b in content) and thinking:
            first = content[0].get("reasoningContent", {}).get("reasoningText", {})
            if first.get("signature") != SIGNATURE:
                return (
                    "The model returned the following errors: messages.1.content.0.type: Expected `thinking` or "
                    "`redacted_thinking`, but found `text`. When `thinking` is enabled, a final `assistant` message "
                    "must start with a thinking block."
                )
        if any("toolUse" in b or "toolResult" in b for b in content) and "toolConfig" not in body:
            return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    return None


def _has_tool_result(body: dict[str, Any]) -> bool:
    last = body["messages"][-1]
    return any("toolResult" in b for b in last["content"])


def _read(rel: str) -> bytes:
    return (FIXTURES / rel).read_bytes()


def _request_id() -> bytes:
    return hashlib.sha256(str(id(object())).encode()).hexdigest()[:32].encode()


def _json_headers() -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"x-amzn-requestid", _request_id())]


def _stream_headers() -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/vnd.amazon.eventstream"), (b"x-amzn-requestid", _request_id())]


def _error(status: int, name: str, message: str) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
    headers = [
        (b"content-type", b"application/json"),
        (b"x-amzn-errortype", f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/".encode()),
        (b"x-amzn-requestid", _request_id()),
    ]
    return status, headers, [json.dumps({"message": message}).encode()]


def event_frame(event: str, payload: dict[str, Any]) -> bytes:
    """One ConverseStream event as a real event-stream message."""
    headers = {":event-type": event, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(payload, separators=(",", ":")).encode())
