"""The output items of a Responses stream while they stream (``message``, ``reasoning``, ``function_call``,
``web_search_call``): what :class:`~.responses_stream.ChatToResponsesStream` keeps of each, and the item
each one is (:meth:`StreamItem.snapshot`) in the events that carry whole items."""

from __future__ import annotations

from typing import Any

from ._json import dumps
from .responses_response import function_call_item, message_item, reasoning_item
from .tools import ToolNameMap
from .web_search import web_search_call_item


class StreamPart:
    """One content part of a message item: ``output_text`` or ``refusal``."""

    __slots__ = ("kind", "head", "chunks", "text", "offset", "annotations")

    def __init__(self, kind: str, head: str, offset: int = 0) -> None:
        self.kind = kind
        self.head = head  # item_id, output_index and content_index members of its events
        self.chunks: list[str] = []
        self.text: str | None = None  # set when the part is done
        self.offset = offset  # output_text: where its text starts in the chat message's content
        self.annotations: list[dict[str, Any]] = []  # output_text: url_citation annotations


class StreamItem:
    """One output item while it streams: ``message``, ``reasoning``, ``function_call`` or ``web_search_call``."""

    __slots__ = (
        "kind",
        "id",
        "index",
        "status",
        "prefix",
        "parts",
        "chunks",
        "raw_id",
        "call_id",
        "name",
        "tool_names",
        "text_part",
        "blocks",
        "encrypted",
        "searching",
    )

    def __init__(self, kind: str, item_id_: str, index: int) -> None:
        self.kind = kind
        self.id = item_id_
        self.index = index
        self.status = "in_progress"
        # Shared head of this item's delta events (precomputed: deltas are the hot path).
        self.prefix = '"item_id":' + dumps(item_id_) + ',"output_index":' + str(index)
        self.parts: list[StreamPart] = []  # message items
        self.chunks: list[str] = []  # reasoning text or function call arguments
        self.raw_id: str | None = None  # function calls: the upstream's tool call id
        self.call_id = ""
        self.name = ""
        self.tool_names: ToolNameMap | None = None  # namespaced tools' chat names
        self.text_part = False  # reasoning items: the reasoning_text part was announced
        self.blocks: list[dict[str, Any]] = []  # reasoning items: signed thinking blocks (chat thinking_blocks)
        self.encrypted: str | None = None  # reasoning items: their encrypted_content, set when done
        self.searching = False  # web_search_call items: response.web_search_call.searching was sent

    def snapshot(self) -> dict[str, Any]:
        if self.kind == "message":
            text = refusal = None
            annotations: list[dict[str, Any]] = []
            for part in self.parts:
                value = part.text if part.text is not None else "".join(part.chunks)
                if part.kind == "output_text":
                    text = (text or "") + value
                    annotations += part.annotations
                else:
                    refusal = (refusal or "") + value
            return message_item(self.id, self.status, text, refusal, annotations)
        if self.kind == "web_search_call":
            return web_search_call_item(self.id, self.status, self.name)  # name: the query
        if self.kind == "reasoning":
            # Announced empty (the part is added by content_part.added); encrypted_content once done.
            return reasoning_item(self.id, self.status, "".join(self.chunks), self.encrypted)
        return function_call_item(self.id, self.status, self.call_id, self.name, "".join(self.chunks), self.tool_names)
