"""The protocol chores that have one home each (docs/architecture.md, "One home per chore")."""

from __future__ import annotations

import anyio
import pytest
from starlette.types import Message

from asgi_llmroute import GatewayError, Principal, Secret
from asgi_llmroute.disconnect import run_while_connected, until_disconnect
from asgi_llmroute.formats.stream_base import StreamProtocolError, load_event_object
from asgi_llmroute.secret import SecretReferenceError, litellm_env_var, redact_url, resolve_reference
from asgi_llmroute.tokens import AdminTokens, presented_tokens


@pytest.mark.parametrize(
    ("headers", "tokens"),
    [
        ([(b"authorization", b"Bearer sk-a")], ["sk-a"]),
        ([(b"authorization", b"  bearer   sk-a  ")], ["sk-a"]),
        ([(b"x-api-key", b" sk-b ")], ["sk-b"]),
        ([(b"authorization", b"Bearer sk-a"), (b"x-api-key", b"sk-b")], ["sk-a", "sk-b"]),
        ([(b"x-api-key", b"sk-b"), (b"authorization", b"Bearer sk-a")], ["sk-b", "sk-a"]),
        ([(b"authorization", b"Basic dXNlcjpwYXNz")], []),
        ([(b"authorization", b"Bearer "), (b"x-api-key", b"  ")], []),
        ([(b"cookie", b"sk-a"), (b"api-key", b"sk-a")], []),
    ],
)
def test_presented_tokens(headers: list[tuple[bytes, bytes]], tokens: list[str]) -> None:
    assert presented_tokens(headers) == tokens


def test_admin_tokens() -> None:
    admin = AdminTokens([Secret("sk-admin-1"), Secret("sk-admin-2"), Secret(""), Secret("  ")])
    assert admin
    assert admin.admits(["sk-admin-2"])
    assert admin.admits(["nope", "sk-admin-1"])
    assert not admin.admits(["nope"])
    assert not admin.admits([])
    assert not admin.admits([""])  # an empty configured token admits nobody
    assert not AdminTokens([Secret("")])


def test_principal_check() -> None:
    Principal("anyone").check("gpt-4o")
    limited = Principal("limited", ("gpt-*",))
    limited.check("gpt-4o")
    with pytest.raises(GatewayError) as info:
        limited.check("claude-3")
    assert (info.value.status, info.value.code) == (403, "model_not_allowed")


def test_secret_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMROUTE_TEST_REF", "from-env")
    assert resolve_reference("env:LLMROUTE_TEST_REF") == "from-env"
    assert resolve_reference("env:LLMROUTE_TEST_REF", env={"LLMROUTE_TEST_REF": "from-file"}) == "from-file"
    assert resolve_reference("env:ONLY_IN_FILE", env={"ONLY_IN_FILE": "x"}) == "x"
    assert resolve_reference("literal") == "literal"
    with pytest.raises(SecretReferenceError, match="LLMROUTE_TEST_UNSET is not set"):
        resolve_reference("env:LLMROUTE_TEST_UNSET")
    assert litellm_env_var("os.environ/OPENAI_API_KEY") == "OPENAI_API_KEY"
    assert litellm_env_var("sk-literal") is None


def _receive(messages: list[Message], then_wait: bool = True):
    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        if then_wait:
            await anyio.sleep_forever()
        return {"type": "http.disconnect"}

    return receive


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rediss://user:pw@h:6380/2", "rediss://user:***@h:6380/2"),
        ("postgresql://u:pw@h:5/d", "postgresql://u:***@h:5/d"),
        ("redis://:hunter2@127.0.0.1/0", "redis://:***@127.0.0.1/0"),
        ("postgresql://u@h/d?sslmode=require", "postgresql://u@h/d?sslmode=require"),
        ("redis://h:99999999/0", "redis://h:99999999/0"),  # no password: as given
        ("redis://u:pw@h:99999999/0", "<redis url>"),  # a port urlsplit rejects: nothing of it is shown
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url, "<redis url>") == shown


@pytest.mark.parametrize("data", ['{"type": "ping"}', b'{"type": "ping"}'])
def test_load_event_object(data: str | bytes) -> None:
    assert load_event_object(data) == {"type": "ping"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{nope", "upstream sent a chunk that is not valid JSON"),
        (b"\xff{}", "upstream sent a chunk that is not valid JSON"),
        ("[" * 100_000, "upstream sent a chunk that is not valid JSON"),
        ("[1]", "upstream sent a chunk that is not a JSON object"),
        (b"null", "upstream sent a chunk that is not a JSON object"),
    ],
)
def test_load_event_object_refuses(data: str | bytes, message: str) -> None:
    with pytest.raises(StreamProtocolError) as info:
        load_event_object(data, "a chunk")
    assert info.value.message == message


@pytest.mark.anyio
async def test_until_disconnect_keeps_the_other_messages() -> None:
    kept: list[Message] = []
    body = {"type": "http.request", "body": b"x", "more_body": False}
    await until_disconnect(_receive([body], then_wait=False), kept.append)
    assert kept == [body]


@pytest.mark.anyio
async def test_run_while_connected() -> None:
    async def work() -> str:
        await anyio.sleep(0)
        return "done"

    assert await run_while_connected(_receive([]), work) == (True, "done")
    # The client leaves first: the work is cancelled, nothing of it is returned.
    finished = []

    async def slow() -> str:
        await anyio.sleep(30)
        finished.append(True)
        return "late"

    with anyio.fail_after(5):
        assert await run_while_connected(_receive([], then_wait=False), slow) == (False, None)
    assert finished == []
