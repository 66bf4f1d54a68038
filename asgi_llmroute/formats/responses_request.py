"""OpenAI Responses request -> OpenAI Chat Completions request.

One cohesive thing over 400 lines: one request translation (input items, content parts, tools, options),
read top to bottom as the request is.

Only what Chat Completions can express is translated: stateless conversations (``input`` items),
function tools (namespaced ones flattened), a hosted web search where the upstream has one, and the
sampling/output knobs. Features that need server-side storage (``previous_response_id``,
``conversation``, stored prompts, ``background``) are refused with a :class:`TranslationError` (the
gateway answers 400) rather than silently ignored; other hosted tools are dropped with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .body import each_object, each_part
from .thinking_carry import decode_thinking, is_gateway_content
from .tools import OPENAI_NAME_MAX, ToolNameMap, short_name
from .types import TranslationError, TranslationOptions
from .web_search import HOSTED_TYPES, chat_options_from_responses

#: How the chat upstream takes a hosted web search: ``extended`` (the gateway's Anthropic translation:
#: ``web_search_options`` with the ``filters`` extension), ``standard`` (an OpenAI search model: Chat
#: Completions' own fields), or None (it has none: the tool is dropped with a warning).
WebSearch = Literal["extended", "standard"] | None

#: Request fields that only make sense with state kept by the provider (answered with 400).
_STATEFUL = {
    "previous_response_id": "previous_response_id needs server-side response storage",
    "conversation": "conversation needs server-side conversation storage",
    "prompt": "stored prompts (prompt) need server-side storage",
}
#: Fields copied to the chat request unchanged when present and not null.
_COPIED = ("model", "temperature", "top_p", "user", "safety_identifier", "prompt_cache_key", "service_tier")
#: Message roles -> chat roles; ``developer`` becomes ``system``, which every compatible server knows.
_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}


@dataclass(slots=True)
class ResponsesRequest:
    """What the response side needs from the translated request."""

    #: Request fields echoed in every Response object (``tools``, ``tool_choice``, ``instructions``...).
    echo: dict[str, Any]
    #: The client asked for a stream.
    stream: bool = False
    #: Lossy decisions taken on this request (for logging by the caller).
    warnings: list[str] = field(default_factory=list)
    #: Chat function names of namespaced or shortened tools -> (namespace or None, name), to name their calls as
    #: the client knows them.
    tool_names: ToolNameMap = field(default_factory=dict)
    #: Longest function name the upstream takes; longer ones are shortened (:func:`~.tools.short_name`).
    name_max: int = OPENAI_NAME_MAX
    #: How the upstream takes a hosted web search (see :data:`WebSearch`).
    web_search: WebSearch = None
    #: The chat ``web_search_options`` made of the request's hosted web search tool, if any.
    search: dict[str, Any] | None = None


def responses_to_chat_request(
    body: dict[str, Any],
    options: TranslationOptions,
    *,
    thinking: bool = True,
    web_search: WebSearch = None,
    name_max: int = OPENAI_NAME_MAX,
) -> tuple[dict[str, Any], ResponsesRequest]:
    """Translate a ``POST /v1/responses`` body into a ``POST /v1/chat/completions`` body.

    ``thinking``: the chat upstream takes signed thinking back (chat ``thinking_blocks``, which the
    Anthropic translation turns into thinking blocks); off for OpenAI chat upstreams, which refuse
    the field: the thinking carried by reasoning items is then dropped with a warning.
    ``web_search``: how the upstream takes a hosted ``web_search`` tool (:data:`WebSearch`).
    ``name_max``: the upstream's longest function name (64 for OpenAI and Gemini, 128 for Anthropic); a
    longer one (namespaced MCP tools from Codex) is shortened with a hash and named back in the answer.
    """
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    for key, reason in _STATEFUL.items():
        if body.get(key) is not None:
            raise TranslationError(
                f"{key} is not supported for this model: {reason}, which its provider does not offer "
                "(send the whole conversation in 'input' instead)",
                key,
            )
    if body.get("background") is True:
        raise TranslationError(
            "background responses need server-side storage, not supported for this model", "background"
        )

    out: dict[str, Any] = {}
    for key in _COPIED:
        value = body.get(key)
        if value is not None:
            out[key] = value

    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        if instructions:
            messages.append({"role": "system", "content": instructions})
    elif instructions is not None:
        raise TranslationError("instructions must be a string", "instructions")
    info = ResponsesRequest(echo=_echo(body), web_search=web_search, name_max=name_max)
    _Input(messages, info.warnings, thinking, name_max).run(body.get("input"))
    if not messages:
        raise TranslationError("'input' must contain at least one message", "input")
    out["messages"] = messages

    tools = _tools(body.get("tools"), info)
    if tools:
        out["tools"] = tools
    if info.search is not None:
        out["web_search_options"] = info.search
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in HOSTED_TYPES and info.search is not None:
        if web_search == "extended":  # the Anthropic translation forces its server tool
            out["tool_choice"] = {"type": "web_search"}
        # an OpenAI search model searches on every request: nothing to force
    elif choice is not None:
        out["tool_choice"] = _tool_choice(choice, name_max)
    parallel = body.get("parallel_tool_calls")
    if isinstance(parallel, bool) and tools:
        out["parallel_tool_calls"] = parallel

    cap = body.get("max_output_tokens")
    if cap is not None:
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
            raise TranslationError("max_output_tokens must be a non-negative integer", "max_output_tokens")
        out[options.max_tokens_field] = cap
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        out["reasoning_effort"] = reasoning["effort"]
    _text_options(body.get("text"), out)

    stream = body.get("stream") is True
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # usage goes into response.completed
    info.stream = stream
    return out, info


class _Input:
    """Walks ``input`` (a string or a list of items) and appends chat messages."""

    __slots__ = ("messages", "warnings", "carry", "thinking", "name_max")

    def __init__(
        self, messages: list[dict[str, Any]], warnings: list[str], carry: bool = True, name_max: int = OPENAI_NAME_MAX
    ) -> None:
        self.messages = messages
        self.warnings = warnings
        self.carry = carry  # signed thinking can go to the upstream
        self.name_max = name_max
        self.thinking: list[dict[str, Any]] = []  # blocks of reasoning items, for the next assistant turn

    def run(self, items: Any) -> None:
        if isinstance(items, str):
            self.messages.append({"role": "user", "content": items})
            return
        if not isinstance(items, list):
            raise TranslationError("'input' must be a string or an array of items", "input")
        for i, item in enumerate(items):
            param = f"input[{i}]"
            if not isinstance(item, dict):
                raise TranslationError("input items must be objects", param)
            kind = item.get("type", "message")
            if kind == "message":
                self._message(item, param)
            elif kind == "function_call":
                self._function_call(item, param)
            elif kind == "function_call_output":
                self._function_output(item, param)
            elif kind == "reasoning":
                self._reasoning(item, param)
            elif kind == "web_search_call":
                # A previous turn's search: its results are in the assistant's text; the upstream cannot take
                # another provider's search back.
                self.warnings.append(f"{param}: web_search_call item skipped: searches are not sent back")
            elif kind == "item_reference":
                # Nothing is stored, so there is nothing to resolve it to; a reference is what clients send
                # for items they were given (with store on, the AI SDK's default): skipped, not refused.
                self.warnings.append(
                    f"{param}: item_reference {item.get('id')!r} skipped: the gateway stores no items, send the "
                    "items themselves (store=false) to keep them, and the model's thinking with reasoning items"
                )
            else:
                raise TranslationError(
                    f"input item type {kind!r} is not supported for this model (its provider does not speak "
                    "the Responses API)",
                    f"{param}.type",
                )

    def _reasoning(self, item: dict[str, Any], param: str) -> None:
        """A reasoning item: the signed thinking in its ``encrypted_content`` goes to the next assistant turn.

        Its readable parts (``summary``, ``content``) are never sent back: the upstream only takes its own
        signed blocks, which the gateway put into ``encrypted_content`` (thinking_carry.py).
        """
        encrypted = item.get("encrypted_content")
        if not isinstance(encrypted, str) or not encrypted:
            return
        blocks = decode_thinking(encrypted, f"{param}.encrypted_content")
        if blocks is None:
            origin = "a newer version of this gateway" if is_gateway_content(encrypted) else "another provider"
            self.warnings.append(
                f"{param}: reasoning encrypted_content from {origin} dropped: this model cannot use it"
            )
        elif not self.carry:
            self.warnings.append(
                f"{param}: reasoning item's thinking dropped: this model's provider cannot take it back"
            )
        else:
            self.thinking.extend(blocks)

    def _assistant(self, message: dict[str, Any]) -> None:
        """Append an assistant chat message, with the signed thinking of the reasoning items before it."""
        if self.thinking:
            message["thinking_blocks"] = self.thinking
            self.thinking = []
        self.messages.append(message)

    def _message(self, item: dict[str, Any], param: str) -> None:
        raw_role = item.get("role")
        role = _ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise TranslationError(f"unsupported message role {item.get('role')!r}", f"{param}.role")
        content = item.get("content")
        if role == "assistant":
            text, refusal = _assistant_text(content, f"{param}.content")
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if refusal:
                message["refusal"] = refusal
            self._assistant(message)
            return
        self.thinking = []  # thinking belongs to the assistant turn right after it, not to a later one
        if isinstance(content, str):
            self.messages.append({"role": role, "content": content})
        elif isinstance(content, list):
            self.messages.append({"role": role, "content": _parts(content, f"{param}.content")})
        else:
            raise TranslationError("message content must be a string or an array of parts", f"{param}.content")

    def _function_call(self, item: dict[str, Any], param: str) -> None:
        call_id, name = item.get("call_id"), item.get("name")
        if not isinstance(call_id, str) or not call_id:
            raise TranslationError("function_call items need a string 'call_id'", f"{param}.call_id")
        if not isinstance(name, str) or not name:
            raise TranslationError("function_call items need a string 'name'", f"{param}.name")
        namespace = item.get("namespace")
        if isinstance(namespace, str) and namespace:
            name = namespace + NAMESPACE_SEPARATOR + name
        name = short_name(name, self.name_max)  # as the tool was offered upstream
        arguments = item.get("arguments")
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else "{}"},
        }
        last = self.messages[-1] if self.messages else None
        # Consecutive function_call items (possibly after the assistant's text) are one chat turn.
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
            if self.thinking:  # reasoning between the turn's text and its calls (interleaved thinking)
                last.setdefault("thinking_blocks", []).extend(self.thinking)
                self.thinking = []
        else:
            self._assistant({"role": "assistant", "content": None, "tool_calls": [call]})

    def _function_output(self, item: dict[str, Any], param: str) -> None:
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise TranslationError("function_call_output items need a string 'call_id'", f"{param}.call_id")
        output = item.get("output")
        if isinstance(output, str):
            content: Any = output
        elif isinstance(output, list):
            content = _parts(output, f"{param}.output")
        else:
            raise TranslationError("function_call_output.output must be a string or an array", f"{param}.output")
        self.thinking = []
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})


def _parts(parts: list[Any], param: str) -> list[dict[str, Any]]:
    """Responses input content parts -> chat content parts."""
    out: list[dict[str, Any]] = []
    for p, kind, part in each_part(parts, param):
        if kind in ("input_text", "output_text", "text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise TranslationError("text parts need a string 'text'", p)
            out.append({"type": "text", "text": text})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise TranslationError("input_image needs an image_url (file_id needs the provider's file storage)", p)
            image: dict[str, Any] = {"url": url}
            if isinstance(part.get("detail"), str):
                image["detail"] = part["detail"]
            out.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            if part.get("file_url") is not None:
                raise TranslationError("input_file.file_url is not supported for this model: send file_data", p)
            file = {k: part[k] for k in ("file_data", "file_id", "filename") if isinstance(part.get(k), str)}
            if "file_data" not in file and "file_id" not in file:
                raise TranslationError("input_file needs file_data or file_id", p)
            out.append({"type": "file", "file": file})
        else:
            raise TranslationError(f"unsupported content part type {kind!r}", p)
    return out


def _assistant_text(content: Any, param: str) -> tuple[str | None, str | None]:
    """(text, refusal) of an assistant message given back as input."""
    if isinstance(content, str):
        return content, None
    if not isinstance(content, list):
        raise TranslationError("message content must be a string or an array of parts", param)
    texts: list[str] = []
    refusals: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("output_text", "input_text", "text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            refusals.append(part["refusal"])
        else:
            raise TranslationError(f"unsupported assistant content part {kind!r}", f"{param}[{j}]")
    return ("".join(texts) if texts else None), ("".join(refusals) if refusals else None)


#: The separator of a namespaced tool's chat name (``namespace__name``): allowed in every provider's tool names.
NAMESPACE_SEPARATOR = "__"


def _tools(tools: Any, info: ResponsesRequest) -> list[dict[str, Any]]:
    """Flat Responses function tools -> nested chat tools.

    A ``namespace`` (a named group of function tools) is flattened: each of its functions becomes the chat
    function ``<namespace>__<name>``, and calls to it are named back (``info.tool_names``). Hosted tools
    (``web_search``, ``file_search``, ...) run on OpenAI's servers, which a chat upstream does not have: they
    are dropped with a warning, as the model could not call them anyway.
    """
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise TranslationError("tools must be an array", "tools")
    out: list[dict[str, Any]] = []
    for param, tool in each_object(tools, "tools", "tools entries"):
        kind = tool.get("type")
        if kind == "namespace":
            namespace = tool.get("name")
            inner = tool.get("tools")
            if not isinstance(namespace, str) or not namespace or not isinstance(inner, list):
                raise TranslationError("namespace tools need a 'name' and a 'tools' array", param)
            for j, function in enumerate(inner):
                where = f"{param}.tools[{j}]"
                if not isinstance(function, dict) or function.get("type") != "function":
                    info.warnings.append(f"{where}: only function tools of a namespace can be translated: dropped")
                    continue
                chat = _function(function, where)
                flat = short_name(namespace + NAMESPACE_SEPARATOR + chat["function"]["name"], info.name_max)
                info.tool_names[flat] = (namespace, chat["function"]["name"])
                chat["function"]["name"] = flat
                out.append(chat)
            continue
        if kind in HOSTED_TYPES and info.web_search is not None:
            if info.search is not None:
                info.warnings.append(f"{param}: a second web search tool dropped")
            else:
                info.search = chat_options_from_responses(
                    tool, param, info.warnings, extensions=info.web_search == "extended"
                )
            continue
        if kind != "function":
            info.warnings.append(f"{param}: hosted tool {kind!r} dropped: this model's provider cannot run it")
            continue
        chat = _function(tool, param)
        name = chat["function"]["name"]
        if len(name) > info.name_max:
            chat["function"]["name"] = short = short_name(name, info.name_max)
            info.tool_names[short] = (None, name)
        out.append(chat)
    return out


def _function(tool: dict[str, Any], param: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise TranslationError("function tools need a 'name'", f"{param}.name")
    function: dict[str, Any] = {"name": name}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any, name_max: int) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "function" and isinstance(choice.get("name"), str):
            return {"type": "function", "function": {"name": short_name(choice["name"], name_max)}}
        if kind == "allowed_tools" and isinstance(choice.get("tools"), list):
            allowed = []
            for tool in choice["tools"]:
                if (
                    not isinstance(tool, dict)
                    or tool.get("type") != "function"
                    or not isinstance(tool.get("name"), str)
                ):
                    raise TranslationError("allowed_tools can only name function tools", "tool_choice.tools")
                allowed.append({"type": "function", "function": {"name": short_name(tool["name"], name_max)}})
            mode = choice.get("mode") if choice.get("mode") in ("auto", "required") else "auto"
            return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": allowed}}
        raise TranslationError(f"tool_choice type {kind!r} is not supported for this model", "tool_choice")
    raise TranslationError("unsupported tool_choice", "tool_choice")


def _text_options(text: Any, out: dict[str, Any]) -> None:
    """``text.format`` -> ``response_format``; ``text.verbosity`` -> ``verbosity``."""
    if not isinstance(text, dict):
        return
    fmt = text.get("format")
    if isinstance(fmt, dict):
        kind = fmt.get("type")
        if kind == "json_schema":
            schema: dict[str, Any] = {"name": fmt.get("name") if isinstance(fmt.get("name"), str) else "response"}
            for key in ("schema", "strict", "description"):
                if fmt.get(key) is not None:
                    schema[key] = fmt[key]
            out["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif kind == "json_object":
            out["response_format"] = {"type": "json_object"}
        elif kind not in (None, "text"):
            raise TranslationError(f"text.format type {kind!r} is not supported", "text.format")
    if isinstance(text.get("verbosity"), str):
        out["verbosity"] = text["verbosity"]


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    """The request fields every Response object repeats (the SDK's ``Response`` requires several)."""
    parallel = body.get("parallel_tool_calls")
    tools = body.get("tools")
    text = body.get("text")
    reasoning = body.get("reasoning")
    metadata = body.get("metadata")
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "parallel_tool_calls": parallel if isinstance(parallel, bool) else True,
        "previous_response_id": None,
        "reasoning": reasoning if isinstance(reasoning, dict) else {"effort": None, "summary": None},
        "store": False,  # nothing is stored: the gateway translates statelessly
        "temperature": body.get("temperature"),
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") if body.get("tool_choice") is not None else "auto",
        "tools": tools if isinstance(tools, list) else [],
        "top_p": body.get("top_p"),
        "truncation": "disabled",
        "user": body.get("user"),
        "metadata": metadata if isinstance(metadata, dict) else {},
    }
