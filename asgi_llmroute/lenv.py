"""Links notation (``.lenv``) documents, read with the ``links-notation`` parser into plain data.

A document is lines of words; a line's first word is a key, the other words its value, and the
more indented lines under it are its children (docs/configuration.md, "Links notation")::

    server
      port 4000
    providers
      groq
        kind groq
      local
        api openai
        base_url "http://127.0.0.1:8000/v1"

A value holding ``:``, spaces or ``#`` is quoted (``"env:NAME"``, URLs). The colon forms of the
notation read the same (``port: 4000``; ``server:`` with its lines under it), lino-env style. :func:`read_tree` gives
the lines as :class:`Node` trees; :func:`to_data` turns a tree into the mapping a pydantic model
expects, typing each value by the model's field (so ``port 4000`` is an int, ``models "*"`` a
list) and writing list-of-table sections (``providers``, ``tokens``, ...) as one child per entry,
named by its first word. Errors are :class:`LenvError` naming the line.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from .deferred import require

__all__ = ["LenvError", "Node", "read_tree", "to_data"]


class LenvError(ValueError):
    """A ``.lenv`` document that cannot be read; ``str(error)`` is one line (with the line number)."""


@dataclass
class Node:
    """One line: its words, its line number (None when it cannot be told) and the lines under it."""

    words: tuple[str, ...]
    line: int | None = None
    children: list[Node] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.words[0]

    @property
    def values(self) -> tuple[str, ...]:
        return self.words[1:]

    def at(self) -> str:
        return f"line {self.line}: " if self.line is not None else ""


def read_tree(text: str) -> list[Node]:
    """The document's top-level lines, each with its children; :class:`LenvError` if it is not Links notation."""
    lino = require("links_notation", "lenv", what="Reading a .lenv (Links notation) file")
    try:
        links = lino.Parser().parse(text)
    except (lino.ParseError, ValueError) as exc:
        where = getattr(exc, "line", None)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LenvError(f"line {where}: {first}" if where and "line" not in first else first) from None
    lines = _source_lines(text)
    exact = len(lines) == len(links)  # one link per line; else (``key:`` blocks) lines are found by key
    cursor = 0
    roots: list[Node] = []
    # The parser writes an indented line as (parent-path  line): its first value is the link it wrote
    # for the parent line. ``chain`` holds the open ancestors, each with the link written for it.
    chain: list[tuple[Node, Any]] = []
    for i, link in enumerate(links):
        parent: Node | None = None
        own = link
        values = link.values or []
        if link.id is None and len(values) == 2:
            for depth in range(len(chain) - 1, -1, -1):
                if values[0] == chain[depth][1]:
                    parent, own = chain[depth][0], values[1]
                    del chain[depth + 1 :]
                    break
        line: int | None
        if exact:
            line = lines[i][0]
        else:
            line, cursor = _find_line(lines, cursor, _first_word(own), top=parent is None)
        node = _node(own, line)
        if parent is None:
            chain.clear()
            roots.append(node)
        else:
            parent.children.append(node)
        chain.append((node, link))
    return roots


def _source_lines(text: str) -> list[tuple[int, bool, str]]:
    """The lines that hold a link (not blank, not only a comment): number, at the margin, text."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            out.append((number, not line[:1].isspace(), stripped))
    return out


def _first_word(link: Any) -> str | None:
    if link.id is not None:
        return str(link.id).split()[0] if str(link.id).split() else None
    values = link.values or []
    return str(values[0].id) if values and values[0].id is not None else None


def _find_line(
    lines: list[tuple[int, bool, str]], cursor: int, word: str | None, *, top: bool
) -> tuple[int | None, int]:
    """The next line (from ``cursor``) at the margin (``top``) or indented that starts with ``word``."""
    if word is None:
        return None, cursor
    for index in range(cursor, len(lines)):
        number, margin, stripped = lines[index]
        if margin == top and stripped.lstrip("(\"'").startswith(word):
            return number, index + 1
    return None, cursor


def _simple(link: Any) -> bool:
    return link.id is not None and not link.values


def _node(link: Any, line: int | None) -> Node:
    """A line as a node; a ``key:`` line with its block under it (one link holding it all) as a tree."""
    values = link.values or []
    if all(_simple(v) for v in values):
        return Node(_words(link, line), line)
    if link.id is not None:  # ``key:`` and the lines under it
        head, rest = (link.id,), values
    elif _simple(values[0]) and not any(_simple(v) for v in values[1:]):  # a line and its children, in a block
        head, rest = (values[0].id,), values[1:]
    else:
        return Node(_words(link, line), line)  # refused there, naming the line
    if any(c.isspace() for c in head[0]):
        _words(link, line)
    return Node(head, line, [_node(child, None) for child in rest])


def _words(link: Any, line: int | None) -> tuple[str, ...]:
    at = f"line {line}: " if line is not None else ""
    words: list[str] = []
    if link.id is not None:
        if any(c.isspace() for c in link.id):
            raise LenvError(f'{at}a value with \':\' in it must be quoted ("env:NAME", "https://...")')
        words.append(link.id)
    for value in link.values or []:
        if value.id is None or value.values:
            raise LenvError(f"{at}nested links are not supported here: write the value on indented lines")
        words.append(value.id)
    if not words:
        raise LenvError(f"{at}an empty link")
    return tuple(words)


# -- to data, typed by a pydantic model -----------------------------------------------------------


def to_data(
    nodes: Sequence[Node],
    model: type[BaseModel],
    *,
    where: str = "",
    loc: tuple[str | int, ...] = (),
    lines: dict[tuple[str | int, ...], int] | None = None,
) -> dict[str, Any]:
    """The mapping ``model`` validates, from ``nodes`` (the lines of one table).

    ``lines`` (if given) is filled with the line of each key, by its location as pydantic reports
    it (``("providers", 0, "timeout")``), so that validation errors can name the line.
    """
    out: dict[str, Any] = {}
    lines = {} if lines is None else lines
    for node in nodes:
        key = node.key.replace("-", "_")
        path = f"{where}.{key}" if where else key
        if node.line is not None:
            lines[loc + (key,)] = node.line
        info = model.model_fields.get(key)
        if key in out:
            raise LenvError(f"{node.at()}{path}: given twice")
        if info is None:
            # Unknown to the schema: kept as given, for the model to accept (extra keys) or refuse.
            if node.children:
                raise LenvError(f"{node.at()}{path}: unknown key")
            out[key] = _scalar(node, path, str) if len(node.values) == 1 else list(node.values)
            continue
        out[key] = _value(node, _hints(model).get(key, info.annotation), path, (*loc, key), lines)
    return out


def _hints(model: type[BaseModel]) -> dict[str, Any]:
    try:  # the fields' types, forward references resolved
        return typing.get_type_hints(model)
    except (NameError, TypeError):  # pragma: no cover - a model whose hints cannot be evaluated
        return {}


def _value(node: Node, annotation: Any, path: str, loc: tuple[str | int, ...], lines: dict[Any, int]) -> Any:
    kind, inner = _shape(annotation)
    if kind == "model":
        _no_values(node, path)
        return to_data(node.children, inner, where=path, loc=loc, lines=lines)
    if kind == "models":  # a list of tables: one child per entry, named by its first word
        _no_values(node, path)
        entries = []
        for i, child in enumerate(node.children):
            name_field = "name" if "name" in inner.model_fields else None
            entry_path = f"{path}[{i}]"
            if name_field is None or len(child.words) != 1:
                raise LenvError(f"{child.at()}{entry_path}: write each entry as its name alone on a line")
            if child.line is not None:
                lines[loc + (i,)] = child.line
            fields = to_data(child.children, inner, where=entry_path, loc=(*loc, i), lines=lines)
            entries.append({"name": child.key, **fields})
        return entries
    if kind == "dict":
        if node.values and not node.children:
            return list(node.values)  # a list where a table may be given (``models a b``): the model decides
        _no_values(node, path)
        out: dict[str, Any] = {}
        for child in node.children:
            child_path = f"{path}.{child.key}"
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                if child.values:
                    raise LenvError(f"{child.at()}{child_path}: give its settings on indented lines")
                out[child.key] = to_data(child.children, inner, where=child_path, loc=(*loc, child.key), lines=lines)
            else:
                if child.children or len(child.values) != 1:
                    raise LenvError(f"{child.at()}{child_path}: expected one value")
                out[child.key] = _scalar(child, child_path, inner)
        return out
    if node.children:
        raise LenvError(f"{node.at()}{path}: takes a value on its own line, not indented lines")
    if kind == "list":
        return [_convert(v, inner, node, path) for v in node.values]
    if len(node.values) != 1:
        got = "no value" if not node.values else f"{len(node.values)} values (quote a value with spaces)"
        raise LenvError(f"{node.at()}{path}: expected one value, got {got}")
    return _scalar(node, path, inner)


def _no_values(node: Node, path: str) -> None:
    if node.values:
        raise LenvError(f"{node.at()}{path}: is a table: give its keys on indented lines below it")


def _scalar(node: Node, path: str, target: Any) -> Any:
    return _convert(node.values[0], target, node, path)


def _convert(word: str, target: Any, node: Node, path: str) -> Any:
    try:
        if target is bool:
            if word not in ("true", "false"):
                raise ValueError
            return word == "true"
        if target is int:
            return int(word)
        if target is float:
            return float(word)
    except ValueError:
        expected = {bool: "true or false", int: "a whole number", float: "a number"}[target]
        raise LenvError(f"{node.at()}{path}: expected {expected}, got {word!r}") from None
    return word


def _shape(annotation: Any) -> tuple[str, Any]:
    """What a field holds: ``model``, ``models`` (a list of tables), ``dict``, ``list`` or ``scalar``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _shape(args[0]) if len(args) == 1 else ("scalar", str)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    if origin is list:
        item = args[0] if args else str
        if isinstance(item, type) and issubclass(item, BaseModel):
            return "models", item
        return "list", _scalar_type(item)
    if origin in (dict, Mapping):
        value = args[1] if len(args) == 2 else str
        return "dict", value if isinstance(value, type) and issubclass(value, BaseModel) else _scalar_type(value)
    return "scalar", _scalar_type(annotation)


def _scalar_type(annotation: Any) -> Any:
    if annotation in (bool, int, float):
        return annotation
    if typing.get_origin(annotation) is Literal:
        return str
    return str
