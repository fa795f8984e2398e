"""Conversion between LangChain messages and the OpenAI-format dicts that traces store."""

from __future__ import annotations

import json
from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, convert_to_openai_messages

from hero_agents.trajectory import Message


def to_openai_message(message: BaseMessage) -> Message:
    """One LangChain message as an OpenAI chat dict.

    Keeps what LangChain's converter drops but training needs: a tool result's error status
    (``"status": "error"``) and an assistant message's malformed tool calls
    (``"invalid_tool_calls"``, whose raw text also stays in ``content``).
    """
    converted = convert_to_openai_messages([message])[0]
    if isinstance(message, ToolMessage) and message.status == "error":
        converted["status"] = "error"
    if isinstance(message, AIMessage) and message.invalid_tool_calls:
        converted["invalid_tool_calls"] = [
            {"name": call.get("name"), "arguments": call.get("args"), "error": call.get("error")}
            for call in message.invalid_tool_calls
        ]
    return converted


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    """Several LangChain messages as OpenAI chat dicts, in order."""
    return [to_openai_message(message) for message in messages]


def template_messages(messages: Sequence[Message]) -> list[Message]:
    """OpenAI messages made ready for a Hugging Face chat template.

    OpenAI messages carry tool call arguments as a JSON string; chat templates (Qwen's, TRL's)
    expect an object and render it with ``tojson``, which would double-encode a string. This
    decodes them; everything else is copied unchanged. Arguments that are not valid JSON are
    left as the string, so the template shows what the model actually wrote.
    """
    prepared: list[Message] = []
    for message in messages:
        calls = message.get("tool_calls")
        if not calls:
            prepared.append(dict(message))
            continue
        converted = []
        for call in calls:
            function = dict(call.get("function", call))
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                try:
                    function["arguments"] = json.loads(arguments)
                except json.JSONDecodeError:
                    pass
            converted.append({**call, "function": function} if "function" in call else function)
        prepared.append({**message, "tool_calls": converted})
    return prepared
