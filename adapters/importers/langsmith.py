"""LangSmith run exports: one run per record (``langsmith.schemas.Run`` as JSON, e.g. from
``Client.list_runs``), reassembled into traces and threads.

A run has an ``id``, a ``trace_id`` (else the root's id from its ``dotted_order``), a
``parent_run_id`` and a ``run_type``. Of a trace's runs:

- ``llm`` (and ``chat_model``) runs are the model calls: ``inputs.messages`` is the context
  (LangChain's serialized messages, or OpenAI messages from ``wrap_openai``),
  ``outputs.generations`` (or ``outputs.choices``) holds the action, the tools come from
  ``extra.invocation_params.tools`` (or ``inputs.tools``) and the LangGraph node from
  ``extra.metadata.langgraph_node``. An llm run with an ``error`` made no action and is
  counted, not imported.
- ``tool`` runs after a call are its observation when the next call's context does not show it.
- the root run (no parent) gives the final conversation (``outputs.messages``), the error of
  the whole run, and is searched first for outcome labels (``feedback_stats.user_score.avg``,
  ``extra.metadata.resolved``...).
- chain, retriever, prompt, parser and embedding runs are ignored (counted).

Traces that share a thread id (LangSmith's thread keys ``session_id``, ``thread_id`` or
``conversation_id`` in ``extra.metadata``, which LangGraph copies from the run's configurable
``thread_id``) form one trajectory, the id of which is the thread id; other traces are one
trajectory each, named by their trace id. Runs are ordered by ``dotted_order``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from hero_agents.adapters.importers.assembly import Call, Segment, normalize_message
from hero_agents.adapters.importers.formats import FormatContext
from hero_agents.adapters.importers.outcome import find_first
from hero_agents.adapters.importers.report import RecordError
from hero_agents.messages import to_openai_message
from hero_agents.trajectory import Message

THREAD_KEYS = (
    "extra.metadata.thread_id",
    "extra.metadata.session_id",
    "extra.metadata.conversation_id",
)
RUN_TYPES = frozenset(
    {"llm", "chat_model", "tool", "chain", "retriever", "prompt", "parser", "embedding"}
)
_CALL_TYPES = ("llm", "chat_model")
_MESSAGE_CLASSES: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "HumanMessage": HumanMessage,
    "HumanMessageChunk": HumanMessage,
    "user": HumanMessage,
    "ai": AIMessage,
    "AIMessage": AIMessage,
    "AIMessageChunk": AIMessage,
    "assistant": AIMessage,
    "system": SystemMessage,
    "SystemMessage": SystemMessage,
    "SystemMessageChunk": SystemMessage,
    "tool": ToolMessage,
    "ToolMessage": ToolMessage,
    "ToolMessageChunk": ToolMessage,
    "chat": ChatMessage,
    "ChatMessage": ChatMessage,
}
_CHUNK_ONLY_FIELDS = ("type", "tool_call_chunks", "chunk_position")
_KEPT = ("id", "trace_id", "parent_run_id", "run_type", "name", "start_time", "dotted_order")


def _trace_id(run: dict[str, Any]) -> str | None:
    if run.get("trace_id"):
        return str(run["trace_id"])
    dotted = run.get("dotted_order")
    if isinstance(dotted, str) and "Z" in dotted:
        return dotted.split(".", 1)[0].split("Z", 1)[1] or None  # {time}Z{root id}.{...}
    if run.get("parent_run_id") is None:
        return str(run["id"])
    return None


def _slim(run: dict[str, Any]) -> dict[str, Any]:
    """What a non-root run contributes (roots are kept whole: labels may be anywhere)."""
    extra = run.get("extra") or {}
    slim = {key: run.get(key) for key in _KEPT}
    slim["inputs"], slim["outputs"], slim["error"] = (
        run.get("inputs"),
        run.get("outputs"),
        run.get("error"),
    )
    slim["extra"] = {
        "metadata": extra.get("metadata") or {},
        "invocation_params": {"tools": (extra.get("invocation_params") or {}).get("tools")},
    }
    return slim


def _seconds(value: Any, where: str) -> float:
    """A run's ISO start time in seconds since the epoch."""
    try:
        return datetime.fromisoformat(value).timestamp()
    except (TypeError, ValueError):
        raise RecordError(where, "missing field", f"no readable start_time ({value!r})") from None


class _Messages:
    """Converts logged messages to OpenAI chat dicts, each distinct one once per trace."""

    def __init__(self) -> None:
        self._done: dict[bytes, Message] = {}

    def convert(self, raw: Any, where: str) -> Message:
        key = orjson.dumps(raw)  # one source serializes a message the same way every time
        if key not in self._done:
            self._done[key] = self._convert(raw, where)
        return self._done[key]

    def many(self, raw: Any, where: str) -> list[Message]:
        if not isinstance(raw, list):
            raise RecordError(where, "bad message", "expected a list of messages")
        return [self.convert(item, f"{where}[{i}]") for i, item in enumerate(raw)]

    def _convert(self, raw: Any, where: str) -> Message:
        if isinstance(raw, dict) and "role" in raw:
            return normalize_message(raw, where)  # OpenAI format (wrap_openai, @traceable)
        if isinstance(raw, list | tuple) and len(raw) == 2 and isinstance(raw[0], str):
            kind, fields = raw[0], {"content": raw[1]}  # LangChain's ("user", "text") form
        elif isinstance(raw, dict) and raw.get("lc") == 1 and isinstance(raw.get("kwargs"), dict):
            kind, fields = str((raw.get("id") or ["?"])[-1]), raw["kwargs"]  # dumpd()
        elif isinstance(raw, dict) and isinstance(raw.get("data"), dict) and "type" in raw:
            kind, fields = str(raw["type"]), raw["data"]  # messages_to_dict()
        elif isinstance(raw, dict) and "type" in raw and "content" in raw:
            kind, fields = str(raw["type"]), raw  # a message model dumped as JSON
        else:
            raise RecordError(where, "bad message", f"not a chat message: {str(raw)[:120]}")
        cls = _MESSAGE_CLASSES.get(kind)
        if cls is None:
            raise RecordError(where, "bad message", f"unknown message type {kind!r}")
        values = {k: v for k, v in fields.items() if k not in _CHUNK_ONLY_FIELDS}
        try:
            return normalize_message(to_openai_message(cls(**values)), where)
        except (TypeError, ValueError) as error:
            raise RecordError(where, "bad message", f"{kind}: {error}") from None


def _action(output: Any, messages: _Messages, where: str) -> Message:
    """The assistant message of one generation (``{"message": ...}``) or choice."""
    if not isinstance(output, dict) or "message" not in output:
        raise RecordError(where, "unreadable llm run", "no message in the generation")
    action = messages.convert(output["message"], where)
    if action.get("role") != "assistant":
        raise RecordError(where, "unreadable llm run", "the output is not an assistant message")
    return action


def _calls(run: dict[str, Any], messages: _Messages, where: str) -> list[Call]:
    inputs, outputs = run.get("inputs") or {}, run.get("outputs") or {}
    extra = run.get("extra") or {}
    metadata = extra.get("metadata") or {}
    tools = (extra.get("invocation_params") or {}).get("tools") or inputs.get("tools") or []
    node = metadata.get("langgraph_node")
    model = metadata.get("ls_model_name")
    contexts = inputs.get("messages")
    if "generations" in outputs and isinstance(contexts, list) and contexts:
        batches = contexts if isinstance(contexts[0], list) else [contexts]
        generations = outputs["generations"]
        if not isinstance(generations, list) or len(generations) != len(batches):
            raise RecordError(where, "unreadable llm run", "generations do not match the inputs")
        return [
            Call(
                messages=messages.many(batch, f"{where} inputs.messages"),
                tools=tools,
                action=_action((generation or [None])[0], messages, f"{where} outputs"),
                node=node,
                model=model,
            )
            for batch, generation in zip(batches, generations, strict=True)
        ]
    if "choices" in outputs and isinstance(contexts, list):
        choices = outputs["choices"] or [None]
        return [
            Call(
                messages=messages.many(contexts, f"{where} inputs.messages"),
                tools=tools,
                action=_action(choices[0], messages, f"{where} outputs.choices"),
                node=node,
                model=model or outputs.get("model"),
            )
        ]
    if "prompts" in inputs:
        raise RecordError(where, "text completion run", "inputs.prompts is text, not a chat")
    raise RecordError(
        where, "unreadable llm run", "expected inputs.messages with outputs.generations/choices"
    )


def _error_text(error: Any) -> str:
    """A run's error without the traceback LangChain's tracer appends to it."""
    return str(error).split("Traceback (most recent call last):", 1)[0].strip()


def _is_tool_message(output: Any) -> bool:
    if not isinstance(output, dict):
        return False
    if output.get("lc") == 1:
        return str((output.get("id") or [""])[-1]).startswith("ToolMessage")
    return output.get("type") == "tool" or output.get("role") == "tool"


def _tool_result(run: dict[str, Any], messages: _Messages, where: str) -> Message:
    name = run.get("name") or "tool"
    if run.get("error"):
        return {
            "role": "tool",
            "name": name,
            "content": _error_text(run["error"]),
            "status": "error",
        }
    output = (run.get("outputs") or {}).get("output")
    if _is_tool_message(output):
        return messages.convert(output, where)
    content = output if isinstance(output, str) else json.dumps(output, default=str)
    return {"role": "tool", "name": name, "content": content}


class LangSmithRuns:
    """LangSmith runs, grouped into traces and threads (see the module docstring)."""

    name = "langsmith"
    description = "LangSmith run export (JSONL of runs; llm/tool/chain runs, LangGraph nodes)"

    def items(
        self, value: Any, location: str, context: FormatContext
    ) -> Iterator[tuple[str | None, str, Any]]:
        if not isinstance(value, dict):
            raise RecordError(location, "not an object", f"got {type(value).__name__}")
        if not value.get("id") or not value.get("run_type"):
            raise RecordError(location, "not a LangSmith run", "it has no 'id' or 'run_type'")
        where = f"{location} (run {value['id']})"
        run_type = value["run_type"]
        if run_type not in RUN_TYPES:
            raise RecordError(where, "unknown run type", f"run_type {run_type!r}")
        trace = _trace_id(value)
        if trace is None:
            raise RecordError(where, "missing field", "no trace_id or dotted_order")
        if value.get("parent_run_id") is None:
            yield trace, location, value
        elif run_type in _CALL_TYPES or run_type == "tool":
            yield trace, location, _slim(value)
        else:
            context.report.ignore(f"{run_type} runs")

    def segment(
        self, key: str | None, entries: list[tuple[str, Any]], context: FormatContext
    ) -> Segment:
        runs: dict[str, tuple[str, dict[str, Any]]] = {}
        for location, run in entries:
            runs[str(run["id"])] = (location, run)  # a run exported twice: keep the last
        ordered = sorted(
            runs.values(),
            key=lambda e: (e[1].get("dotted_order") or "", e[1].get("start_time") or ""),
        )
        root = next((run for _, run in ordered if run.get("parent_run_id") is None), None)
        messages = _Messages()
        segment = Segment(key=str(key), location=ordered[0][0], calls=[])
        for location, run in ordered:
            where = f"{location} (run {run['id']})"
            if run["run_type"] in _CALL_TYPES:
                if run.get("error") or not run.get("outputs"):
                    context.report.failed_calls += 1
                    continue
                segment.calls += _calls(run, messages, where)
            elif run["run_type"] == "tool" and segment.calls:
                segment.calls[-1].after.append(_tool_result(run, messages, where))
        records = [run for _, run in ordered if run is not root]
        if root is not None:
            records.insert(0, root)  # outcome labels and thread ids: the root run first
            final = (root.get("outputs") or {}).get("messages")
            if isinstance(final, list):
                segment.final = messages.many(final, f"{ordered[0][0]} root outputs.messages")
            if root.get("error"):
                segment.error = _error_text(root["error"])
        thread = find_first(records, context.threads(THREAD_KEYS))
        segment.thread = str(thread) if thread is not None else None
        first = root or ordered[0][1]
        segment.start = _seconds(first.get("start_time"), f"{segment.location} (run {first['id']})")
        segment.outcome = context.outcome.found(records) if context.outcome else {}
        return segment
