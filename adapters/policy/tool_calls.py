"""Hermes / Qwen-style tool calls: parsing them out of generated text, and preparing OpenAI
messages for chat templates that render them.

The format (Qwen 2.5, Hermes, SmolLM2 and TRL's ``qwen2_5.jinja``)::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

Parsing never raises: a block that is not a valid call stays in the text and is reported as an
invalid tool call (LangChain's ``InvalidToolCall``), so the agent and the trace both see it.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from langchain_core.messages.tool import InvalidToolCall, ToolCall, invalid_tool_call, tool_call

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"

_BLOCK = re.compile(
    re.escape(TOOL_CALL_OPEN) + r"(.*?)(?:" + re.escape(TOOL_CALL_CLOSE) + r"|\Z)", re.S
)


def tool_chat_template() -> str:
    """TRL's Qwen 2.5 chat template (``trl/chat_templates/qwen2_5.jinja``), read from the
    installed ``trl``: it renders tools and tool calls in this format, and TRL recognizes it by
    its exact text (``add_response_schema``, ``get_training_chat_template``)."""
    path = resources.files("trl").joinpath("chat_templates/qwen2_5.jinja")
    return path.read_text(encoding="utf-8")


@dataclass
class ParsedToolCalls:
    """Generated text split into plain content, well-formed calls and malformed ones."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)


def new_tool_call_id() -> str:
    """A fresh, unique tool call id in OpenAI's style (``call_`` + 24 hex digits)."""
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_tool_calls(text: str) -> ParsedToolCalls:
    """Split `text` into content and ``<tool_call>`` blocks.

    A block is valid when it holds a JSON object with a non-empty string ``"name"`` and an object
    ``"arguments"``. Valid blocks are removed from the content; invalid ones (bad JSON, missing
    name or arguments, no closing tag) stay in the content verbatim and are also listed in
    `invalid_tool_calls` with the reason. Content is stripped of surrounding whitespace.
    """
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    kept: list[str] = []
    position = 0
    for match in _BLOCK.finditer(text):
        kept.append(text[position : match.start()])
        position = match.end()
        body = match.group(1)
        closed = match.group(0).endswith(TOOL_CALL_CLOSE)
        name, arguments, error = _parse_block(body, closed=closed)
        if error is None:
            calls.append(tool_call(name=name, args=arguments, id=new_tool_call_id()))
        else:
            kept.append(match.group(0))
            invalid.append(
                invalid_tool_call(name=name, args=body.strip(), id=new_tool_call_id(), error=error)
            )
    kept.append(text[position:])
    return ParsedToolCalls("".join(kept).strip(), calls, invalid)


def _parse_block(body: str, *, closed: bool) -> tuple[Any, Any, str | None]:
    """(name, arguments, error) for the text between the tags; error is None when valid."""
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        reason = f"tool call is not valid JSON: {exc}"
        return None, None, reason if closed else f"unterminated {TOOL_CALL_OPEN}; {reason}"
    if not isinstance(payload, dict):
        return None, None, "tool call must be a JSON object with 'name' and 'arguments'"
    name = payload.get("name")
    if not isinstance(name, str) or not name:
        return None, None, "tool call has no 'name' (a non-empty string)"
    arguments = payload.get("arguments")
    if not isinstance(arguments, dict):
        return name, None, f"tool call '{name}' has no 'arguments' object"
    if not closed:
        return name, None, f"tool call '{name}' is missing its closing {TOOL_CALL_CLOSE}"
    return name, arguments, None
