"""A tiny MCP server over stdio (newline-delimited JSON-RPC 2.0), plain Python: one tool, which returns the
secret. Real agents (Codex) start it from their configuration; its name is long on purpose, so that the
agent's qualified tool name is longer than the upstreams allow.

Usage: ``python mcp_server.py SECRET``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

TOOL = "read_the_secret_value_kept_in_the_vault_of_this_very_long_named_test_server_for_the_gateway"
PROTOCOL = "2025-06-18"


def handle(request: dict[str, Any], secret: str) -> dict[str, Any] | None:
    """The response to one JSON-RPC message (None for notifications)."""
    method, request_id = request.get("method"), request.get("id")
    if request_id is None:
        return None  # notifications/initialized, notifications/cancelled, ...
    if method == "initialize":
        params = request.get("params") or {}
        result: Any = {
            "protocolVersion": params.get("protocolVersion") or PROTOCOL,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "vault", "version": "1.0.0"},
        }
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        schema = {"type": "object", "properties": {}, "additionalProperties": False}
        result = {"tools": [{"name": TOOL, "description": "Returns the secret value.", "inputSchema": schema}]}
    elif method == "tools/call":
        name = (request.get("params") or {}).get("name")
        if name != TOOL:
            return {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32602, "message": f"no tool {name}"}}
        result = {"content": [{"type": "text", "text": secret}], "isError": False}
    else:
        return {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32601, "message": f"no method {method}"}}
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def main() -> None:
    secret = sys.argv[1] if len(sys.argv) > 1 else "secret"
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError:
            response: dict[str, Any] | None = {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32700, "message": "parse error"},
            }
        else:
            response = handle(request, secret) if isinstance(request, dict) else None
        if response is not None:
            sys.stdout.write(json.dumps(response) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
