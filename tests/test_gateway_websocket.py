"""The gateway serves no websocket route: a handshake is refused, not left hanging."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from asgi_llmroute import build_gateway
from asgi_llmroute.config import parse_config


def test_a_websocket_handshake_is_refused() -> None:
    config = parse_config({"tokens": [{"name": "t", "key": "sk-websocket-test-0123456789"}]}, source="<test>")
    client = TestClient(build_gateway(config))
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/v1/chat/completions"):
        pass  # pragma: no cover - the handshake fails
    assert refused.value.code == 1008
