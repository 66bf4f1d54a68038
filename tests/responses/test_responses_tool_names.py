"""Function names longer than the upstream takes (Codex's MCP tools, ``mcp__<server>__<tool>``, are up to 128
characters; OpenAI and Gemini take 64): shortened the same way in every request, named back in answers."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import openai

from asgi_llmroute.config import parse_config
from asgi_llmroute.formats import ResponsesTranslator
from asgi_llmroute.formats.tools import short_name
from tests.support.gateway import ROUTER_TOKEN, serve_gateway
from tests.support.provider_servers import KindUpstream
from tests.support.servers import serve

SERVER = "mcp__vault_server_with_a_name_long_enough_to_matter"
TOOL = "read_the_secret_value_kept_in_the_vault_of_this_very_long_name_88db343126f1"
FLAT = f"{SERVER}__{TOOL}"
SHORT = FLAT[:55] + "_" + hashlib.sha256(FLAT.encode()).hexdigest()[:8]
PLAIN = "a_plain_function_with_a_name_much_longer_than_sixty_four_characters_allowed"
NAMESPACE = {"type": "namespace", "name": SERVER, "tools": [{"type": "function", "name": TOOL}]}


def _completion(name: str) -> bytes:
    call = {"id": "c2", "type": "function", "function": {"name": name, "arguments": "{}"}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    choice = {"index": 0, "finish_reason": "tool_calls", "message": message}
    return json.dumps(
        {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [choice]}
    ).encode()


def _stream(name: str) -> bytes:
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    fragment = {"index": 0, "id": "c3", "type": "function", "function": {"name": name, "arguments": "{}"}}
    deltas: list[tuple[dict[str, Any], str | None]] = [({"tool_calls": [fragment]}, None), ({}, "tool_calls")]
    chunks = [{**head, "choices": [{"index": 0, "delta": d, "finish_reason": f}]} for d, f in deltas]
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def test_short_name() -> None:
    assert short_name("short", 64) == "short"
    assert short_name(FLAT, 64) == SHORT and len(SHORT) == 64
    assert short_name(FLAT, 128) == FLAT and len(FLAT) == 128
    other = FLAT[:60] + "_something_else"
    assert short_name(other, 64)[:55] == SHORT[:55] and short_name(other, 64) != SHORT


def test_long_namespaced_names_round_trip_for_a_64_character_upstream() -> None:
    tr = ResponsesTranslator()
    body = {
        "model": "m",
        "tools": [NAMESPACE, {"type": "function", "name": PLAIN}],
        "tool_choice": {"type": "function", "name": PLAIN},
        "input": [
            {"role": "user", "content": "use the vault"},
            {"type": "function_call", "call_id": "c1", "namespace": SERVER, "name": TOOL, "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "the secret"},
            {"type": "function_call", "call_id": "c2", "name": PLAIN, "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c2", "output": "plain"},
        ],
    }
    out = tr.request(body)
    names = [t["function"]["name"] for t in out["tools"]]
    assert names[0] == SHORT and len(names[1]) == 64 and names[1].startswith(PLAIN[:55])
    assert out["messages"][1]["tool_calls"][0]["function"]["name"] == SHORT  # a later turn: the same name
    assert out["messages"][3]["tool_calls"][0]["function"]["name"] == names[1]
    assert out["tool_choice"] == {"type": "function", "function": {"name": names[1]}}
    (item,) = json.loads(tr.response(_completion(SHORT)))["output"]
    assert (item["namespace"], item["name"]) == (SERVER, TOOL)
    (plain,) = json.loads(tr.response(_completion(names[1])))["output"]
    assert plain["name"] == PLAIN and "namespace" not in plain
    stream = tr.stream()
    events = (stream.feed(_stream(SHORT)) + stream.close()).decode()
    done = [json.loads(line[6:]) for line in events.splitlines() if '"response.output_item.done"' in line]
    assert (done[0]["item"]["namespace"], done[0]["item"]["name"]) == (SERVER, TOOL)


def test_anthropic_takes_128_characters() -> None:
    tr = ResponsesTranslator()
    out = tr.request({"model": "m", "input": "hi", "tools": [NAMESPACE]}, name_max=128)
    assert out["tools"][0]["function"]["name"] == FLAT


def test_a_long_mcp_tool_through_the_gateway_to_an_openai_kind() -> None:
    """Responses -> a mistral provider (64-character names, checked by the fake as OpenAI does): the call comes
    back under Codex's namespace and name, and the next turn's function_call goes up under the same short name."""
    upstream = KindUpstream("/v1", ("authorization", "Bearer mistral-test"))
    with serve(upstream) as up:
        config = parse_config(
            {
                "tokens": [{"name": "alice", "key": ROUTER_TOKEN}],
                "providers": [{"name": "m", "kind": "mistral", "base_url": f"{up}/v1", "api_key": "mistral-test"}],
                "models": [{"name": "llama", "provider": "m", "model": "mistral-large-latest"}],
            },
            source="test",
        )
        with serve_gateway(config) as url, openai.OpenAI(base_url=f"{url}/v1", api_key=ROUTER_TOKEN) as sdk:
            user: Any = {"role": "user", "content": "use the vault"}
            response = sdk.responses.create(model="llama", input=[user], tools=[NAMESPACE])  # type: ignore[list-item]
            call = response.output[0]
            assert call.type == "function_call" and (call.namespace, call.name) == (SERVER, TOOL)
            assert upstream.last.json()["tools"][0]["function"]["name"] == SHORT
            result = {"type": "function_call_output", "call_id": call.call_id, "output": "the secret"}
            given = call.model_dump(exclude_none=True)
            final = sdk.responses.create(model="llama", input=[user, given, result], tools=[NAMESPACE])  # type: ignore[list-item]
            again = final.output[0]  # the fake calls the first tool whenever there are tools
            assert again.type == "function_call" and (again.namespace, again.name) == (SERVER, TOOL)
            history = upstream.last.json()["messages"][1]["tool_calls"][0]["function"]["name"]
            assert history == SHORT
