"""Hosted web search across the formats: OpenAI's ``web_search`` tool (Responses) and
``web_search_options`` (Chat Completions) <-> Anthropic's server-side ``web_search`` tool.

The chat request is the meeting point: the Responses translation turns its hosted ``web_search`` tool
into chat ``web_search_options`` (with two gateway extensions, ``filters`` and ``external_web_access``,
when the upstream takes them), the Anthropic translation turns ``web_search_options`` into the server
tool. On the way back, Anthropic's citations become chat ``annotations`` (``url_citation``, as OpenAI's
search models send them) and its searches the ``web_search_calls`` extension, from which the Responses
translation makes ``web_search_call`` items. What cannot be honoured is dropped with a warning.
"""

from __future__ import annotations

import re
from typing import Any

from ._json import loads
from .types import TranslationError

#: Responses tool types of OpenAI's hosted web search.
HOSTED_TYPES = frozenset({"web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11"})
#: Anthropic's server tool: its type and its fixed name (the model's ``server_tool_use`` blocks carry it).
ANTHROPIC_TYPE = "web_search_20250305"
ANTHROPIC_NAME = "web_search"

_LOCATION_KEYS = ("city", "region", "country", "timezone")
# OpenAI models that take web_search_options on Chat Completions (gpt-4o-search-preview, gpt-5-search-api...).
_SEARCH_MODEL = re.compile(r"(^|[/-])search(-|$)")


def is_hosted_web_search(tool: Any) -> bool:
    """A Responses ``tools`` entry (or ``tool_choice``) naming OpenAI's hosted web search."""
    return isinstance(tool, dict) and tool.get("type") in HOSTED_TYPES


def openai_search_model(model: Any) -> bool:
    """Whether an OpenAI model id is one of the search models that take ``web_search_options``."""
    return isinstance(model, str) and _SEARCH_MODEL.search(model) is not None


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def _location(raw: Any) -> dict[str, str]:
    """The approximate location fields (city, region, country, timezone) of a location object."""
    if not isinstance(raw, dict):
        return {}
    return {k: raw[k] for k in _LOCATION_KEYS if isinstance(raw.get(k), str) and raw[k]}


def chat_options_from_responses(
    tool: dict[str, Any], param: str, warnings: list[str], *, extensions: bool
) -> dict[str, Any]:
    """A Responses hosted ``web_search`` tool -> chat ``web_search_options``.

    ``extensions``: the chat upstream is the gateway's Anthropic translation, which also reads
    ``filters.allowed_domains`` and ``external_web_access``; otherwise (an OpenAI search model) only
    Chat Completions' own fields are sent and the others are dropped with a warning.
    """
    out: dict[str, Any] = {}
    size = tool.get("search_context_size")
    if isinstance(size, str):
        out["search_context_size"] = size
    location = _location(tool.get("user_location"))
    if location:
        out["user_location"] = {"type": "approximate", "approximate": location}
    filters = tool.get("filters")
    domains = _strings(filters.get("allowed_domains")) if isinstance(filters, dict) else []
    external = tool.get("external_web_access")
    if extensions:
        if domains:
            out["filters"] = {"allowed_domains": domains}
        if external is False:
            out["external_web_access"] = False
    else:
        if domains:
            warnings.append(f"{param}.filters dropped: Chat Completions web search takes no domain filter")
        if external is False:
            warnings.append(f"{param}.external_web_access dropped: Chat Completions web search always searches live")
    return out


def anthropic_tool(options: Any, warnings: list[str]) -> dict[str, Any] | None:
    """Chat ``web_search_options`` -> Anthropic's ``web_search`` server tool (None when not asked for)."""
    if options is None:
        return None
    if not isinstance(options, dict):
        raise TranslationError("web_search_options must be an object", "web_search_options")
    tool: dict[str, Any] = {"type": ANTHROPIC_TYPE, "name": ANTHROPIC_NAME}
    max_uses = options.get("max_uses")  # the gateway's extension: Anthropic's own knob
    if isinstance(max_uses, int) and not isinstance(max_uses, bool) and max_uses > 0:
        tool["max_uses"] = max_uses
    filters = options.get("filters")
    domains = _strings(filters.get("allowed_domains")) if isinstance(filters, dict) else []
    if domains:
        tool["allowed_domains"] = domains
    raw = options.get("user_location")
    location = _location(raw.get("approximate") if isinstance(raw, dict) else None)
    if location:
        tool["user_location"] = {"type": "approximate", **location}
    if options.get("search_context_size") is not None:
        warnings.append("web_search_options.search_context_size dropped: Anthropic's web search has no such setting")
    if options.get("external_web_access") is False:
        warnings.append("web_search external_web_access=false dropped: Anthropic's web search always searches live")
    return tool


def is_web_search_choice(choice: Any) -> bool:
    """A chat ``tool_choice`` forcing the hosted web search (``{"type": "web_search"}``, the gateway's extension)."""
    return isinstance(choice, dict) and choice.get("type") in HOSTED_TYPES


# -- answers ------------------------------------------------------------------------------------


def search_query(arguments: Any) -> str:
    """The query of a ``server_tool_use`` block's input (an object, or its JSON text in streams)."""
    if isinstance(arguments, str):
        try:
            arguments = loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError):
            return ""
    query = arguments.get("query") if isinstance(arguments, dict) else None
    return query if isinstance(query, str) else ""


def result_status(block: dict[str, Any]) -> str:
    """``completed``, or ``failed`` for a ``web_search_tool_result`` carrying an error instead of results."""
    content = block.get("content")
    if isinstance(content, dict) and content.get("type") == "web_search_tool_result_error":
        return "failed"
    return "completed"


def chat_annotations(citations: Any, start: int, end: int) -> list[dict[str, Any]]:
    """Anthropic web search citations of one text block (spanning ``start``..``end`` of the message's
    text) -> chat ``url_citation`` annotations; other citation kinds (documents) have no OpenAI shape."""
    out: list[dict[str, Any]] = []
    if not isinstance(citations, list):
        return out
    for citation in citations:
        if not isinstance(citation, dict) or citation.get("type") != "web_search_result_location":
            continue
        url = citation.get("url")
        if not isinstance(url, str) or not url:
            continue
        title = citation.get("title")
        out.append(
            {
                "type": "url_citation",
                "url_citation": {
                    "url": url,
                    "title": title if isinstance(title, str) else "",
                    "start_index": start,
                    "end_index": end,
                },
            }
        )
    return out


def responses_annotation(annotation: Any, offset: int = 0) -> dict[str, Any] | None:
    """A chat ``url_citation`` annotation -> a Responses one (indices made relative to ``offset``)."""
    if not isinstance(annotation, dict) or annotation.get("type") != "url_citation":
        return None
    cited = annotation.get("url_citation")
    if not isinstance(cited, dict) or not isinstance(cited.get("url"), str):
        return None
    start, end = cited.get("start_index"), cited.get("end_index")
    start = start - offset if isinstance(start, int) and not isinstance(start, bool) else 0
    end = end - offset if isinstance(end, int) and not isinstance(end, bool) else start
    title = cited.get("title")
    return {
        "type": "url_citation",
        "start_index": max(start, 0),
        "end_index": max(end, 0),
        "url": cited["url"],
        "title": title if isinstance(title, str) else "",
    }


def web_search_call_item(item_id_: str, status: str, query: str) -> dict[str, Any]:
    """A Responses ``web_search_call`` output item."""
    return {"type": "web_search_call", "id": item_id_, "status": status, "action": {"type": "search", "query": query}}


def web_search_requests(usage: Any) -> int:
    """Anthropic ``usage.server_tool_use.web_search_requests`` (0 when absent)."""
    server = usage.get("server_tool_use") if isinstance(usage, dict) else None
    count = server.get("web_search_requests") if isinstance(server, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0
