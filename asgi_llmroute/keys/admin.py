"""The virtual-key admin API, ours and LiteLLM's, as one ASGI app (admin tokens only).

Ours::

    GET    /api/keys                  list keys (?team=, ?revoked=1)
    POST   /api/keys                  create one: {"name", "team", "models", "rpm", "tpm", "max_in_flight",
                                      "budget", "budget_period", "expires_at", "metadata"} -> 201 {"key", "secret"}
    GET    /api/keys/{id or name}     show one, with its spend in the current budget period
    PATCH  /api/keys/{id or name}     change fields
    POST   /api/keys/{id or name}/rotate   a new secret (the old one stops working) -> {"key", "secret"}
    DELETE /api/keys/{id or name}     revoke it
    GET    /api/spend                 spend rows per key, model and day (?key=, ?team=, ?model=, ?start=, ?end=)

LiteLLM's (request and response shapes of LiteLLM's proxy, for tooling written against it)::

    POST /key/generate, GET /key/info, POST /key/update, POST /key/delete, GET /key/list,
    POST /key/regenerate (and /key/{key}/regenerate), GET /spend/logs

A secret appears in a response only when a key is created or rotated. Every write is logged (which
admin token by position, what, which key id), never a secret.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.types import Receive, Scope, Send

from ..context import receive_body, route_path
from ..errors import GatewayError, send_error
from ..providers.store import StoreError
from .manager import KeyManager
from .model import KeyInvalid, VirtualKey, parse_expiry
from .store import KeyConflict, KeyNotFound

__all__ = ["KEY_PATHS", "KeysAdminApp"]

logger = logging.getLogger("asgi_llmroute.admin")

#: Path prefixes this app answers.
KEY_PATHS = ("/api/keys", "/api/spend", "/key/", "/spend/")

_LITELLM_FIELDS = {
    "key_alias": "name",
    "team_id": "team",
    "models": "models",
    "max_budget": "budget",
    "budget_duration": "budget_period",
    "metadata": "metadata",
    "tpm_limit": "tpm",
    "rpm_limit": "rpm",
    "max_parallel_requests": "max_in_flight",
}


class KeysAdminApp:
    """Manage virtual keys over HTTP. ``authenticate(scope)`` raises a 401 GatewayError for non-admins."""

    def __init__(self, keys: KeyManager, *, authenticate: Callable[[Scope], None]) -> None:
        self.keys = keys
        self._authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            self._authenticate(scope)
            status, body = await self._route(scope, receive)
        except GatewayError as exc:
            await send_error(send, "openai", exc)
            return
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    # -- routing ---------------------------------------------------------------------------------

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        path = route_path(scope).rstrip("/")
        method = scope["method"]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if path == "/api/keys":
            if method == "GET":
                keys = await self._run(
                    self.keys.store.list_keys, include_revoked=_flag(query, "revoked"), team=query.get("team")
                )
                return 200, {"keys": [self._shown(k) for k in keys]}
            if method == "POST":
                return 201, await self._create(await _json_object(scope, receive), scope)
            raise _not_allowed(method)
        if path == "/api/spend" and method == "GET":
            return 200, await self._spend(query)
        if path.startswith("/api/keys/"):
            ref, _, action = path[len("/api/keys/") :].partition("/")
            if action == "rotate" and method == "POST":
                return 200, await self._rotate(ref, scope)
            if action:
                raise GatewayError(404, f"No route {path}.", code="unknown_url")
            if method == "GET":
                return 200, self._shown(await self._run(self.keys.store.get, ref), with_spend=True)
            if method == "PATCH":
                return 200, await self._update(ref, await _json_object(scope, receive), scope)
            if method == "DELETE":
                key = await self._run(self.keys.store.revoke, ref, self.keys.clock())
                self._log(scope, "revoked", key)
                return 200, self._shown(key)
            raise _not_allowed(method)
        return await self._litellm(path, method, query, scope, receive)

    # -- ours ------------------------------------------------------------------------------------

    async def _create(self, data: dict[str, Any], scope: Scope) -> dict[str, Any]:
        fields = dict(data)
        secret = fields.pop("key", None)
        if "expires_at" in fields and isinstance(fields["expires_at"], str):
            fields["expires_at"] = _expiry(fields["expires_at"], self.keys.clock(), "expires_at")
        key, secret = await self._run(self.keys.store.create, fields, self.keys.clock(), secret=secret)
        self._log(scope, "created", key)
        return {"key": self._shown(key), "secret": secret}

    async def _update(self, ref: str, data: dict[str, Any], scope: Scope) -> dict[str, Any]:
        if "expires_at" in data and isinstance(data["expires_at"], str):
            data["expires_at"] = _expiry(data["expires_at"], self.keys.clock(), "expires_at")
        key = await self._run(self.keys.store.update, ref, data, self.keys.clock())
        self._log(scope, "updated", key, fields=sorted(data))
        return self._shown(key)

    async def _rotate(self, ref: str, scope: Scope) -> dict[str, Any]:
        key, secret = await self._run(self.keys.store.rotate, ref, self.keys.clock())
        self._log(scope, "rotated", key)
        return {"key": self._shown(key), "secret": secret}

    async def _spend(self, query: dict[str, str]) -> dict[str, Any]:
        key_id = None
        if "key" in query:
            key_id = (await self._run(self.keys.store.get, query["key"])).id
        rows = await self._run(
            self.keys.store.spend_report,
            key_id=key_id,
            team=query.get("team"),
            model=query.get("model"),
            start=_day(query.get("start"), "start"),
            end=_day(query.get("end"), "end"),
        )
        return {"spend": rows, "total_usd": round(sum(r["cost_usd"] for r in rows), 10)}

    def _shown(self, key: VirtualKey, *, with_spend: bool = False) -> dict[str, Any]:
        shown = key.public()
        if with_spend or key.budget is not None:
            spent, reset = self.keys.spent(key)
            shown["spend"] = {"current_period_usd": round(spent, 10), "resets_on": reset.isoformat() if reset else None}
        return shown

    # -- LiteLLM's -------------------------------------------------------------------------------

    async def _litellm(
        self, path: str, method: str, query: dict[str, str], scope: Scope, receive: Receive
    ) -> tuple[int, Any]:
        if path == "/key/generate" and method == "POST":
            data = await _json_object(scope, receive)
            fields = self._from_litellm(data)
            fields.setdefault("name", f"key-{datetime.now(timezone.utc).strftime('%Y%m%d%H%M%S%f')}")
            key, secret = await self._run(self.keys.store.create, fields, self.keys.clock(), secret=data.get("key"))
            self._log(scope, "created", key)
            return 200, {**self._litellm_shape(key), "key": secret}
        if path == "/key/info" and method == "GET":
            ref = query.get("key")
            if not ref:
                raise GatewayError(400, "key: give ?key=<the key or its token id>.", param="key")
            key = await self._find(ref)
            return 200, {"key": ref, "info": self._litellm_shape(key)}
        if path == "/key/update" and method == "POST":
            data = await _json_object(scope, receive)
            key = await self._find(_required(data, "key"))
            changes = self._from_litellm({k: v for k, v in data.items() if k != "key"})
            key = await self._run(self.keys.store.update, key.id, changes, self.keys.clock())
            self._log(scope, "updated", key, fields=sorted(changes))
            return 200, {"key": data["key"], **self._litellm_shape(key)}
        if path == "/key/delete" and method == "POST":
            data = await _json_object(scope, receive)
            given = [data.get("keys") or [], data.get("key_aliases") or []]
            refs = [ref for refs in given if isinstance(refs, list) for ref in refs]
            if not refs or not all(isinstance(r, list) for r in given) or not all(isinstance(r, str) for r in refs):
                raise GatewayError(400, "Give 'keys' or 'key_aliases': a list of keys.", param="keys")
            found = [await self._find(ref) for ref in refs]  # all exist, or nothing is deleted
            for key in found:
                await self._run(self.keys.store.revoke, key.id, self.keys.clock())
                self._log(scope, "revoked", key)
            return 200, {"deleted_keys": refs}
        if path == "/key/list" and method == "GET":
            keys = await self._run(self.keys.store.list_keys, team=query.get("team_id"))
            if "key_alias" in query:
                keys = [k for k in keys if k.name == query["key_alias"]]
            page, size = _int(query.get("page"), 1), _int(query.get("size"), 10)
            chunk = keys[(page - 1) * size : page * size]
            full = _flag(query, "return_full_object")
            return 200, {
                "keys": [self._litellm_shape(k) if full else k.id for k in chunk],
                "total_count": len(keys),
                "current_page": page,
                "total_pages": max(1, math.ceil(len(keys) / size)),
            }
        if method == "POST" and (
            path == "/key/regenerate" or (path.startswith("/key/") and path.endswith("/regenerate"))
        ):
            data = await _json_object(scope, receive, optional=True)
            ref = path[len("/key/") : -len("/regenerate")] if path != "/key/regenerate" else _required(data, "key")
            key = await self._find(ref)
            key, secret = await self._run(self.keys.store.rotate, key.id, self.keys.clock())
            self._log(scope, "rotated", key)
            return 200, {**self._litellm_shape(key), "key": secret}
        if path == "/spend/logs" and method == "GET":
            key_id = (await self._find(query["api_key"])).id if query.get("api_key") else None
            rows = await self._run(
                self.keys.store.spend_report,
                key_id=key_id,
                start=_day(query.get("start_date"), "start_date"),
                end=_day(query.get("end_date"), "end_date"),
            )
            return 200, [_spend_log(row) for row in rows]
        raise GatewayError(404, f"No route {method} {path}.", code="unknown_url")

    def _from_litellm(self, data: dict[str, Any]) -> dict[str, Any]:
        fields = {ours: data[theirs] for theirs, ours in _LITELLM_FIELDS.items() if data.get(theirs) is not None}
        if fields.get("models") == []:
            fields["models"] = ["*"]  # LiteLLM: an empty list allows every model
        if data.get("duration") is not None:
            fields["expires_at"] = _expiry(str(data["duration"]), self.keys.clock(), "duration")
        if isinstance(fields.get("budget_period"), str):
            fields["budget_period"] = {"1d": "daily", "7d": "weekly", "1mo": "monthly", "30d": "30d"}.get(
                fields["budget_period"], fields["budget_period"]
            )
        return fields

    def _litellm_shape(self, key: VirtualKey) -> dict[str, Any]:
        public = key.public()
        spent, reset = self.keys.spent(key)
        return {
            "token": key.id,
            "token_id": key.id,
            "key_name": key.prefix,
            "key_alias": key.name,
            "team_id": key.team,
            "user_id": None,
            "models": [] if key.models == ("*",) else list(key.models),
            "max_budget": key.budget,
            "budget_duration": key.budget_period,
            "budget_reset_at": reset.isoformat() + "T00:00:00Z" if reset else None,
            "spend": round(spent, 10),
            "tpm_limit": key.tpm,
            "rpm_limit": key.rpm,
            "max_parallel_requests": key.max_in_flight,
            "metadata": key.metadata,
            "expires": public["expires_at"],
            "created_at": public["created_at"],
            "updated_at": public["updated_at"],
            "blocked": key.revoked_at is not None,
        }

    async def _find(self, ref: str) -> VirtualKey:
        """A key by its secret (as LiteLLM clients pass it), its id, or its name."""
        if not isinstance(ref, str) or not ref:
            raise GatewayError(400, "key: give the key, its token id or its alias.", param="key")
        principal = self.keys.principal(ref)
        if principal is not None and principal.key_id is not None:
            ref = principal.key_id
        key: VirtualKey = await self._run(self.keys.store.get, ref)
        return key

    # -- plumbing --------------------------------------------------------------------------------

    @staticmethod
    async def _run(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(lambda: func(*args, **kwargs))
        except KeyNotFound as exc:
            raise GatewayError(404, f"{exc}.", code="key_not_found") from None
        except KeyConflict as exc:
            raise GatewayError(409, f"{exc}.", code="conflict") from None
        except KeyInvalid as exc:
            param = exc.problems[0].split(":", 1)[0] if exc.problems else None
            raise GatewayError(
                422, "Invalid key: " + "; ".join(exc.problems), code="invalid_key", param=param
            ) from None
        except StoreError as exc:
            raise GatewayError(503, f"The key store is unavailable: {exc}", code="store_unavailable") from None

    def _log(self, scope: Scope, action: str, key: VirtualKey, **details: Any) -> None:
        extra = "".join(f" {k}={v}" for k, v in details.items())
        logger.info("admin: %s virtual key id=%s name=%r team=%r%s", action, key.id, key.name, key.team, extra)
        self.keys.invalidate()


async def _json_object(scope: Scope, receive: Receive, *, optional: bool = False) -> dict[str, Any]:
    ctx, _ = await receive_body(scope, receive)
    if optional and not ctx.body:
        return {}
    try:
        data = json.loads(ctx.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise GatewayError(400, "The body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise GatewayError(400, "The body must be a JSON object.", code="invalid_json")
    return data


def _required(data: dict[str, Any], name: str) -> Any:
    if data.get(name) in (None, ""):
        raise GatewayError(400, f"{name}: this field is required.", param=name)
    return data[name]


def _expiry(value: str, now: datetime, field: str) -> datetime | None:
    try:
        return parse_expiry(value, now)
    except ValueError as exc:
        raise GatewayError(422, f"{field}: {exc}", param=field, code="invalid_key") from None


def _day(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise GatewayError(400, f"{field}: not a date (YYYY-MM-DD).", param=field) from None


def _int(value: str | None, default: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        raise GatewayError(400, f"{value!r} is not a whole number.") from None
    if not 1 <= number <= 10_000:
        raise GatewayError(400, "page and size are between 1 and 10000.")
    return number


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true", "yes")


def _not_allowed(method: str) -> GatewayError:
    return GatewayError(405, f"Method {method} is not allowed here.")


def _spend_log(row: dict[str, Any]) -> dict[str, Any]:
    prompt = row["input_tokens"]
    completion = row["output_tokens"]
    return {
        "request_id": f"{row['day']}:{row['key_id']}:{row['model']}",
        "api_key": row["key_id"],
        "key_alias": row["key_name"],
        "team_id": row["team"],
        "model": row["model"],
        "spend": row["cost_usd"],
        "startTime": f"{row['day']}T00:00:00Z",
        "endTime": f"{row['day']}T23:59:59Z",
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "requests": row["requests"],
    }
