"""The usual Gemini stream event (one candidate, one text part) read without a JSON parse.

Parsing a whole ``GenerateContentResponse`` per event cost more than the rest of its translation, and most
of it (usage, model version, response id) is not read until the end. :meth:`EventShape.learn` takes a usual
event that was parsed whole and remembers its shape; :meth:`EventShape.read` then reads the next events of
that shape with the C string scanner and a few bytes methods. Anything else is left to the full parse.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

from .._json import scan_once, scan_string

# The start of the usual event up to its text's opening quote, as the Gemini API and Vertex AI space it.
_HEADS = ('{"candidates": [{"content": {"parts": [{"text": "', '{"candidates":[{"content":{"parts":[{"text":"')
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NUMBER_START = re.compile(r"(?<![0-9])[1-9][0-9]+")
# Keys whose second occurrence after the text could change what the event means (JSON: the last one wins).
_KEYS_AFTER_TEXT = ('"text"', '"content"', '"parts"', '"candidates"', '"error"', '"finishReason"')


def _mask(text: str) -> bytes:
    """``text`` as UTF-8 with every digit made 0 (``bytes.translate``: ``str.translate`` with a table is ~9x slower)."""
    return text.encode("utf-8", "surrogatepass").translate(_DIGITS_TO_ZERO)


class EventShape:
    """The shape of a usual event: its head (up to the text), the text after its text part (its "rest") with
    every digit made 0, where the usage object is in the rest, and where a number of two or more digits starts.

    An event with the same head, a valid JSON string for its text and a rest of the same shape whose numbers
    do not start with 0 where the learnt one's did not, is a valid JSON text that means the same but for the
    text and the digits: one candidate with that one text part, no finishReason, no error, and usage (if any)
    the JSON object at the same place. JSON lets a key repeat (the last one counts), so a rest that names a
    key the reading depends on is not learnt.
    """

    __slots__ = ("_head", "_mask", "_span", "_leads")

    def __init__(self, head: str, rest: str, span: tuple[int, int] | None) -> None:
        self._head = head
        self._mask = _mask(rest)
        self._span = span
        positions = [m.start() for m in _NUMBER_START.finditer(rest)]
        self._leads: Any = itemgetter(*positions) if positions else None

    @classmethod
    def learn(cls, data: str, usage: Any) -> EventShape | None:
        """The shape of ``data``, a usual event without finishReason that parsed (``usage``: its
        usageMetadata), or None if it is not one this class reads."""
        for head in _HEADS:
            if data.startswith(head):
                break
        else:
            return None
        _, end = scan_string(data, len(head), True)  # valid: the event parsed
        rest = data[end:]
        if any(key in rest for key in _KEYS_AFTER_TEXT):
            return None
        span = None
        if type(usage) is dict:
            if rest.count('"usageMetadata"') != 1:
                return None
            start = rest.index(":", rest.index('"usageMetadata"') + 15) + 1
            while rest[start] in " \t\n\r":
                start += 1
            value, stop = scan_once(rest, start)
            if value != usage:  # pragma: no cover - the one "usageMetadata" of the rest is the event's
                return None
            span = (start, stop)
        return cls(head, rest, span)

    def read(self, data: str) -> tuple[str, str | None] | None:
        """(text, the usage object's JSON text or None) of an event of this shape, else None."""
        head = self._head
        if not data.startswith(head):
            return None
        try:
            text, end = scan_string(data, len(head), True)
        except ValueError:
            return None  # not a valid string: the full parse says so
        rest = data[end:]
        leads = self._leads
        if _mask(rest) != self._mask or (leads is not None and "0" in leads(rest)):
            return None
        span = self._span
        return text, rest[span[0] : span[1]] if span is not None else None
