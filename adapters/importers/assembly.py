"""From model calls to turns: the part every format shares.

Each format reads its records into `Segment`s: the model calls of one trace (or one logged
conversation, or one logged request), each a `Call` with the exact context it was sent, its
tools, the assistant message it returned, the LangGraph node that made it, and the tool
results recorded after it. A trajectory is one segment, or the segments of one thread in
time order, and each call becomes a `Turn` (turn = assistant action plus the observations
that follow it).

Every turn keeps its own context, so a history that was summarized or edited between calls is
kept as the model saw it, never forced into one conversation. The observation of a call is
read from the conversation itself: the messages after its action in the next call's context
(tool results, the user's next message), or for the last call in the final conversation state
when the format records one. When the next context does not contain the action (the history
was rewritten), the tool results recorded after the call are the observation instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hero_agents.adapters.importers.outcome import OutcomeLabels
from hero_agents.adapters.importers.report import ImportReport, Problem, RecordError
from hero_agents.trajectory import Message, ToolSchema, Trajectory, Turn

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


@dataclass
class Call:
    """One model call as a format recorded it, in OpenAI chat format."""

    messages: list[Message]
    tools: list[ToolSchema]
    action: Message
    node: str | None = None
    after: list[Message] = field(default_factory=list)
    """Tool results recorded after this call and before the next one."""
    model: str | None = None


@dataclass
class Segment:
    """The calls of one trace or logged record, with what its trajectory needs."""

    key: str
    """The trace id (or the record's id): the trajectory id unless it joins a thread."""
    location: str
    calls: list[Call]
    final: list[Message] | None = None
    """The conversation after the last call, when the format records it."""
    thread: str | None = None
    start: float = 0.0
    """Seconds since the epoch (0 when unknown); orders the segments of a thread."""
    order: int = 0
    """Position in the input, for segments that start at the same time."""
    outcome: dict[str, Any] = field(default_factory=dict)
    """Outcome-label fields found in its records, by path."""
    error: str | None = None
    """Why the traced run failed, if it did."""

    def to_json(self) -> dict[str, Any]:
        """As plain JSON values (shallow: the messages are shared, not copied)."""
        return {**vars(self), "calls": [vars(call) for call in self.calls]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Segment:
        calls = [Call(**call) for call in data.pop("calls")]
        return cls(calls=calls, **data)


def text_of_parts(parts: list[Any]) -> str | None:
    """The text of a content list made only of text parts, else None (keep the list)."""
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text" and "text" in part:
            texts.append(str(part["text"]))
        else:
            return None
    return "\n".join(texts)


def normalize_message(message: Any, where: str) -> Message:
    """A logged OpenAI chat message made regular: a known role, text-only content lists as a
    string (as chat templates expect), tool-call arguments as JSON strings."""
    if not isinstance(message, dict):
        raise RecordError(where, "bad message", f"expected an object, got {type(message).__name__}")
    role = message.get("role")
    if role not in ROLES:
        if role == "function" or "function_call" in message:
            raise RecordError(
                where,
                "legacy function calling",
                "'function' messages and 'function_call' are not supported: log tools and "
                "tool_calls instead",
            )
        raise RecordError(where, "bad message", f"unknown role {role!r}")
    normalized = dict(message)
    content = normalized.get("content")
    if isinstance(content, list):
        text = text_of_parts(content)
        if text is not None:
            normalized["content"] = text
    calls = normalized.get("tool_calls")
    if calls:
        if role != "assistant" or not isinstance(calls, list):
            raise RecordError(where, "bad message", "tool_calls on a non-assistant message")
        normalized["tool_calls"] = [_tool_call(call, where) for call in calls]
    elif "tool_calls" in normalized:
        del normalized["tool_calls"]  # an empty list says nothing
    return normalized


def _tool_call(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name"):
        raise RecordError(where, "bad message", f"a tool call without a function name: {call!r}")
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {})
    return {**call, "type": "function", "function": {**function, "arguments": arguments}}


def _arguments(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _text(message: Message) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return text_of_parts(content) or json.dumps(content, sort_keys=True)
    return content or ""


def same_message(a: Message, b: Message) -> bool:
    """Whether `b` is `a` as logged again: same role, text and tool calls (ids compared only
    where both have them, since some formats drop them)."""
    if a.get("role") != b.get("role") or _text(a) != _text(b):
        return False
    calls_a, calls_b = a.get("tool_calls") or [], b.get("tool_calls") or []
    if len(calls_a) != len(calls_b):
        return False
    for x, y in zip(calls_a, calls_b, strict=True):
        if x.get("id") and y.get("id") and x["id"] != y["id"]:
            return False
        fx, fy = x.get("function") or {}, y.get("function") or {}
        if fx.get("name") != fy.get("name"):
            return False
        if _arguments(fx.get("arguments") or "{}") != _arguments(fy.get("arguments") or "{}"):
            return False
    return True


def messages_after(action: Message, following: Sequence[Message] | None) -> list[Message] | None:
    """The messages after the last occurrence of `action` in `following`, or None."""
    if not following:
        return None
    for position in range(len(following) - 1, -1, -1):
        if same_message(action, following[position]):
            return list(following[position + 1 :])
    return None


def assemble(
    segments: Sequence[Segment],
    *,
    trajectory_id: str,
    format_name: str,
    report: ImportReport,
    outcome: OutcomeLabels | None = None,
    nodes: frozenset[str] | None = None,
) -> Trajectory | None:
    """The trajectory of `segments` (one trace, or a thread's traces in any order), or None
    when no model call is left (counted as ignored)."""
    ordered = sorted(segments, key=lambda s: (s.start, s.order))
    calls: list[tuple[Segment, Call]] = [
        (segment, call)
        for segment in ordered
        for call in segment.calls
        if nodes is None or call.node in nodes
    ]
    if not calls:
        report.ignore("traces without model calls" if nodes is None else "no calls of --node")
        return None
    turns = []
    for index, (segment, call) in enumerate(calls):
        following = calls[index + 1][1].messages if index + 1 < len(calls) else None
        observation = messages_after(call.action, following)
        last_of_segment = index + 1 == len(calls) or calls[index + 1][0] is not segment
        if observation is None and last_of_segment:
            observation = messages_after(call.action, segment.final)
        turns.append(
            Turn(
                index=index,
                messages=call.messages,
                tools=call.tools,
                action=call.action,
                observation=call.after if observation is None else observation,
                node=call.node,
            )
        )
    last = ordered[-1]
    metadata: dict[str, Any] = {"format": format_name, "location": ordered[0].location}
    if len(ordered) > 1 or ordered[0].thread is not None:
        metadata["thread"] = ordered[0].thread
        metadata["traces"] = [segment.key for segment in ordered]
    models = sorted({call.model for _, call in calls if call.model})
    if models:
        metadata["models"] = models
    if last.error is not None:
        metadata["error"] = last.error
    reward, reward_info = _reward(ordered, outcome, report)
    if reward is not None:
        report.rewarded += 1
    return Trajectory(
        id=trajectory_id,
        turns=turns,
        reward=reward,
        reward_info=reward_info,
        termination="error" if last.error is not None else None,
        source="production",
        metadata=metadata,
    )


def _reward(
    ordered: Sequence[Segment], outcome: OutcomeLabels | None, report: ImportReport
) -> tuple[float | None, dict[str, Any]]:
    """The latest segment's value of the first outcome field found, as a reward."""
    if outcome is None:
        return None, {}
    for path in outcome.fields:
        for segment in reversed(ordered):
            if path in segment.outcome:
                value = segment.outcome[path]
                try:
                    reward = outcome.reward(path, value)
                except ValueError as error:
                    report.problem(Problem(segment.location, "unmapped outcome label", str(error)))
                    return None, {"label": {"field": path, "value": value}}
                return reward, {"label": {"field": path, "value": value}}
    return None, {}
