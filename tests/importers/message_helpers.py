"""Small helpers the importer tests share."""

from __future__ import annotations

from typing import Any


def tool_call_names(message: dict[str, Any]) -> list[str]:
    """The names of the tools an assistant message calls, in order."""
    return [call["function"]["name"] for call in message.get("tool_calls") or []]
