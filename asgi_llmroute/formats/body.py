"""Reading a client's request body: the checks every request translator makes the same way.

The body and its ``messages`` array, each message and each content block, numbers and the
output-token cap; what a translator then builds from them is its own (tools are in ``tools.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, TypeGuard

from .types import TranslationError

__all__ = [
    "each_block",
    "each_message",
    "each_object",
    "each_part",
    "is_int",
    "is_number",
    "request_messages",
    "single_choice",
    "token_cap",
]


def is_int(value: Any) -> TypeGuard[int]:
    """An integer, and not a bool (JSON ``true`` is no number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any, *, finite: bool = False) -> TypeGuard[int | float]:
    """An int or a float, not a bool; with ``finite``, neither NaN nor an infinity."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return not finite or math.isfinite(value)


def request_messages(body: Any) -> list[Any]:
    """The body's non-empty ``messages`` array; raises unless the body is an object that has one."""
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("'messages' must be a non-empty array", "messages")
    return messages


def single_choice(body: dict[str, Any], upstream: str) -> None:
    """Raise unless the (OpenAI) body asks for one choice: ``n`` absent or 1."""
    n = body.get("n")
    if n is not None and n != 1:
        raise TranslationError(f"only n=1 is supported by {upstream}", "n")


def each_message(messages: list[Any]) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(index, parameter path, message) of each message; raises on one that is not an object."""
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise TranslationError("messages must be objects", param)
        yield i, param, message


def each_object(items: list[Any], param: str, what: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(parameter path ``param[j]``, item) of each item of an array; raises at the first item that is
    not an object ("<what> must be objects": ``what`` is "content parts", "tools entries", ...)."""
    for j, item in enumerate(items):
        p = f"{param}[{j}]"
        if not isinstance(item, dict):
            raise TranslationError(f"{what} must be objects", p)
        yield p, item


def each_block(content: Any, param: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(parameter path, block) of each block of an array of (Anthropic) content blocks; raises
    unless ``content`` is an array of objects. Callers take the string form first."""
    if not isinstance(content, list):
        raise TranslationError("content must be a string or an array of blocks", param)
    return each_object(content, param, "content blocks")


def each_part(content: Any, param: str) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(parameter path, ``type``, part) of each part of an array of (OpenAI) content parts; raises
    unless ``content`` is an array of objects. Callers take the string and null forms first."""
    if not isinstance(content, list):
        raise TranslationError("content must be a string or an array of parts", param)
    for p, part in each_object(content, param, "content parts"):
        yield p, part.get("type"), part


def token_cap(body: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    """The output-token cap under the first of ``keys`` the body sets; raises unless it is a
    non-negative integer."""
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if not is_int(value) or value < 0:
            raise TranslationError(f"{key} must be a non-negative integer", key)
        return int(value)
    return None
