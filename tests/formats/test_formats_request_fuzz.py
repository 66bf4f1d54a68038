"""Fuzzing request translation: plausible-but-odd client JSON either translates or raises TranslationError."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_llmroute.formats import TranslationError, new_translator

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

texts = st.sampled_from(["", " ", "\n", "hello", "héllo ☕", "x" * 30])
ids = st.sampled_from(["call_1", "call_2", "functions.Bash:0", "toolu_x", "", "a b"])
names = st.sampled_from(["f", "g", "ns.tool", "t" * 80, "Bash", ""])
arguments = st.sampled_from(["", "{}", '{"a": 1}', "{broken", "[1]", "null"]) | st.dictionaries(
    st.text(max_size=3), st.integers(), max_size=2
)
junk = st.none() | st.integers() | st.text(max_size=3) | st.lists(st.integers(), max_size=2)

oa_parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": texts}),
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": st.fixed_dictionaries(
                {
                    "url": st.sampled_from(
                        ["https://x/a.png", "data:image/png;base64,AA", "data:image/bmp;base64,AA", "x"]
                    )
                }
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("file"),
            "file": st.fixed_dictionaries(
                {"file_data": st.sampled_from(["data:application/pdf;base64,JVB", "JVB", "data:text/csv;base64,AA"])}
            ),
        }
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["refusal", "input_audio", "weird"]), "refusal": texts}),
    junk,
)
oa_content = st.none() | texts | st.lists(oa_parts, max_size=3) | junk
oa_call = st.fixed_dictionaries(
    {
        "id": ids,
        "type": st.sampled_from(["function", "function", "custom"]),
        "function": st.fixed_dictionaries({"name": names, "arguments": arguments}),
    }
)
oa_message = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "developer"]), "content": oa_content}),
    st.fixed_dictionaries(
        {"role": st.just("assistant"), "content": oa_content},
        optional={
            "tool_calls": st.lists(oa_call, max_size=3) | junk,
            "thinking_blocks": st.lists(
                st.fixed_dictionaries(
                    {"type": st.just("thinking"), "thinking": texts, "signature": st.sampled_from(["", "sig"])}
                ),
                max_size=2,
            ),
        },
    ),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": ids | junk, "content": oa_content}),
    st.fixed_dictionaries({"role": st.sampled_from(["function", "nope"]), "name": names, "content": oa_content}),
)
oa_function = st.fixed_dictionaries(
    {"name": names}, optional={"parameters": st.none() | st.just({"type": "object"}) | st.just({})}
)
oa_tool = st.fixed_dictionaries({"type": st.sampled_from(["function", "function", "custom"]), "function": oa_function})
oa_body = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": st.lists(oa_message, min_size=1, max_size=6)},
    optional={
        "tools": st.lists(oa_tool, max_size=3),
        "tool_choice": st.sampled_from(["auto", "none", "required", "bogus"])
        | st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries({"name": names})}),
        "parallel_tool_calls": st.booleans(),
        "reasoning_effort": st.sampled_from(["none", "low", "high", "max", "bogus"]),
        "max_completion_tokens": st.integers(-1, 20000) | junk,
        "temperature": st.floats(0, 2) | junk,
        "top_p": st.floats(0, 1),
        "stop": texts | st.lists(texts, max_size=5) | junk,
        "n": st.integers(0, 3),
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
        "user": texts | junk,
    },
)

an_block = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": texts}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": ids, "name": names, "input": arguments}),
    st.fixed_dictionaries(
        {
            "type": st.just("tool_result"),
            "tool_use_id": ids | junk,
            "is_error": st.booleans(),
            "content": texts | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts}), max_size=2),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("image"),
            "source": st.sampled_from(
                [
                    {"type": "base64", "media_type": "image/png", "data": "AA"},
                    {"type": "url", "url": "https://x"},
                    {"type": "file", "file_id": "f"},
                ]
            ),
        }
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["thinking", "redacted_thinking", "search_result"])}),
    junk,
)
an_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "user", "system", "nope"]),
        "content": texts | st.lists(an_block, max_size=4) | junk,
    }
)
an_tool = st.fixed_dictionaries(
    {"name": names},
    optional={"type": st.sampled_from(["custom", "web_search_20250305"]), "input_schema": st.just({"type": "object"})},
)
an_body = st.fixed_dictionaries(
    {"model": st.just("m"), "max_tokens": st.integers(1, 9000), "messages": st.lists(an_message, max_size=6)},
    optional={
        "system": texts | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts}), max_size=2),
        "tools": st.lists(an_tool, max_size=3),
        "tool_choice": st.fixed_dictionaries(
            {"type": st.sampled_from(["auto", "any", "tool", "none", "x"])},
            optional={"name": names, "disable_parallel_tool_use": st.booleans()},
        ),
        "thinking": st.fixed_dictionaries(
            {"type": st.sampled_from(["enabled", "adaptive", "disabled"])},
            optional={"budget_tokens": st.integers(0, 9000)},
        ),
        "stop_sequences": st.lists(texts, max_size=6),
        "stream": st.booleans(),
        "temperature": st.floats(0, 1),
    },
)


def check(pair: tuple[Any, Any], body: dict[str, Any]) -> None:
    try:
        out = new_translator(*pair).request(body)
    except TranslationError as exc:
        assert isinstance(exc.message, str) and exc.message
        return
    assert isinstance(out["messages"], list)
    if pair[1] == "anthropic":
        assert out["messages"], "Anthropic needs at least one message"
        for message in out["messages"]:
            content = message["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            assert blocks
            for block in blocks:
                if block["type"] == "text":
                    assert block["text"].strip(), "never send empty/whitespace text"
        roles = [m["role"] for m in out["messages"]]
        assert all(a != b for a, b in zip(roles, roles[1:], strict=False)), "turns alternate"


@SETTINGS
@given(oa_body)
def test_openai_requests(body: dict[str, Any]) -> None:
    check(("openai", "anthropic"), body)


@SETTINGS
@given(an_body)
def test_anthropic_requests(body: dict[str, Any]) -> None:
    check(("anthropic", "openai"), body)
