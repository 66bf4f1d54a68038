"""Tool ids and tool names (sanitising for the upstream, the per-request reverse map), and reading
the clients' tool declarations, tool calls and tool choices the same way for every upstream."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from ._json import loads
from .body import each_object
from .types import TranslationError

_INVALID = re.compile(r"[^a-zA-Z0-9_-]")

#: Anthropic tool names: ``^[a-zA-Z0-9_-]{1,128}$``; OpenAI function names: the same charset, 64 chars.
ANTHROPIC_NAME_MAX = 128
OPENAI_NAME_MAX = 64


#: Chat function names the Responses translation made -> (namespace or None, name) as the client offered them.
ToolNameMap = dict[str, tuple[str | None, str]]


def short_name(name: str, limit: int) -> str:
    """``name`` if it fits in ``limit`` characters, else its first ``limit - 9`` + ``_`` + 8 hex of its
    SHA-256: the same for the same name in every request (so a later turn's call matches), distinct for
    names that only differ after the cut."""
    return name if len(name) <= limit else _hashed(name, _digest(name), limit)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _hashed(name: str, digest: str, limit: int) -> str:
    """``name`` cut to ``limit - 9`` characters, then ``_`` and the 8-hex ``digest``: at most ``limit``."""
    return name[: limit - 9] + "_" + digest


def sanitize_id(tool_id: str) -> str:
    """Tool id safe for Anthropic (``^[a-zA-Z0-9_-]+$``); deterministic, so ``tool_use.id`` and
    ``tool_result.tool_use_id`` still match after it (e.g. ``functions.Bash:0`` -> ``functions_Bash_0``)."""
    return _INVALID.sub("_", tool_id)


def new_tool_id(prefix: str) -> str:
    """A fresh unique tool id (``toolu_...`` / ``call_...``) for upstreams that sent none."""
    return prefix + uuid.uuid4().hex[:24]


class ToolNames:
    """Maps client tool names to names the upstream accepts, and back.

    Valid names are kept as they are; others get invalid characters replaced and are truncated,
    with a short hash suffix when that would collide with another name of the same request.
    """

    __slots__ = ("_max", "_to_upstream", "_to_client")

    def __init__(self, max_len: int) -> None:
        self._max = max_len
        self._to_upstream: dict[str, str] = {}
        self._to_client: dict[str, str] = {}  # every upstream name in use -> client name

    def register(self, names: Iterable[str]) -> None:
        """Reserve a batch of names, valid ones first so a rewritten name never steals one."""
        pending = [n for n in names if n not in self._to_upstream]
        for name in pending:
            if self._is_valid(name) and name not in self._to_client:
                self._to_upstream[name] = name
                self._to_client[name] = name
        for name in pending:
            self.upstream(name)

    def upstream(self, name: str) -> str:
        """Name to send upstream for a client tool name."""
        known = self._to_upstream.get(name)
        if known is not None:
            return known
        if self._is_valid(name) and name not in self._to_client:
            out = name
        else:
            out = self._rewrite(name)
            if out in self._to_client:
                digest = _digest(name)
                out = _hashed(out, digest, self._max)
                while out in self._to_client:  # astronomically unlikely; stay deterministic anyway
                    digest = _digest(digest)
                    out = _hashed(out, digest, self._max)
        self._to_upstream[name] = out
        self._to_client[out] = name
        return out

    def reserve(self, upstream_name: str) -> None:
        """Keep ``upstream_name`` for the upstream's own tool (Anthropic's ``web_search`` server tool): a
        client tool of that name gets another upstream name, and is still called by its own."""
        self._to_client.setdefault(upstream_name, upstream_name)

    def client(self, name: str) -> str:
        """Client name for a name the upstream used (unknown names pass through)."""
        return self._to_client.get(name, name)

    def _is_valid(self, name: str) -> bool:
        return 0 < len(name) <= self._max and _INVALID.search(name) is None

    def _rewrite(self, name: str) -> str:
        """A valid name for an invalid one (before any collision suffix)."""
        return _INVALID.sub("_", name)[: self._max] or "tool"


def parse_tool_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call arguments (JSON text) -> ``tool_use.input`` object; D-4 for unparseable text."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = loads(arguments)
    except (ValueError, RecursionError):
        return {"_raw_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}


# -- reading the clients' tools ------------------------------------------------------------------


def openai_function_tools(tools: Any, upstream: str) -> list[tuple[str, dict[str, Any]]]:
    """(parameter path, ``function`` object with a non-empty name) of each OpenAI Chat tool;
    raises on anything but function tools, which ``upstream`` (for the message) cannot take."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise TranslationError("tools must be an array", "tools")
    out: list[tuple[str, dict[str, Any]]] = []
    for param, tool in each_object(tools, "tools", "tools entries"):
        if tool.get("type") != "function":
            raise TranslationError(
                f"tool type {tool.get('type')!r} cannot be sent to {upstream} (functions only)", param
            )
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise TranslationError("function tools need function.name", f"{param}.function.name")
        out.append((param, function))
    return out


def openai_tool_calls(calls: list[Any], param: str, upstream: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(call id, function name, parsed arguments) of each entry of an assistant message's
    ``tool_calls`` array (at ``param``); raises on entries that are not function calls."""
    for p, call in each_object(calls, param, "tool_calls entries"):
        if call.get("type", "function") != "function":
            raise TranslationError(f"only function tool calls can be sent to {upstream}", f"{p}.type")
        function = call.get("function")
        call_id = call.get("id")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise TranslationError("tool call needs function.name", f"{p}.function.name")
        if not isinstance(call_id, str) or not call_id:
            raise TranslationError("tool call needs an id", f"{p}.id")
        yield call_id, function["name"], parse_tool_arguments(function.get("arguments"))


def openai_tool_choice(choice: Any) -> tuple[str, list[str] | None] | None:
    """An OpenAI ``tool_choice`` as (mode, tool names or None for all): mode ``auto``, ``none``,
    ``required`` or ``function`` (one named function forced); None when the client sent none."""
    if choice is None:
        return None
    if choice in ("auto", "none", "required"):
        return choice, None
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "function":
            function = choice.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if isinstance(name, str) and name:
                return "function", [name]
        elif kind == "allowed_tools":
            allowed = choice.get("allowed_tools")
            if isinstance(allowed, dict) and isinstance(allowed.get("tools"), list):
                listed = [
                    t["function"]["name"]
                    for t in allowed["tools"]
                    if isinstance(t, dict)
                    and isinstance(t.get("function"), dict)
                    and isinstance(t["function"].get("name"), str)
                ]
                return ("required" if allowed.get("mode") == "required" else "auto"), listed or None
    raise TranslationError("unsupported tool_choice", "tool_choice")


def anthropic_tools(tools: Any) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str, str | None]]]:
    """(parameter path, tool) of each custom Anthropic tool (its name checked), and (parameter
    path, type, name) of each hosted (server) tool, which the caller drops or maps."""
    if tools is None:
        return [], []
    if not isinstance(tools, list):
        raise TranslationError("tools must be an array", "tools")
    custom: list[tuple[str, dict[str, Any]]] = []
    hosted: list[tuple[str, str, str | None]] = []
    for param, tool in each_object(tools, "tools", "tools entries"):
        name = tool.get("name")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            hosted.append((param, str(kind), name if isinstance(name, str) else None))
            continue
        if not isinstance(name, str) or not name:
            raise TranslationError("tools need a name", f"{param}.name")
        custom.append((param, tool))
    return custom, hosted


def anthropic_tool_choice(choice: Any, hosted: Iterable[str], upstream: str) -> tuple[str, str | None] | None:
    """An Anthropic ``tool_choice`` as (type, tool name for type ``tool``); raises when it forces
    a hosted tool ``upstream`` (for the message) does not run. None when the client sent none."""
    if choice is None:
        return None
    if not isinstance(choice, dict):
        raise TranslationError("tool_choice must be an object", "tool_choice")
    kind = choice.get("type")
    if kind in ("auto", "any", "none"):
        return kind, None
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise TranslationError("tool_choice of type tool needs a name", "tool_choice.name")
        if name in hosted:
            raise TranslationError(
                f"tool_choice names hosted tool {name!r}, which {upstream} cannot run", "tool_choice.name"
            )
        return kind, name
    raise TranslationError(f"unsupported tool_choice type {kind!r}", "tool_choice")
