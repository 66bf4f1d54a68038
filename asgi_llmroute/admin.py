"""The provider admin API: an ASGI app the gateway mounts at ``/api/providers``.

    GET    /api/providers             list stored providers (keys redacted)
    POST   /api/providers             add one (JSON body: a provider record, ``api_key`` included)
    POST   /api/providers/import      import a file (body; ?format=toml|json|env|litellm&dry_run=1&skip_invalid=1)
    GET    /api/providers/{name}      show one
    PATCH  /api/providers/{name}      change some fields (``"api_key": null`` removes the key)
    DELETE /api/providers/{name}      remove one

Only admin tokens (``[admin] tokens``) are accepted, never router tokens, compared in constant
time. Keys are redacted in every response; errors are ``{"error": {...}}`` JSON with no traceback
and no key. Store calls run in a worker thread: SQLite may wait for another process's write lock.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from .context import parse_json_body, receive_body, route_path
from .errors import GatewayError, send_error
from .fields import is_reference
from .providers.records import ProviderRecord, ProviderSpec, describe_validation
from .providers.store import (
    ProviderStore,
    RecordConflict,
    RecordError,
    RecordInvalid,
    RecordNotFound,
    StoreError,
)
from .secret import Secret
from .send import send_json
from .state import StateBackend, StateUnavailable
from .tokens import AdminTokens, presented_tokens

__all__ = ["PREFIX", "USAGE_PATH", "ProviderAdminApp", "UsageAdminApp", "authenticate"]

PREFIX = "/api/providers"
USAGE_PATH = "/api/usage"
_CONTENT_FORMATS = {
    "application/json": "json",
    "application/toml": "toml",
    "application/yaml": "litellm",
    "application/x-yaml": "litellm",
    "text/yaml": "litellm",
}


class ProviderAdminApp:
    """Manage the provider store over HTTP (see the module docstring for the routes).

    ``reserved_providers``/``reserved_models`` are the config file's names, which the store may not
    reuse; ``on_change`` is called after every write (the gateway re-reads its routes).
    """

    def __init__(
        self,
        *,
        store: ProviderStore | None,
        tokens: Iterable[Secret],
        reserved_providers: Collection[str] = (),
        reserved_models: Collection[str] = (),
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._admin = AdminTokens(tokens)
        self._reserved_providers = frozenset(reserved_providers)
        self._reserved_models = frozenset(reserved_models)
        self._on_change = on_change

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            self.authenticate(scope)
            status, body = await self._route(scope, receive)
        except GatewayError as exc:
            await send_error(send, "openai", exc)
            return
        await send_json(send, status, body)

    def authenticate(self, scope: Scope) -> None:
        """Raise a 401 :class:`GatewayError` unless the request carries an admin token."""
        authenticate(self._admin, scope)

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        path = route_path(scope)
        path = path[len(PREFIX) :] if path.startswith(PREFIX) else path
        name = path.strip("/")
        method = scope["method"]
        if self._store is None:
            raise GatewayError(404, "No provider store is configured ([store] in the config file).", code="no_store")
        store = self._store
        if not name:
            if method == "GET":
                return 200, await _run(_list, store)
            if method == "POST":
                return 201, await self._add(await _json(scope, receive))
            raise _not_allowed(method, "GET, POST")
        if name == "import" and method == "POST":
            return await self._import(scope, receive)
        if "/" in name:
            raise GatewayError(404, f"No route {route_path(scope)}.", code="unknown_url")
        if method == "GET":
            record = await _run(store.get, name)
            return 200, record.view()
        if method == "PATCH":
            return 200, await self._update(name, await _json(scope, receive))
        if method == "DELETE":
            await _run(store.remove, name)
            self._changed()
            return 200, {"name": name, "deleted": True}
        raise _not_allowed(method, "GET, PATCH, DELETE")

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _check_names(self, record_name: str, models: Iterable[str]) -> None:
        if record_name in self._reserved_providers:
            raise GatewayError(
                409,
                f"{record_name!r} is a provider in the config file; a name may be in one place only.",
                code="conflict",
            )
        taken = sorted(set(models) & self._reserved_models)
        if taken:
            raise GatewayError(409, f"Model(s) {', '.join(taken)} are defined in the config file.", code="conflict")

    async def _add(self, body: Any) -> dict[str, Any]:
        assert self._store is not None
        if not isinstance(body, Mapping):
            raise GatewayError(422, "The body must be a JSON object (a provider record).")
        _refuse_reference(body.get("api_key"))
        try:
            record = ProviderSpec.model_validate(body).record()
        except ValidationError as exc:
            raise _invalid(exc) from None
        self._check_names(record.name, record.models)
        stored: ProviderRecord = await _run(self._store.add, record)
        self._changed()
        return stored.view()

    async def _update(self, name: str, body: Any) -> dict[str, Any]:
        assert self._store is not None
        if not isinstance(body, Mapping):
            raise GatewayError(422, "The body must be a JSON object (the fields to change).")
        if "name" in body and body["name"] != name:
            raise GatewayError(422, "Providers cannot be renamed: add a new one and remove this one.", param="name")
        _refuse_reference(body.get("api_key"))
        models = body.get("models")
        self._check_names(name, models if isinstance(models, (dict, list)) else ())
        record: ProviderRecord = await _run(self._store.update, name, dict(body))
        self._changed()
        return record.view()

    async def _import(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        from .importers import ImportFileError, build_plan, parse  # with the first import, not at start-up

        assert self._store is not None
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        fmt = query.get("format") or _format_from_headers(scope)
        if fmt is None:
            raise GatewayError(400, "Give the file's format: ?format=toml|json|env|litellm.", param="format")
        dry_run = _flag(query, "dry_run")
        skip_invalid = _flag(query, "skip_invalid")
        ctx, _ = await receive_body(scope, receive)
        try:
            text = ctx.body.decode("utf-8")
            parsed = parse(text, fmt)
        except UnicodeDecodeError:
            raise GatewayError(400, "The file is not UTF-8 text.") from None
        except ImportFileError as exc:
            raise GatewayError(422, f"Cannot import: {exc}", code="invalid_import") from None
        store = self._store

        def plan_and_apply() -> dict[str, Any]:
            snapshot = store.load()
            plan = build_plan(
                parsed,
                {r.name: r for r in snapshot.records},
                unreadable={e.name: e.problem for e in snapshot.errors},
                reserved_providers=self._reserved_providers,
                reserved_models=self._reserved_models,
                allow_refs=False,
            )
            if plan.errors and not skip_invalid and not dry_run:
                problems = "; ".join(str(e) for e in plan.errors)
                raise GatewayError(
                    422,
                    f"Nothing was imported: {len(plan.errors)} invalid entr(y/ies): {problems}",
                    code="invalid_import",
                )
            applied = not dry_run and bool(plan.records())
            if applied:
                store.apply(plan.records())
            return {"dry_run": dry_run, "applied": applied, **plan.as_json()}

        result = await _run(plan_and_apply)
        if result["applied"]:
            self._changed()
        return 200, result


def authenticate(admin: AdminTokens, scope: Scope) -> None:
    """Raise 401 unless the request carries one of the ``admin`` tokens (compared in constant time)."""
    if not admin:
        raise GatewayError(401, "The admin API is disabled: no admin tokens are configured ([admin] tokens).")
    presented = presented_tokens(scope["headers"])
    if not admin.admits(presented):
        message = "Invalid admin token." if presented else "Missing admin token: send 'Authorization: Bearer <token>'."
        raise GatewayError(401, message, code="invalid_admin_token", headers=(("www-authenticate", "Bearer"),))


class UsageAdminApp:
    """``GET /api/usage[?day=YYYY-MM-DD]``: token usage per router token and model for one UTC day.

    Admin tokens only. With a shared state (Redis) the totals are those of every instance; with the
    in-memory state, of this process only.
    """

    def __init__(self, *, state: StateBackend, tokens: Iterable[Secret]) -> None:
        self._state = state
        self._admin = AdminTokens(tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            authenticate(self._admin, scope)
            if scope["method"] not in ("GET", "HEAD"):
                raise _not_allowed(scope["method"], "GET")
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            day = query.get("day") or None
            if day is not None and not _DAY.fullmatch(day):
                raise GatewayError(400, "day: expected YYYY-MM-DD.", param="day", code="invalid_day")
            try:
                rows = await self._state.usage(day)
            except StateUnavailable:
                raise GatewayError(503, "Usage totals are unavailable right now.", code="state_unavailable") from None
        except GatewayError as exc:
            await send_error(send, "openai", exc)
            return
        data = [dataclasses.asdict(row) for row in rows]
        await send_json(send, 200, {"object": "list", "day": day or (rows[0].day if rows else None), "data": data})


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _list(store: ProviderStore) -> dict[str, Any]:
    snapshot = store.load()
    return {
        "object": "list",
        "data": [r.view() for r in snapshot.records],
        "unreadable": [{"name": e.name, "error": e.problem} for e in snapshot.errors],
    }


async def _run(func: Callable[..., Any], *args: Any) -> Any:
    """Run a store call in a thread, mapping store errors to HTTP statuses."""
    try:
        return await anyio.to_thread.run_sync(func, *args)
    except RecordNotFound as exc:
        raise GatewayError(404, f"{exc}.", code="provider_not_found") from None
    except RecordConflict as exc:
        raise GatewayError(409, f"{exc}.", code="conflict") from None
    except RecordInvalid as exc:
        raise GatewayError(422, f"{exc}.", param=exc.param, code="invalid_provider") from None
    except RecordError as exc:
        raise GatewayError(422, f"{exc}; give it a new api_key or remove it.", code="provider_unreadable") from None
    except StoreError as exc:
        raise GatewayError(503, f"The provider store is unavailable: {exc}", code="store_unavailable") from None


async def _json(scope: Scope, receive: Receive) -> Any:
    ctx, _ = await receive_body(scope, receive)
    return parse_json_body(ctx.body)


def _refuse_reference(key: object) -> None:
    # The admin API must not read the server's environment or files into a key.
    if isinstance(key, str) and is_reference(key.strip()):
        raise GatewayError(
            422, "api_key: references are not resolved over the admin API; send the key itself.", param="api_key"
        )


def _invalid(exc: ValidationError) -> GatewayError:
    lines = describe_validation(exc)
    first = exc.errors()[0]["loc"] if exc.errors() else ()
    param = str(first[0]) if first else None
    return GatewayError(422, "Invalid provider: " + "; ".join(lines), param=param, code="invalid_provider")


def _not_allowed(method: str, allowed: str) -> GatewayError:
    return GatewayError(405, f"Method {method} is not allowed here.", headers=(("allow", allowed),))


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true", "yes")


def _format_from_headers(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return _CONTENT_FORMATS.get(value.decode("latin-1").split(";")[0].strip().lower())
    return None
