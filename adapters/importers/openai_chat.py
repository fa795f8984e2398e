"""OpenAI chat-completions JSONL: the fine-tuning format and request/response logs.

Each line is one of:

- a conversation, as in OpenAI's fine-tuning files: ``{"messages": [...], "tools": [...]}``
  where every assistant message is an action (turn t's context is every message before it,
  its observation every message after it up to the next assistant message). One line is one
  trajectory.
- a logged request with its response: ``{"request": {"messages", "tools", "model"},
  "response": {"choices": [...]}}`` or the same fields flat (``messages``, ``tools`` and
  ``choices`` or ``response``). Each line is one call; calls that share a thread id
  (``metadata.thread_id``, ``metadata.session_id``, ``metadata.conversation_id``, or the same
  keys at the top level; ``--thread-key`` to change) form one trajectory in the order of their
  ``created`` time and then of the input, with the turns' observations read from the next
  request's messages. Requests whose history was summarized or edited keep their own context.

The trajectory id is the line's ``id`` (or ``metadata.id``, or the response's ``id``), else a
hash of the line, so a re-import gives the same ids; a thread's id is its thread id. Legacy
``functions`` / ``function_call`` logs are reported, not converted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from hero_agents.adapters.importers.assembly import Call, Segment, normalize_message
from hero_agents.adapters.importers.formats import FormatContext
from hero_agents.adapters.importers.outcome import find_first
from hero_agents.adapters.importers.report import RecordError

THREAD_KEYS = (
    "metadata.thread_id",
    "metadata.session_id",
    "metadata.conversation_id",
    "thread_id",
    "session_id",
    "conversation_id",
)


def _tools(request: dict[str, Any], where: str) -> list[dict[str, Any]]:
    if request.get("functions"):
        raise RecordError(
            where, "legacy function calling", "'functions' is not supported: log 'tools' instead"
        )
    tools = request.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
        raise RecordError(where, "bad tools", "'tools' must be a list of tool objects")
    return tools


def _messages(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise RecordError(where, "missing field", "no 'messages' list")
    return [normalize_message(m, f"{where} message {i}") for i, m in enumerate(raw)]


def _record_id(record: dict[str, Any]) -> str:
    response = record.get("response")
    candidates = [record.get("id"), (record.get("metadata") or {}).get("id")]
    if isinstance(response, dict):
        candidates.append(response.get("id"))
    for value in candidates:
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return "openai-" + hashlib.sha256(canonical.encode()).hexdigest()[:20]


class OpenAIChat:
    """Conversations and logged requests in OpenAI chat format (see the module docstring)."""

    name = "openai"
    description = "OpenAI chat JSONL: fine-tuning conversations or logged request/response"

    def items(
        self, value: Any, location: str, context: FormatContext
    ) -> Iterator[tuple[str | None, str, Any]]:
        if not isinstance(value, dict):
            raise RecordError(location, "not an object", f"got {type(value).__name__}")
        yield None, location, value

    def segment(
        self, key: str | None, entries: list[tuple[str, Any]], context: FormatContext
    ) -> Segment:
        [(location, record)] = entries
        request = record.get("request", record)
        if not isinstance(request, dict):
            raise RecordError(location, "not an object", "'request' is not an object")
        response = record.get("response", record)
        choices = response.get("choices") if isinstance(response, dict) else None
        messages = _messages(request.get("messages"), location)
        tools = _tools(request, location)
        outcome = context.outcome.found([record]) if context.outcome else {}
        segment = Segment(key=_record_id(record), location=location, calls=[], outcome=outcome)
        model = (response.get("model") if isinstance(response, dict) else None) or request.get(
            "model"
        )
        if choices is not None:  # one logged request
            if not isinstance(choices, list) or not choices or "message" not in choices[0]:
                raise RecordError(location, "missing field", "'choices' has no message")
            action = normalize_message(choices[0]["message"], f"{location} choice 0")
            if action["role"] != "assistant":
                raise RecordError(location, "bad message", "the choice is not an assistant message")
            segment.calls = [Call(messages=messages, tools=tools, action=action, model=model)]
            thread = find_first([record], context.threads(THREAD_KEYS))
            segment.thread = str(thread) if thread is not None else None
            created = response.get("created") if isinstance(response, dict) else None
            if isinstance(created, int | float) and not isinstance(created, bool):
                segment.start = float(created)
            return segment
        assistant = [i for i, message in enumerate(messages) if message["role"] == "assistant"]
        if not assistant:
            raise RecordError(
                location, "no model calls", "the conversation has no assistant message"
            )
        for number, position in enumerate(assistant):
            end = assistant[number + 1] if number + 1 < len(assistant) else len(messages)
            segment.calls.append(
                Call(
                    messages=messages[:position],
                    tools=tools,
                    action=messages[position],
                    after=messages[position + 1 : end],
                    model=model,
                )
            )
        segment.final = messages
        return segment
