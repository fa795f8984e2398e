"""OpenTelemetry spans that follow the GenAI semantic conventions, exported as JSON.

Records are either OTLP/JSON export requests (``{"resourceSpans": [...]}``, one per line, as
the OpenTelemetry Collector's file exporter writes them; ids hex as the OTLP/JSON spec says,
or base64 as a plain protobuf-to-JSON conversion gives them) or one span per line as the
Python SDK's ``ReadableSpan.to_json()`` writes it (``ConsoleSpanExporter`` with
``formatter=lambda span: span.to_json(indent=None) + "\\n"``).

Spans are grouped by trace. A model call is a span with ``gen_ai.operation.name`` ``chat``
(or ``text_completion``, ``generate_content``, or OpenLLMetry's ``llm.request.type`` ``chat``);
where one model span sits inside another (two instrumentations of one call) the outer one is
kept. Its context and action are read from whichever of these the instrumentation recorded:

- ``gen_ai.system_instructions``, ``gen_ai.input.messages`` and ``gen_ai.output.messages``
  (JSON messages made of ``parts``: text, ``tool_call``, ``tool_call_response``), with tools in
  ``gen_ai.tool.definitions`` (the current conventions);
- OpenLLMetry's flattened ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` attributes, tools
  in ``llm.request.functions.N.*`` (what Traceloop/OpenLLMetry and Agent Lightning's tracer
  emit);
- the older span events ``gen_ai.system.message``, ``gen_ai.user.message``,
  ``gen_ai.assistant.message``, ``gen_ai.tool.message`` and ``gen_ai.choice``, or
  ``gen_ai.content.prompt`` / ``gen_ai.content.completion``.

Tool spans (``execute_tool``, or OpenLLMetry's ``traceloop.span.kind`` ``tool``) give the
tool results after a call. The LangGraph node is ``traceloop.association.properties.
langgraph_node`` or ``langgraph.node`` on the span, else the nearest enclosing OpenLLMetry
task span's ``traceloop.entity.name`` or ``invoke_agent`` span's ``gen_ai.agent.name``.
Traces with the same ``gen_ai.conversation.id`` (or ``session.id``, or OpenLLMetry's
association properties ``thread_id``/``session_id``/``conversation_id``) form one trajectory.
Outcome labels are looked up in span attributes, root span first, then in span events (where
``gen_ai.evaluation.result`` puts ``gen_ai.evaluation.score.value``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from hero_agents.adapters.importers.assembly import Call, Segment, normalize_message
from hero_agents.adapters.importers.formats import FormatContext
from hero_agents.adapters.importers.outcome import find_first
from hero_agents.adapters.importers.report import RecordError
from hero_agents.trajectory import Message

THREAD_KEYS = (
    "gen_ai.conversation.id",
    "session.id",
    "traceloop.association.properties.thread_id",
    "traceloop.association.properties.session_id",
    "traceloop.association.properties.conversation_id",
)
_MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_FLAT = re.compile(r"^gen_ai\.(prompt|completion)\.(\d+)\.(.+)$")
_FUNCTION = re.compile(r"^llm\.request\.functions\.(\d+)\.(.+)$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


# -- OTLP/JSON and SDK JSON to one span shape ---------------------------------------------------


def _any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as a Python value."""
    if not isinstance(value, dict):
        return value
    for key in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_any_value(item) for item in (value["arrayValue"].get("values") or [])]
    if "kvlistValue" in value:
        return _attributes(value["kvlistValue"].get("values") or [])
    return None


def _attributes(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, list):
        return {item["key"]: _any_value(item.get("value")) for item in raw if "key" in item}
    return {}


def _hex_id(value: Any) -> str | None:
    """A trace or span id as lower-case hex, from hex, ``0x`` hex or base64."""
    if not value or not isinstance(value, str):
        return None
    text = value.removeprefix("0x")
    if len(text) in (16, 32) and _HEX.match(text):
        return text.lower()
    try:
        return base64.b64decode(text, validate=True).hex() or None
    except (binascii.Error, ValueError):
        return None


def _nanoseconds(value: Any, where: str) -> int:
    """A start time in nanoseconds since the epoch, from OTLP's integer or the SDK's ISO text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        try:
            return int(datetime.fromisoformat(value).timestamp() * 1e9)
        except ValueError:
            pass
    raise RecordError(where, "missing field", f"no readable start time ({value!r})")


def _span(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """OTLP/JSON (``traceId``...) or SDK JSON (``context.trace_id``...) as one dict shape."""
    if "traceId" in raw:
        trace, span, parent = raw.get("traceId"), raw.get("spanId"), raw.get("parentSpanId")
        start = raw.get("startTimeUnixNano")
        status = raw.get("status") or {}
        failed = status.get("code") in (2, "STATUS_CODE_ERROR")
        message = status.get("message")
    elif isinstance(raw.get("context"), dict):
        trace, span = raw["context"].get("trace_id"), raw["context"].get("span_id")
        parent, start = raw.get("parent_id"), raw.get("start_time")
        status = raw.get("status") or {}
        failed = status.get("status_code") == "ERROR"
        message = status.get("description")
    else:
        raise RecordError(where, "not a span", "no traceId/spanId or context.trace_id")
    events = [
        {"name": e.get("name"), "attributes": _attributes(e.get("attributes"))}
        for e in raw.get("events") or []
    ]
    trace_id, span_id = _hex_id(trace), _hex_id(span)
    if trace_id is None or span_id is None:
        raise RecordError(where, "missing field", f"unreadable trace or span id ({trace}, {span})")
    error = None
    if failed:
        thrown = [
            e["attributes"].get("exception.message") for e in events if e["name"] == "exception"
        ]
        error = message or next((text for text in thrown if text), None) or "error"
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_id": _hex_id(parent),
        "name": raw.get("name") or "",
        "start": _nanoseconds(start, where),
        "attributes": _attributes(raw.get("attributes")),
        "events": events,
        "error": error,
    }


# -- GenAI content to OpenAI chat messages ------------------------------------------------------


def _json(value: Any, where: str, name: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise RecordError(
            where, "bad GenAI attribute", f"{name} is not JSON ({error.msg})"
        ) from None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _parts_messages(message: Any, where: str) -> list[Message]:
    """One semantic-convention message (role + parts) as OpenAI messages; tool responses
    become one tool message each."""
    if not isinstance(message, dict) or "role" not in message:
        raise RecordError(where, "bad message", "a GenAI message needs a role and parts")
    texts: list[str] = []
    other: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    responses: list[Message] = []
    for part in message.get("parts") or []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("content", "")))
        elif kind == "tool_call":
            arguments = part.get("arguments")
            calls.append(
                {
                    "id": part.get("id"),
                    "type": "function",
                    "function": {"name": part.get("name"), "arguments": _text(arguments or {})},
                }
            )
        elif kind == "tool_call_response":
            responses.append(
                {
                    "role": "tool",
                    "tool_call_id": part.get("id"),
                    "content": _text(part.get("response")),
                }
            )
        elif isinstance(part, dict):
            other.append(part)  # reasoning, blob, uri, file: kept as they were logged
    role = message["role"]
    out: list[Message] = []
    if texts or calls or other or not responses:
        content: Any = "\n".join(texts)
        if other:  # keep the parts that are not text, in a content list
            content = [*({"type": "text", "text": text} for text in texts), *other]
        built: Message = {"role": role, "content": content}
        if calls:
            built["tool_calls"] = calls
        if message.get("name"):
            built["name"] = message["name"]
        out.append(built)
    out += responses
    return [normalize_message(m, where) for m in out]


def _flat_messages(attributes: dict[str, Any], kind: str, where: str) -> list[Message]:
    """OpenLLMetry's ``gen_ai.{prompt|completion}.N.*`` attributes as messages, by N."""
    fields: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        match = _FLAT.match(key)
        if match and match.group(1) == kind:
            fields.setdefault(int(match.group(2)), {})[match.group(3)] = value
    messages = []
    for index in sorted(fields):
        item = fields[index]
        message: Message = {
            "role": item.get("role", "assistant" if kind == "completion" else "user")
        }
        content = item.get("content")
        if isinstance(content, str) and content.startswith("[{"):
            content = _json(content, where, f"gen_ai.{kind}.{index}.content")
        message["content"] = content if content is not None else ""
        if item.get("tool_call_id"):
            message["tool_call_id"] = item["tool_call_id"]
        calls = []
        position = 0
        while f"tool_calls.{position}.name" in item:
            calls.append(
                {
                    "id": item.get(f"tool_calls.{position}.id"),
                    "type": "function",
                    "function": {
                        "name": item[f"tool_calls.{position}.name"],
                        "arguments": _text(item.get(f"tool_calls.{position}.arguments") or {}),
                    },
                }
            )
            position += 1
        if calls:
            message["tool_calls"] = calls
        messages.append(normalize_message(message, f"{where} gen_ai.{kind}.{index}"))
    return messages


def _event_message(event: dict[str, Any], role: str, where: str) -> Message:
    attributes = event["attributes"]
    body = attributes.get("message")
    message = dict(_json(body, where, "message")) if body is not None else {}
    message.setdefault("role", attributes.get("role") or role)
    if "content" in attributes:
        message["content"] = attributes["content"]
    if "tool_calls" in attributes:
        message["tool_calls"] = _json(attributes["tool_calls"], where, "tool_calls")
    if role == "tool" and attributes.get("id"):
        message["tool_call_id"] = attributes["id"]
    message.setdefault("content", "")
    return normalize_message(message, f"{where} event {event['name']}")


def _context(span: dict[str, Any], where: str) -> list[Message] | None:
    attributes, events = span["attributes"], span["events"]
    if "gen_ai.input.messages" in attributes:
        messages: list[Message] = []
        instructions = attributes.get("gen_ai.system_instructions")
        if instructions is not None:
            parts = _json(instructions, where, "gen_ai.system_instructions")
            parts = parts if isinstance(parts, list) else [{"type": "text", "content": parts}]
            messages += _parts_messages({"role": "system", "parts": parts}, where)
        for item in _json(attributes["gen_ai.input.messages"], where, "gen_ai.input.messages"):
            messages += _parts_messages(item, f"{where} gen_ai.input.messages")
        return messages
    if "gen_ai.prompt.0.role" in attributes or "gen_ai.prompt.0.content" in attributes:
        return _flat_messages(attributes, "prompt", where)
    logged = [e for e in events if e["name"] in _MESSAGE_EVENTS]
    if logged:
        return [_event_message(e, _MESSAGE_EVENTS[e["name"]], where) for e in logged]
    for event in events:
        if event["name"] == "gen_ai.content.prompt" and "gen_ai.prompt" in event["attributes"]:
            raw = _json(event["attributes"]["gen_ai.prompt"], where, "gen_ai.prompt")
            return [normalize_message(m, f"{where} gen_ai.prompt") for m in raw]
    return None


def _action(span: dict[str, Any], where: str) -> Message | None:
    attributes, events = span["attributes"], span["events"]
    if "gen_ai.output.messages" in attributes:
        output = _json(attributes["gen_ai.output.messages"], where, "gen_ai.output.messages")
        return _parts_messages(output[0], f"{where} gen_ai.output.messages")[0] if output else None
    if any(key.startswith("gen_ai.completion.0.") for key in attributes):
        return _flat_messages(attributes, "completion", where)[0]
    choices = [e for e in events if e["name"] == "gen_ai.choice"]
    if choices:
        first = min(choices, key=lambda e: int(e["attributes"].get("index") or 0))
        return _event_message(first, "assistant", where)
    for event in events:
        if (
            event["name"] == "gen_ai.content.completion"
            and "gen_ai.completion" in event["attributes"]
        ):
            raw = _json(event["attributes"]["gen_ai.completion"], where, "gen_ai.completion")
            first = raw[0] if isinstance(raw, list) and raw else raw
            message = first.get("message", first) if isinstance(first, dict) else first
            return normalize_message(message, f"{where} gen_ai.completion")
    return None


def _tools(attributes: dict[str, Any], where: str) -> list[dict[str, Any]]:
    if "gen_ai.tool.definitions" in attributes:
        tools = []
        for tool in _json(attributes["gen_ai.tool.definitions"], where, "gen_ai.tool.definitions"):
            if isinstance(tool, dict) and "function" not in tool and "name" in tool:
                fields = {k: v for k, v in tool.items() if k != "type"}
                tool = {"type": tool.get("type", "function"), "function": fields}
            tools.append(tool)
        return tools
    functions: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        match = _FUNCTION.match(key)
        if match:
            functions.setdefault(int(match.group(1)), {})[match.group(2)] = value
    tools = []
    for index in sorted(functions):
        function = dict(functions[index])
        if "parameters" in function:
            function["parameters"] = _json(function["parameters"], where, "parameters")
        tools.append({"type": "function", "function": function})
    return tools


def _is_model_span(span: dict[str, Any]) -> bool:
    attributes = span["attributes"]
    return (
        attributes.get("gen_ai.operation.name") in _MODEL_OPERATIONS
        or attributes.get("llm.request.type") == "chat"
        or "gen_ai.input.messages" in attributes
        or "gen_ai.prompt.0.role" in attributes
    )


def _is_tool_span(span: dict[str, Any]) -> bool:
    attributes = span["attributes"]
    return (
        attributes.get("gen_ai.operation.name") == "execute_tool"
        or attributes.get("traceloop.span.kind") == "tool"
    )


def _tool_result(span: dict[str, Any]) -> Message:
    attributes = span["attributes"]
    result = attributes.get("gen_ai.tool.call.result", attributes.get("traceloop.entity.output"))
    message: Message = {
        "role": "tool",
        "name": attributes.get("gen_ai.tool.name") or attributes.get("traceloop.entity.name"),
        "content": _text(result) if result is not None else (span["error"] or ""),
    }
    if attributes.get("gen_ai.tool.call.id"):
        message["tool_call_id"] = attributes["gen_ai.tool.call.id"]
    if span["error"]:
        message["status"] = "error"
    return message


def _ancestors(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    seen = {span["span_id"]}
    parent = by_id.get(span["parent_id"] or "")
    while parent is not None and parent["span_id"] not in seen:
        seen.add(parent["span_id"])
        yield parent
        parent = by_id.get(parent["parent_id"] or "")


def _node(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str | None:
    for attributes in (span["attributes"], *(a["attributes"] for a in _ancestors(span, by_id))):
        for key in ("traceloop.association.properties.langgraph_node", "langgraph.node"):
            if attributes.get(key):
                return str(attributes[key])
    for ancestor in _ancestors(span, by_id):
        attributes = ancestor["attributes"]
        if attributes.get("traceloop.span.kind") == "task" and attributes.get(
            "traceloop.entity.name"
        ):
            return str(attributes["traceloop.entity.name"])
        if attributes.get("gen_ai.operation.name") == "invoke_agent" and attributes.get(
            "gen_ai.agent.name"
        ):
            return str(attributes["gen_ai.agent.name"])
    return None


class OpenTelemetrySpans:
    """GenAI spans, grouped into traces and conversations (see the module docstring)."""

    name = "otel"
    description = "OpenTelemetry GenAI spans as JSON (OTLP/JSON export or SDK span JSON)"

    def items(
        self, value: Any, location: str, context: FormatContext
    ) -> Iterator[tuple[str | None, str, Any]]:
        if not isinstance(value, dict):
            raise RecordError(location, "not an object", f"got {type(value).__name__}")
        if "resourceSpans" not in value:
            span = _span(value, location)
            yield span["trace_id"], location, span
            return
        number = 0
        for resource in value.get("resourceSpans") or []:
            for scope in (
                resource.get("scopeSpans") or resource.get("instrumentationLibrarySpans") or []
            ):
                for raw in scope.get("spans") or []:
                    where = f"{location} span {number}"
                    number += 1
                    try:
                        span = _span(raw, where)
                    except RecordError as error:
                        context.report.problem(error.problem)
                        continue
                    yield span["trace_id"], where, span

    def segment(
        self, key: str | None, entries: list[tuple[str, Any]], context: FormatContext
    ) -> Segment:
        spans = sorted((span for _, span in entries), key=lambda span: span["start"])
        where_of = {span["span_id"]: where for where, span in entries}
        by_id = {span["span_id"]: span for span in spans}
        root = next((s for s in spans if s["parent_id"] not in by_id), spans[0])
        segment = Segment(key=str(key), location=where_of[root["span_id"]], calls=[])
        for span in spans:
            where = f"{where_of[span['span_id']]} ({span['name']})"
            if _is_model_span(span):
                if any(_is_model_span(a) for a in _ancestors(span, by_id)):
                    context.report.ignore("model spans inside model spans")
                    continue
                segment.calls += self._call(span, by_id, where, context)
            elif _is_tool_span(span) and segment.calls:
                segment.calls[-1].after.append(normalize_message(_tool_result(span), where))
        segment.error = root["error"]
        segment.start = root["start"] / 1e9
        attributes = [root["attributes"], *(s["attributes"] for s in spans if s is not root)]
        thread = find_first(attributes, context.threads(THREAD_KEYS))
        segment.thread = str(thread) if thread is not None else None
        if context.outcome:
            events = [e["attributes"] for s in spans for e in s["events"]]
            segment.outcome = context.outcome.found([*attributes, *events])
        return segment

    def _call(
        self,
        span: dict[str, Any],
        by_id: dict[str, dict[str, Any]],
        where: str,
        context: FormatContext,
    ) -> list[Call]:
        messages = _context(span, where)
        action = _action(span, where)
        if action is None and span["error"]:
            context.report.failed_calls += 1
            return []
        if messages is None or action is None:
            raise RecordError(
                where,
                "model span without content",
                "no input/output messages: was message content capture on "
                "(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)?",
            )
        if action["role"] != "assistant":
            raise RecordError(where, "bad message", "the model output is not an assistant message")
        attributes = span["attributes"]
        return [
            Call(
                messages=messages,
                tools=_tools(attributes, where),
                action=action,
                node=_node(span, by_id),
                model=attributes.get("gen_ai.response.model")
                or attributes.get("gen_ai.request.model"),
            )
        ]
