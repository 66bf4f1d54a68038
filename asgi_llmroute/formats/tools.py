"""Tool ids and tool names: sanitising for the upstream and the per-request reverse map."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from typing import Any

from ._json import loads

_INVALID = re.compile(r"[^a-zA-Z0-9_-]")

#: Anthropic tool names: ``^[a-zA-Z0-9_-]{1,128}$``; OpenAI function names: the same charset, 64 chars.
ANTHROPIC_NAME_MAX = 128
OPENAI_NAME_MAX = 64


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
            out = _INVALID.sub("_", name)[: self._max] or "tool"
            if out in self._to_client:
                digest = hashlib.sha256(name.encode()).hexdigest()[:8]
                out = out[: self._max - 9] + "_" + digest
                while out in self._to_client:  # astronomically unlikely; stay deterministic anyway
                    digest = hashlib.sha256(digest.encode()).hexdigest()[:8]
                    out = out[: self._max - 9] + "_" + digest
        self._to_upstream[name] = out
        self._to_client[out] = name
        return out

    def client(self, name: str) -> str:
        """Client name for a name the upstream used (unknown names pass through)."""
        return self._to_client.get(name, name)

    def _is_valid(self, name: str) -> bool:
        return 0 < len(name) <= self._max and _INVALID.search(name) is None


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
