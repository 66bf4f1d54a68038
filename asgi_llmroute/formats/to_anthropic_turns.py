"""OpenAI ``messages`` -> Anthropic ``system`` and alternating turns, with the repairs docs/translation.md lists.

Consecutive same-role messages merge (tool results first); a tool result without its call becomes text,
a call without its result gets a placeholder result; the conversation starts with a user turn and a
final assistant turn (a prefill) does not end in whitespace.
"""

from __future__ import annotations

from typing import Any

from .body import each_message, each_part
from .to_anthropic_content import text_block, thinking_blocks, user_blocks
from .tools import ToolNames, openai_tool_calls, parse_tool_arguments, sanitize_id
from .types import TranslationError

__all__ = [
    "MISSING_RESULT_TEXT",
    "PLACEHOLDER_TEXT",
    "MessageConverter",
    "Turn",
    "build_turns",
    "merge_adjacent",
    "turn_content",
]

#: Text used where Anthropic needs non-whitespace text and the client gave none (5.2 step 5).
PLACEHOLDER_TEXT = "."
MISSING_RESULT_TEXT = "no result was provided"


class Turn:
    __slots__ = ("role", "results", "blocks")

    def __init__(self, role: str) -> None:
        self.role = role
        self.results: list[dict[str, Any]] = []  # tool_result blocks (user turns), always first
        self.blocks: list[dict[str, Any]] = []


class MessageConverter:
    """Walks the OpenAI ``messages`` array and builds Anthropic ``system`` + turns."""

    def __init__(self, names: ToolNames) -> None:
        self.names = names
        self.system: list[dict[str, Any]] = []
        self.entries: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = []
        self.legacy_calls: dict[str, list[str]] = {}  # legacy function_call ids by name
        self.legacy_count = 0
        self.tool_names_used: list[str] = []

    def run(self, messages: list[Any]) -> None:
        for i, param, message in each_message(messages):
            role = message.get("role")
            content = message.get("content")
            if role in ("system", "developer"):
                self._system(content, f"{param}.content")
            elif role == "user":
                self.entries.append(("user", [], user_blocks(content, f"{param}.content")))
            elif role == "assistant":
                self.entries.append(("assistant", [], self._assistant(message, param)))
            elif role == "tool":
                tool_id = message.get("tool_call_id")
                if not isinstance(tool_id, str):
                    raise TranslationError("tool messages need a string 'tool_call_id'", f"{param}.tool_call_id")
                self.entries.append(("user", [self._result(sanitize_id(tool_id), content, param)], []))
            elif role == "function":
                name = message.get("name")
                pending = self.legacy_calls.get(name) if isinstance(name, str) else None
                legacy_id = pending.pop(0) if pending else f"function_call_orphan_{i}"
                self.entries.append(("user", [self._result(legacy_id, content, param)], []))
            else:
                raise TranslationError(f"unsupported message role {role!r}", f"{param}.role")

    def _system(self, content: Any, param: str) -> None:
        if isinstance(content, str):
            block = text_block(content)
            if block:
                self.system.append(block)
            return
        if not isinstance(content, list):
            raise TranslationError("system content must be a string or an array of text parts", param)
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise TranslationError("system content parts must be text", f"{param}[{j}]")
            block = text_block(part["text"], part)
            if block:
                self.system.append(block)

    def _assistant(self, message: dict[str, Any], param: str) -> list[dict[str, Any]]:
        thinking = thinking_blocks(message.get("thinking_blocks"))
        blocks: list[dict[str, Any]] = []
        content = message.get("content")
        if isinstance(content, str):
            block = text_block(content)
            if block:
                blocks.append(block)
        elif isinstance(content, list):
            for p, kind, part in each_part(content, f"{param}.content"):
                text = part.get("text") if kind == "text" else part.get("refusal") if kind == "refusal" else None
                if isinstance(text, str):
                    block = text_block(text, part)
                    if block:
                        blocks.append(block)
                elif kind in ("thinking", "redacted_thinking"):
                    thinking.extend(thinking_blocks([part]))
                else:
                    raise TranslationError(f"unsupported assistant content part {kind!r}", p)
        elif content is not None:
            raise TranslationError("content must be a string, an array of parts or null", f"{param}.content")
        refusal = message.get("refusal")
        if isinstance(refusal, str):
            block = text_block(refusal)
            if block:
                blocks.append(block)
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call_id, name, arguments in openai_tool_calls(calls, f"{param}.tool_calls", "this model's API"):
                self.tool_names_used.append(name)
                blocks.append({"type": "tool_use", "id": sanitize_id(call_id), "name": name, "input": arguments})
        legacy = message.get("function_call")
        if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
            legacy_id = f"function_call_{self.legacy_count}"
            self.legacy_count += 1
            self.legacy_calls.setdefault(legacy["name"], []).append(legacy_id)
            self.tool_names_used.append(legacy["name"])
            blocks.append(
                {
                    "type": "tool_use",
                    "id": legacy_id,
                    "name": legacy["name"],
                    "input": parse_tool_arguments(legacy.get("arguments")),
                }
            )
        return thinking + blocks

    @staticmethod
    def _result(tool_id: str, content: Any, param: str) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id}
        if isinstance(content, str):
            if content.strip():
                block["content"] = content
        else:
            parts = user_blocks(content, f"{param}.content")
            if parts:
                block["content"] = parts
        return block


def result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b["text"] for b in content if b.get("type") == "text")
    return ""


def build_turns(entries: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]) -> list[Turn]:
    """Merge consecutive same-role messages (tool results first) and apply the 5.2 step 5 repairs."""
    merged: list[Turn] = []
    for role, results, blocks in entries:
        if role == "assistant" and not blocks:
            continue  # an assistant message without content is dropped (5.2 step 2)
        if not merged or merged[-1].role != role:
            merged.append(Turn(role))
        merged[-1].results.extend(results)
        merged[-1].blocks.extend(blocks)

    turns: list[Turn] = []
    pending: list[str] = []  # tool_use ids of the previous assistant turn still waiting for a result
    for turn in merged:
        if turn.role == "assistant":  # merged turns alternate: the user turn before it cleared pending
            pending = [b["id"] for b in turn.blocks if b["type"] == "tool_use"]
            turns.append(turn)
            continue
        kept: list[dict[str, Any]] = []
        orphans: list[dict[str, Any]] = []
        for result in turn.results:
            if result["tool_use_id"] in pending:
                pending.remove(result["tool_use_id"])
                kept.append(result)
            else:  # not declared by the previous assistant turn: keep the data as text
                text = text_block(result_text(result))
                if text:
                    orphans.append(text)
        kept.extend(synthetic_results(pending).results)
        pending = []
        turn.results = kept
        turn.blocks = orphans + turn.blocks
        if not turn.results and not turn.blocks:
            turn.blocks.append({"type": "text", "text": PLACEHOLDER_TEXT})
        turns.append(turn)
    if pending:
        turns.append(synthetic_results(pending))
    if turns and turns[0].role == "assistant":
        placeholder = Turn("user")
        placeholder.blocks.append({"type": "text", "text": PLACEHOLDER_TEXT})
        turns.insert(0, placeholder)
    if turns and turns[-1].role == "assistant":
        strip_prefill(turns)
    return turns


def merge_adjacent(turns: list[Turn]) -> list[Turn]:
    """Re-merge user turns that became adjacent after an assistant turn was emptied."""
    out: list[Turn] = []
    for turn in turns:
        if out and out[-1].role == turn.role:
            out[-1].results.extend(turn.results)
            out[-1].blocks.extend(turn.blocks)
        else:
            out.append(turn)
    return out


def synthetic_results(ids: list[str]) -> Turn:
    turn = Turn("user")
    turn.results = [{"type": "tool_result", "tool_use_id": i, "content": MISSING_RESULT_TEXT} for i in ids]
    return turn


def strip_prefill(turns: list[Turn]) -> None:
    """A final assistant turn is a prefill and must not end in whitespace."""
    blocks = turns[-1].blocks
    last = blocks[-1]
    if last["type"] == "text":
        text = last["text"].rstrip()
        if text:
            blocks[-1] = {**last, "text": text}
        else:
            blocks.pop()
    if not blocks:
        turns.pop()


def turn_content(turn: Turn) -> str | list[dict[str, Any]]:
    blocks = turn.results + turn.blocks
    if len(blocks) == 1 and blocks[0]["type"] == "text" and len(blocks[0]) == 2:
        return str(blocks[0]["text"])
    return blocks
