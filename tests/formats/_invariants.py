"""Checker for the invariants of an Anthropic-format stream (docs/translation.md, "Stream")."""

from __future__ import annotations

from typing import Any

from ._helpers import sse_pairs

_DELTA_FOR = {"text": "text_delta", "thinking": "thinking_delta", "tool_use": "input_json_delta"}


def check_anthropic_stream(raw: bytes) -> list[tuple[str | None, Any]]:
    """Assert the Anthropic stream invariants on an emitted stream; returns its (event, data) pairs."""
    pairs = sse_pairs(raw)
    assert pairs, "empty stream"
    names = [name for name, _ in pairs]
    for name, data in pairs:
        assert isinstance(data, dict) and name == data["type"], (name, data)
    assert names[-1] in ("message_stop", "error"), names
    if names[0] == "error":
        assert len(names) == 1
        return pairs
    assert names[0] == "message_start"
    assert names.count("message_start") == 1
    open_index: int | None = None
    open_kind = ""
    next_index = 0
    seen_delta = False
    for name, data in pairs[1:]:
        if name == "content_block_start":
            assert open_index is None, "two blocks open at once"
            assert data["index"] == next_index, "indices must be contiguous"
            assert not seen_delta, "block after message_delta"
            open_index, open_kind = data["index"], data["content_block"]["type"]
            next_index += 1
            has_content = False
        elif name == "content_block_delta":
            assert data["index"] == open_index, "delta for a block that is not open"
            assert data["delta"]["type"] == _DELTA_FOR[open_kind]
            has_content = True
        elif name == "content_block_stop":
            assert data["index"] == open_index
            if open_kind in ("text", "thinking"):
                assert has_content, "empty text/thinking block"
            open_index = None
        elif name == "message_delta":
            assert open_index is None, "message_delta before the last content_block_stop"
            assert data["delta"]["stop_reason"] is not None
            seen_delta = True
        elif name == "message_stop":
            assert seen_delta
    return pairs
