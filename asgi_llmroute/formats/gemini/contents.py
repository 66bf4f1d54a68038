"""Client messages -> Gemini ``contents``: user and model turns, function calls paired with their
responses the way Gemini requires, thought signatures put back on the calls."""

from __future__ import annotations

from typing import Any

from .._json import dumps
from ..body import each_block, each_message
from ..tools import openai_tool_calls, parse_tool_arguments
from ..types import TranslationError
from .ids import GeminiToolNames, split_call_id
from .parts import NO_URIS, MediaUris, anthropic_block, anthropic_parts, openai_parts, openai_result, split_media

__all__ = ["MISSING_RESULT", "PLACEHOLDER_SIGNATURE", "Contents", "anthropic_messages", "openai_messages"]

MISSING_RESULT = "no result was provided"
#: Thought signature Google documents for model turns it did not produce (other providers'
#: history, replayed traces); Gemini 3 rejects function calls without any signature.
PLACEHOLDER_SIGNATURE = "skip_thought_signature_validator"
_THINKING = frozenset(("thinking", "redacted_thinking"))


class Contents:
    """Builds ``contents`` so that every model turn with N function calls is followed by one user
    content holding exactly its N function responses (in call order), as Gemini requires."""

    def __init__(self, placeholder_signatures: bool, media: MediaUris = NO_URIS) -> None:
        self.contents: list[dict[str, Any]] = []
        self.media = media  # the media URIs the upstream fetches itself
        self._placeholder = placeholder_signatures
        self._model: dict[str, Any] | None = None  # the model content being built
        self._pending: list[tuple[str, str]] = []  # (client call id, Gemini name) awaiting results
        self._results: dict[str, dict[str, Any]] = {}
        self._after: list[dict[str, Any]] = []  # orphan results / media from results: user parts
        self.names: dict[str, str] = {}  # client call id -> Gemini function name

    def model(self, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if self._model is None or self._results or self._after:
            self._flush()
            self._model = {"role": "model", "parts": []}
            self.contents.append(self._model)
        self._model["parts"].extend(parts)

    def call(self, call_id: str, name: str, args: dict[str, Any]) -> None:
        _, signature = split_call_id(call_id)
        part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
        if signature is not None:
            part["thoughtSignature"] = signature
        self.model([part])
        self._pending.append((call_id, name))
        self.names[call_id] = name

    def result(self, call_id: str, response: dict[str, Any], media: list[dict[str, Any]]) -> None:
        if any(call_id == pending for pending, _ in self._pending) and call_id not in self._results:
            self._results[call_id] = response
            self._after.extend(media)
            return
        # A result for no pending call: keep its content as text for the model.
        value = response.get("output", response.get("error"))
        text = value if isinstance(value, str) else dumps(value)
        self._flush()
        self.user([{"text": f"Tool result ({call_id}): {text}"}, *media])

    def user(self, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        self._flush()
        last = self.contents[-1] if self.contents else None
        if last is not None and last["role"] == "user" and not _has_responses(last):
            last["parts"].extend(parts)
        else:
            self.contents.append({"role": "user", "parts": parts})

    def finish(self) -> list[dict[str, Any]]:
        self._flush()
        return self.contents

    def _flush(self) -> None:
        model, self._model = self._model, None
        if model is not None and self._placeholder:
            calls = [p for p in model["parts"] if "functionCall" in p]
            if calls and not any("thoughtSignature" in p for p in calls):
                calls[0]["thoughtSignature"] = PLACEHOLDER_SIGNATURE
        if self._pending:
            parts = []
            for call_id, name in self._pending:
                response = self._results.get(call_id, {"output": MISSING_RESULT})
                parts.append({"functionResponse": {"name": name, "response": response}})
            self.contents.append({"role": "user", "parts": parts})
        self._pending = []
        self._results = {}
        if self._after:
            after, self._after = self._after, []
            self.contents.append({"role": "user", "parts": after})


def _has_responses(content: dict[str, Any]) -> bool:
    return any("functionResponse" in p for p in content["parts"])


# -- OpenAI Chat Completions ---------------------------------------------------------------------


def openai_messages(messages: list[Any], contents: Contents, names: GeminiToolNames) -> list[dict[str, Any]]:
    """Fill ``contents`` from OpenAI ``messages``; returns the system parts."""
    system: list[dict[str, Any]] = []
    for i, param, message in each_message(messages):
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(openai_parts(content, f"{param}.content", system=True))
        elif role == "user":
            contents.user(openai_parts(content, f"{param}.content", media=contents.media))
        elif role == "assistant":
            if isinstance(content, list):  # thinking parts echoed back: Gemini thoughts never return
                content = [p for p in content if not (isinstance(p, dict) and p.get("type") in _THINKING)]
            contents.model(openai_parts(content, f"{param}.content", media=contents.media))
            refusal = message.get("refusal")
            if isinstance(refusal, str) and refusal:
                contents.model([{"text": refusal}])
            calls = message.get("tool_calls")
            if calls is not None and not isinstance(calls, list):
                raise TranslationError("tool_calls must be an array", f"{param}.tool_calls")
            for call_id, name, args in openai_tool_calls(calls or [], f"{param}.tool_calls", "Gemini"):
                contents.call(call_id, names.upstream(name), args)
            legacy = message.get("function_call")
            if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
                contents.call(
                    f"function_call_{i}", names.upstream(legacy["name"]), parse_tool_arguments(legacy.get("arguments"))
                )
        elif role == "tool":
            answered = message.get("tool_call_id")
            if not isinstance(answered, str):
                raise TranslationError("tool messages need a string 'tool_call_id'", f"{param}.tool_call_id")
            value, media = openai_result(content, f"{param}.content", contents.media)
            contents.result(answered, {"output": value}, media)
        elif role == "function":
            value, media = openai_result(content, f"{param}.content", contents.media)
            legacy_id = next((cid for cid in reversed(contents.names) if cid.startswith("function_call_")), "")
            contents.result(legacy_id, {"output": value}, media)
        else:
            raise TranslationError(f"unsupported message role {role!r}", f"{param}.role")
    return system


# -- Anthropic Messages --------------------------------------------------------------------------


def anthropic_messages(messages: list[Any], contents: Contents, names: GeminiToolNames) -> None:
    """Fill ``contents`` from Anthropic ``messages``."""
    for _, param, message in each_message(messages):
        role = message.get("role")
        content = message.get("content")
        if role == "assistant":
            _anthropic_assistant(content, f"{param}.content", contents, names)
        elif role == "user":
            if isinstance(content, str):
                contents.user([{"text": content}] if content else [])
                continue
            for p, block in each_block(content, f"{param}.content"):
                if block.get("type") == "tool_result":
                    call_id = block.get("tool_use_id")
                    if not isinstance(call_id, str):
                        raise TranslationError("tool_result needs a string 'tool_use_id'", f"{p}.tool_use_id")
                    text, media = split_media(anthropic_parts(block.get("content", ""), f"{p}.content", contents.media))
                    key = "error" if block.get("is_error") is True else "output"
                    contents.result(call_id, {key: text}, media)
                elif block.get("type") in _THINKING:
                    continue
                else:
                    contents.user(anthropic_block(block, p, contents.media))
        else:
            raise TranslationError(f"unsupported message role {role!r}", f"{param}.role")


def _anthropic_assistant(content: Any, param: str, contents: Contents, names: GeminiToolNames) -> None:
    if isinstance(content, str):
        contents.model([{"text": content}] if content else [])
        return
    for p, block in each_block(content, param):
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if isinstance(text, str) and text:
                contents.model([{"text": text}])
        elif kind == "tool_use":
            call_id, name, args = block.get("id"), block.get("name"), block.get("input")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise TranslationError("tool_use needs an id and a name", p)
            contents.call(call_id, names.upstream(name), args if isinstance(args, dict) else {})
        elif (
            kind in _THINKING or kind == "server_tool_use" or (isinstance(kind, str) and kind.endswith("_tool_result"))
        ):
            # Gemini thoughts are never sent back (their signatures travel in the call ids);
            # hosted-tool history has no Gemini form and only informs, so it is dropped.
            continue
        else:
            raise TranslationError(f"content block type {kind!r} cannot be sent to Gemini", f"{p}.type")
