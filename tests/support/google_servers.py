"""Local stand-ins for Google's Gemini API, Vertex AI and the OAuth2 token endpoint.

They check requests the way the real services do: paths and methods, ``alt=sse`` on streams, the
API key in ``x-goog-api-key`` (Gemini API) or a Bearer token the token endpoint issued (Vertex), no
unknown top-level body fields, function-call / function-response pairing and thought signatures;
the token endpoint verifies the RS256-signed JWT assertion of a service-account key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.types import Receive, Scope, Send

from tests.support.servers import read_body

from .servers import Recorded

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers"
SIGNATURE = "Zml4dHVyZS10aG91Z2h0LXNpZ25hdHVyZTpnZW1pbmk6Z2V0X3dlYXRoZXI6MDE="
_TOP_LEVEL = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings"}
_GEMINI_PATH = re.compile(r"^/v1beta/models/([A-Za-z0-9._-]+):(generateContent|streamGenerateContent|countTokens)$")
_VERTEX_PATH = re.compile(
    r"^/v1/projects/([a-z0-9-]+)/locations/([a-z0-9-]+)/publishers/google/models/([A-Za-z0-9._@-]+)"
    r":(generateContent|streamGenerateContent|countTokens)$"
)
#: Vertex AI in express mode: no project, no location, an API key (aiplatform.googleapis.com only).
_EXPRESS_PATH = re.compile(
    r"^/v1(?:beta1)?/publishers/google/models/([A-Za-z0-9._@-]+):(generateContent|streamGenerateContent)$"
)


async def _send(send: Send, status: int, body: bytes, content_type: str = "application/json") -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def google_error(status: int, canonical: str, message: str, details: list[Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": status, "message": message, "status": canonical}
    if details:
        error["details"] = details
    return json.dumps({"error": error}, indent=2).encode()


def _answer(
    text: str | None = None, *, parts: list[dict[str, Any]] | None = None, finish: str = "STOP"
) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts or [{"text": text}]}, "finishReason": finish, "index": 0}
        ],
        "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-" + str(int(time.time() * 1000)),
    }


def _check_file_uri(part: dict[str, Any], vertex: bool) -> str | None:
    """Gemini API: HTTPS file URIs (external, Files API, YouTube), no gs://; Vertex: gs:// and HTTPS, a mimeType."""
    data = part["fileData"]
    uri = data.get("fileUri", "")
    if not uri.startswith(("https://", "gs://") if vertex else "https://"):
        return f"* GenerateContentRequest.contents: Unsupported file uri: {uri}"
    if vertex and not data.get("mimeType"):
        return "* GenerateContentRequest.contents: fileData.mimeType is required"
    return None


def _check_body(body: Any, vertex: bool = False) -> str | None:
    """What Google would answer 400 to, or None."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    unknown = sorted(set(body) - _TOP_LEVEL)
    if unknown:
        return f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.'
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        if content.get("role") not in ("user", "model") or not content.get("parts"):
            return f"* GenerateContentRequest.contents[{i}]: bad role or empty parts"
        for part in content["parts"]:
            problem = _check_file_uri(part, vertex) if "fileData" in part else None
            if problem is not None:
                return problem
        calls = [p for p in content["parts"] if "functionCall" in p]
        if calls:
            following = contents[i + 1]["parts"] if i + 1 < len(contents) else []
            responses = [p for p in following if "functionResponse" in p]
            if len(responses) != len(calls) or len(responses) != len(following):
                return (
                    "Please ensure that the number of function response parts is equal to the number of "
                    "function call parts of the function call turn."
                )
    for tool in body.get("tools", []):
        for declaration in tool.get("functionDeclarations", []):
            if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}", str(declaration.get("name"))):
                return (
                    "* GenerateContentRequest.tools[0].function_declarations[0].name: Invalid function name. Must "
                    "start with a letter or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots, "
                    "colons and dashes, with a maximum length of 64."
                )
            if "$ref" in json.dumps(declaration) or "$defs" in json.dumps(declaration):
                return "* functionDeclarations: $ref is not supported here"
    schema = body.get("generationConfig", {}).get("responseJsonSchema")
    if schema is not None and "$ref" in json.dumps(schema):
        return "* responseJsonSchema: $ref is not supported here"
    return None


@dataclass
class GoogleUpstream:
    """The Gemini API (``vertex=False``) or Gemini on Vertex AI (``vertex=True``)."""

    api_key: str = ""
    vertex: bool = False
    #: Vertex only: the express-mode API key accepted on ``/v1/publishers/google/models/...``.
    express_key: str = ""
    tokens: TokenEndpoint | None = None
    requests: list[Recorded] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        record = Recorded(scope["method"], scope["path"], scope["query_string"].decode(), headers, raw)
        self.requests.append(record)
        match = (_VERTEX_PATH if self.vertex else _GEMINI_PATH).match(scope["path"])
        express = False
        if self.vertex and match is None:
            match = _EXPRESS_PATH.match(scope["path"])
            express = match is not None
        if scope["method"] != "POST" or match is None:
            await _send(send, 404, google_error(404, "NOT_FOUND", f"Not found: {scope['path']}"))
            return
        model, method = match.groups()[-2:]
        if express:
            key = headers.get("x-goog-api-key")
            if not self.express_key or key != self.express_key or "authorization" in headers or "key=" in record.query:
                details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
                await _send(send, 400, google_error(400, "INVALID_ARGUMENT", "API key not valid.", details))
                return
        elif self.vertex and "x-goog-api-key" in headers:
            message = "API keys are not supported by this API. Expected OAuth2 access token."
            await _send(send, 401, google_error(401, "UNAUTHENTICATED", message))
            return
        elif self.vertex:
            token = headers.get("authorization", "")
            if (
                self.tokens is None
                or token.removeprefix("Bearer ") not in self.tokens.issued
                or "x-goog-api-key" in headers
            ):
                await _send(
                    send, 401, google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
                )
                return
        else:
            if headers.get("x-goog-api-key") != self.api_key or "authorization" in headers or "key=" in record.query:
                details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
                await _send(send, 400, google_error(400, "INVALID_ARGUMENT", "API key not valid.", details))
                return
        if method == "countTokens":
            await self._count_tokens(send, raw)
            return
        stream = method == "streamGenerateContent"
        if stream and urllib.parse.parse_qs(record.query).get("alt") != ["sse"]:
            await _send(send, 400, google_error(400, "INVALID_ARGUMENT", "streams need alt=sse in this test"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        problem = _check_body(body, self.vertex)
        if problem is not None:
            await _send(send, 400, google_error(400, "INVALID_ARGUMENT", problem))
            return
        if model == "gemini-throttled":
            await _send(send, 429, (FIXTURES / "gemini/error_429_resource_exhausted.json").read_bytes())
            return
        answer = self._answer(model, body)
        if isinstance(answer, bytes):
            await _send(send, 400, answer)
            return
        if not stream:
            await _send(send, 200, json.dumps(answer, indent=2).encode())
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for chunk in _split(answer, cut=model == "gemini-cut"):
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n",
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b""})

    async def _count_tokens(self, send: Send, raw: bytes) -> None:
        """``:countTokens``: ``contents`` alone or the Gemini API's ``generateContentRequest`` (with its
        ``model``; never both), Vertex's ``contents``/``systemInstruction``/``tools`` at the top (an unknown
        field is a 400, as on Google's JSON APIs). Counts 100 + the words of the text, system and tool names."""
        body = json.loads(raw)
        allowed = {"contents", "systemInstruction", "tools", "generationConfig", "model", "instances"}
        if not self.vertex:
            allowed = {"contents", "generateContentRequest"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            message = f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.'
            await _send(send, 400, google_error(400, "INVALID_ARGUMENT", message))
            return
        request = body.get("generateContentRequest")
        if request is not None:
            if "contents" in body or not str(request.get("model", "")).startswith("models/"):
                message = "generateContentRequest needs its model (models/...), and excludes contents"
                await _send(send, 400, google_error(400, "INVALID_ARGUMENT", message))
                return
            body = request
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            await _send(send, 400, google_error(400, "INVALID_ARGUMENT", "* CountTokensRequest.contents: required"))
            return
        parts = [p for c in contents for p in c.get("parts", [])]
        parts += body.get("systemInstruction", {}).get("parts", [])
        words = sum(len(p.get("text", "").split()) for p in parts)
        words += sum(len(t.get("functionDeclarations", [])) for t in body.get("tools", []))
        await _send(send, 200, json.dumps({"totalTokens": 100 + words, "promptTokensDetails": []}).encode())

    def _answer(self, model: str, body: dict[str, Any]) -> dict[str, Any] | bytes:
        contents = body["contents"]
        last = contents[-1]["parts"]
        if any("functionResponse" in p for p in last):
            calls = [p for p in contents[-2]["parts"] if "functionCall" in p]
            if calls[0].get("thoughtSignature") != SIGNATURE:
                return google_error(400, "INVALID_ARGUMENT", "Function call is missing a thought_signature")
            result = last[0]["functionResponse"]["response"]["output"]
            return _answer(f"The weather: {result}.")
        if body.get("tools"):
            name = body["tools"][0]["functionDeclarations"][0]["name"]
            part = {"functionCall": {"name": name, "args": {"location": "Paris"}}, "thoughtSignature": SIGNATURE}
            thought = {"text": "I should call the tool.", "thought": True}
            return _answer(parts=[thought, part])
        config = body.get("generationConfig", {})
        if "responseJsonSchema" in config:
            return _answer(json.dumps({"city": "Paris", "schema_keys": sorted(config["responseJsonSchema"])}))
        media = [p["inlineData"]["mimeType"] for c in contents for p in c["parts"] if "inlineData" in p]
        media += [
            f"{p['fileData'].get('mimeType', '?')} at {p['fileData']['fileUri']}"
            for c in contents
            for p in c["parts"]
            if "fileData" in p
        ]
        if media:
            return _answer("I received " + ", ".join(media))
        system = body.get("systemInstruction", {}).get("parts", [{}])[0].get("text", "")
        text = " ".join(p.get("text", "") for p in last)
        return _answer(f"echo: {text}" + (f" [{system}]" if system else ""))


def _split(answer: dict[str, Any], *, cut: bool) -> list[dict[str, Any]]:
    """The answer as Gemini streams it: text in pieces, whole function calls, usage on every chunk."""
    candidate = answer["candidates"][0]
    chunks = []
    for part in candidate["content"]["parts"]:
        pieces = [part]
        if "text" in part and len(part["text"]) > 4:
            text = part["text"]
            pieces = [{**part, "text": text[: len(text) // 2]}, {**part, "text": text[len(text) // 2 :]}]
        for piece in pieces:
            chunks.append({**answer, "candidates": [{"content": {"role": "model", "parts": [piece]}, "index": 0}]})
    if not cut:
        chunks[-1]["candidates"][0]["finishReason"] = candidate["finishReason"]
    return chunks


# -- OAuth2 ------------------------------------------------------------------------------------------


def service_account(token_uri: str) -> tuple[dict[str, Any], rsa.RSAPublicKey]:
    """A throwaway service-account key file (as Google issues them) and its public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "fixture-project",
        "private_key_id": "fixture-key-id-1",
        "private_key": pem,
        "client_email": "gateway@fixture-project.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    return info, key.public_key()


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@dataclass
class TokenEndpoint:
    """``POST /token`` with the JWT-bearer grant, verifying the assertion as Google's endpoint does."""

    public_key: rsa.RSAPublicKey | None = None
    client_email: str = ""
    lifetime: int = 3599
    #: Seconds each exchange takes (a slow token endpoint).
    delay: float = 0.0
    issued: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    serial: int = 0  # tokens issued so far (a token removed from ``issued`` is revoked)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        form = dict(urllib.parse.parse_qsl((await read_body(receive)).decode()))
        headers = dict(scope["headers"])
        problem = self._check(scope, headers, form)
        if problem is not None:
            self.rejected.append(problem)
            await _send(send, 400, json.dumps({"error": "invalid_grant", "error_description": problem}).encode())
            return
        self.serial += 1
        token = f"ya29.fixture-{self.serial}"
        self.issued.append(token)
        body = {"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"}
        await _send(send, 200, json.dumps(body).encode())

    def _check(self, scope: Scope, headers: dict[bytes, bytes], form: dict[str, str]) -> str | None:
        if scope["method"] != "POST" or scope["path"] != "/token":
            return "wrong endpoint"
        if not headers.get(b"content-type", b"").startswith(b"application/x-www-form-urlencoded"):
            return "not a form"
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return "wrong grant_type"
        try:
            head, claims_b64, signature = form["assertion"].split(".")
            header, claims = json.loads(_b64(head)), json.loads(_b64(claims_b64))
        except (KeyError, ValueError):
            return "malformed assertion"
        if header.get("alg") != "RS256" or header.get("kid") != "fixture-key-id-1":
            return "wrong JWT header"
        assert self.public_key is not None
        try:
            self.public_key.verify(
                _b64(signature), f"{head}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:
            return "bad signature"
        now = time.time()
        if claims.get("iss") != self.client_email or claims.get("aud") != "https://oauth2.googleapis.com/token":
            return "wrong iss or aud"
        if claims.get("scope") != "https://www.googleapis.com/auth/cloud-platform":
            return "wrong scope"
        if not (claims["iat"] <= now + 5 and claims["exp"] > now and claims["exp"] - claims["iat"] <= 3600):
            return "expired or too long-lived"
        return None


_CLAUDE_PATH = re.compile(
    r"^/v1/projects/([a-z0-9-]+)/locations/([a-z0-9-]+)/publishers/anthropic/models/([A-Za-z0-9._@-]+)"
    r":(rawPredict|streamRawPredict)$"
)


@dataclass
class VertexClaudeUpstream:
    """Claude on Vertex AI: rawPredict / streamRawPredict with the Anthropic body, model in the URL."""

    tokens: TokenEndpoint
    requests: list[Recorded] = field(default_factory=list)
    counted: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append(Recorded(scope["method"], scope["path"], scope["query_string"].decode(), headers, raw))
        match = _CLAUDE_PATH.match(scope["path"])
        if match is None:
            await _send(send, 404, google_error(404, "NOT_FOUND", "Not found"))
            return
        if headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens.issued:
            await _send(send, 401, json.dumps([json.loads(google_error(401, "UNAUTHENTICATED", "bad token"))]).encode())
            return
        model, method = match.group(3), match.group(4)
        body = json.loads(raw)
        if model == "count-tokens":
            await self._count_tokens(send, method, body)
            return
        problem = None
        if "model" in body:
            problem = "model: Extra inputs are not permitted"
        elif body.get("anthropic_version") != "vertex-2023-10-16":
            problem = "anthropic_version: vertex-2023-10-16 expected"
        elif (method == "streamRawPredict") != (body.get("stream") is True):
            problem = "stream and method disagree"
        if problem is not None:
            error = {"type": "error", "error": {"type": "invalid_request_error", "message": problem}}
            await _send(send, 400, json.dumps(error).encode())
            return
        if model == "claude-throttled":
            await _send(send, 429, (FIXTURES / "vertex-claude/error_429_resource_exhausted.json").read_bytes())
            return
        tools = bool(body.get("tools"))
        if method == "rawPredict":
            name = "response_tool_use.json" if tools else "response_text.json"
            await _send(send, 200, (FIXTURES / "vertex-claude" / name).read_bytes())
            return
        name = "stream_tool_use.sse" if tools else "stream_text.sse"
        data = (FIXTURES / "vertex-claude" / name).read_bytes()
        if model == "claude-cut":
            data = data[: data.index(b"event: message_delta")]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for i in range(0, len(data), 97):
            await send({"type": "http.response.body", "body": data[i : i + 97], "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _count_tokens(self, send: Send, method: str, body: dict[str, Any]) -> None:
        """``count-tokens:rawPredict``: the model in the body (not the URL), Anthropic's count_tokens fields."""
        problem = None
        if method != "rawPredict":
            problem = "count-tokens: only rawPredict"
        elif not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
            problem = "model and messages: Field required"
        elif body.get("anthropic_version") not in (None, "vertex-2023-10-16"):
            problem = "anthropic_version: vertex-2023-10-16 expected"
        else:
            extra = sorted(set(body) - _COUNT_TOKENS_FIELDS)
            problem = f"{extra[0]}: Extra inputs are not permitted" if extra else None
        if problem is not None:
            error = {"type": "error", "error": {"type": "invalid_request_error", "message": problem}}
            await _send(send, 400, json.dumps(error).encode())
            return
        if body["model"] == "claude-throttled":
            await _send(send, 429, (FIXTURES / "vertex-claude/error_429_resource_exhausted.json").read_bytes())
            return
        self.counted.append(body)
        await _send(send, 200, json.dumps({"input_tokens": 1000 + len(body["messages"])}).encode())


#: What Anthropic's count_tokens accepts, plus Vertex's anthropic_version.
_COUNT_TOKENS_FIELDS = {
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
    "context_management",
    "output_config",
    "anthropic_version",
}
