"""No secret in any log line: run last in the package, over everything the other modules logged."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.gateway import SECRETS

from ._support import ALL_LINES, capture_logs
from .conftest import Running
from .test_metrics import ADMIN_TOKEN


def test_no_secret_is_ever_logged(start: Any) -> None:
    # Requests that carry every secret in the places most likely to leak: bad and good tokens,
    # provider keys as client credentials, the admin token, a secret as the request id.
    running: Running = start(admin={"tokens": [ADMIN_TOKEN]})
    with capture_logs() as logs:
        for secret in (*SECRETS, ADMIN_TOKEN):
            for headers in ({"authorization": f"Bearer {secret}"}, {"x-api-key": secret}, {"x-request-id": secret}):
                httpx.post(f"{running.url}/v1/chat/completions", headers=headers, json={"model": "gpt-test"})
                httpx.get(f"{running.url}/metrics", headers=headers)
        logs.access(5 * 3 * 2)
    lines = ALL_LINES + logs.lines
    assert len(lines) > 100
    assert any("asgi_llmroute.access" in line for line in lines)
    for secret in (*SECRETS, ADMIN_TOKEN):
        leaks = [line for line in lines if secret in line]
        assert not leaks, leaks[:3]
