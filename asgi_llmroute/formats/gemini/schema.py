"""Client JSON Schemas reduced to the subset Gemini accepts (``parametersJsonSchema``,
``responseJsonSchema``).

Gemini documents the JSON Schema keywords it honours: ``type``, ``format``, ``title``,
``description``, ``enum`` (strings and numbers), ``items``, ``prefixItems``, ``minItems``,
``maxItems``, ``minimum``, ``maximum``, ``anyOf``, ``oneOf`` (read as ``anyOf``), ``properties``,
``additionalProperties``, ``required`` and the non-standard ``propertyOrdering``, plus ``$ref`` /
``$defs`` with restrictions (a ``$ref`` sub-schema may carry nothing else, cycles are only partly
unrolled). The reduction here makes every schema fit that list without changing what it allows
in a way the caller would not expect:

- local ``$ref`` (``#/$defs/...``, ``#/definitions/...``) are inlined; a recursive or non-local
  reference cannot be expressed and is refused;
- annotations that do not constrain anything (``$schema``, ``$id``, ``$comment``, ``examples``,
  ``default``, ``deprecated``, ``readOnly``, ``writeOnly``, ``strict``) are removed;
- ``const`` becomes a one-value ``enum``; ``type: [T, "null"]`` becomes ``anyOf``;
- validation keywords Gemini does not enforce (``minLength``, ``maxLength``, ``pattern``,
  ``exclusiveMinimum``, ``exclusiveMaximum``, ``multipleOf``, ``uniqueItems``, ``minProperties``,
  ``maxProperties``) are removed and noted in the warnings: the model is still asked for values
  of the right type, only the bound is not enforced by the upstream;
- keywords that change the meaning of a schema and have no Gemini equivalent (``allOf`` with more
  than one member, ``not``, ``if``/``then``/``else``, ``patternProperties``, ``dependentSchemas``,
  ``dependentRequired``, ``unevaluatedProperties``, ``contains``, ...) are refused with a
  :class:`TranslationError` naming the field, as are enums with values other than strings and
  numbers. Unknown keywords are refused too: silently dropping them could change the meaning.
"""

from __future__ import annotations

from typing import Any

from ..types import TranslationError

_KEPT = frozenset(
    (
        "type",
        "format",
        "title",
        "description",
        "enum",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "anyOf",
        "properties",
        "additionalProperties",
        "required",
        "propertyOrdering",
    )
)
_ANNOTATIONS = frozenset(
    (
        "$schema",
        "$id",
        "$anchor",
        "$comment",
        "$defs",
        "definitions",
        "examples",
        "example",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "strict",
        "contentEncoding",
        "contentMediaType",
    )
)
_UNENFORCED = frozenset(
    (
        "minLength",
        "maxLength",
        "pattern",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "minContains",
        "maxContains",
    )
)
_TYPES = frozenset(("string", "number", "integer", "boolean", "object", "array", "null"))
#: Deepest schema nesting accepted (deeper input is refused rather than recursed into).
MAX_DEPTH = 64


class _Reducer:
    __slots__ = ("_root", "_param", "_warnings", "_active")

    def __init__(self, root: dict[str, Any], param: str, warnings: list[str]) -> None:
        self._root = root
        self._param = param
        self._warnings = warnings
        self._active: list[str] = []  # $ref targets being inlined (cycle detection)

    def fail(self, message: str, path: str) -> TranslationError:
        return TranslationError(f"{message} (Gemini cannot express it)", f"{self._param}{path}")

    def schema(self, node: Any, path: str, depth: int = 0) -> Any:
        if isinstance(node, bool):
            if node:
                return {}
            raise self.fail("a 'false' schema", path)
        if not isinstance(node, dict):
            raise TranslationError("a JSON Schema must be an object", f"{self._param}{path}")
        if depth > MAX_DEPTH:
            raise self.fail("schema nesting is too deep", path)
        if "$ref" in node:
            return self._ref(node, path, depth)
        out: dict[str, Any] = {}
        for key, value in node.items():
            where = f"{path}.{key}"
            if key in _ANNOTATIONS:
                continue
            if key in _UNENFORCED:
                self._warnings.append(f"{self._param}{where}: not enforced by Gemini, removed")
                continue
            if key == "type":
                out.update(self._type(value, where))
            elif key == "const":
                out["enum"] = self._enum([value], where)
            elif key == "enum":
                out["enum"] = self._enum(value, where)
            elif key == "properties":
                if not isinstance(value, dict):
                    raise TranslationError("'properties' must be an object", f"{self._param}{where}")
                out["properties"] = {
                    name: self.schema(sub, f"{where}.{name}", depth + 1) for name, sub in value.items()
                }
            elif key == "items":
                if isinstance(value, list):  # draft-4 tuple form
                    out["prefixItems"] = [self.schema(s, f"{where}[{i}]", depth + 1) for i, s in enumerate(value)]
                else:
                    out["items"] = self.schema(value, where, depth + 1)
            elif key == "prefixItems":
                if not isinstance(value, list):
                    raise TranslationError("'prefixItems' must be an array", f"{self._param}{where}")
                out["prefixItems"] = [self.schema(s, f"{where}[{i}]", depth + 1) for i, s in enumerate(value)]
            elif key == "additionalProperties":
                if isinstance(value, bool):
                    out[key] = value
                else:
                    out[key] = self.schema(value, where, depth + 1)
            elif key in ("anyOf", "oneOf"):
                if not isinstance(value, list) or not value:
                    raise TranslationError(f"'{key}' must be a non-empty array", f"{self._param}{where}")
                branches = [self.schema(s, f"{where}[{i}]", depth + 1) for i, s in enumerate(value)]
                out["anyOf"] = out.get("anyOf", []) + branches
            elif key == "allOf":
                if not isinstance(value, list) or len(value) != 1:
                    raise self.fail("'allOf' with several schemas", where)
                merged = self.schema(value[0], f"{where}[0]", depth + 1)
                for mkey, mvalue in merged.items():
                    if mkey in out or mkey in node:
                        raise self.fail("'allOf' overlapping its parent schema", where)
                    out[mkey] = mvalue
            elif key == "required":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise TranslationError("'required' must be an array of strings", f"{self._param}{where}")
                out[key] = list(value)
            elif key in _KEPT:
                out[key] = value
            else:
                raise self.fail(f"JSON Schema keyword {key!r}", where)
        return out

    def _type(self, value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, str):
            if value not in _TYPES:
                raise TranslationError(f"unknown JSON Schema type {value!r}", f"{self._param}{where}")
            return {"type": value}
        if isinstance(value, list) and value and all(isinstance(v, str) and v in _TYPES for v in value):
            kinds = list(dict.fromkeys(value))
            if len(kinds) == 1:
                return {"type": kinds[0]}
            return {"anyOf": [{"type": k} for k in kinds]}
        raise TranslationError("'type' must be a JSON Schema type or an array of them", f"{self._param}{where}")

    def _enum(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list) or not value:
            raise TranslationError("'enum' must be a non-empty array", f"{self._param}{where}")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise self.fail("an enum value that is not a string or a number", where)
        return list(value)

    def _ref(self, node: dict[str, Any], path: str, depth: int) -> Any:
        ref = node["$ref"]
        where = f"{path}.$ref"
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise self.fail("a $ref outside the schema", where)
        if ref in self._active:
            raise self.fail(f"a recursive $ref {ref!r}", where)
        target: Any = self._root
        for token in ref[2:].split("/") if ref != "#" else []:
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or token not in target:
                raise TranslationError(f"$ref {ref!r} does not resolve", f"{self._param}{where}")
            target = target[token]
        self._active.append(ref)
        try:
            resolved = self.schema(target, path, depth + 1)
        finally:
            self._active.pop()
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        if siblings:  # JSON Schema 2020-12: siblings of $ref apply too
            extra = self.schema(siblings, path, depth + 1)
            for key, value in extra.items():
                if key in resolved and resolved[key] != value and key not in ("description", "title"):
                    raise self.fail(f"{key!r} next to a $ref that also sets it", f"{path}.{key}")
                resolved[key] = value
        return resolved


def reduce_schema(schema: Any, param: str, warnings: list[str]) -> dict[str, Any]:
    """``schema`` reduced to Gemini's subset (see the module docstring); ``param`` names the field
    in errors; notes about removed constraints are appended to ``warnings``."""
    if not isinstance(schema, dict):
        raise TranslationError("a JSON Schema must be an object", param)
    # No RecursionError to catch: MAX_DEPTH bounds the recursion far below Python's stack limit.
    out = _Reducer(schema, param, warnings).schema(schema, "")
    assert isinstance(out, dict)
    return out
