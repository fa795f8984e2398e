"""Sample production logs of a support agent, in each format's real schema, for the example,
the benchmark and the tests.

`sample_conversations` makes deterministic conversations of a LangGraph ReAct-style agent
(node ``agent`` calls the model, node ``tools`` runs ``find_user``, ``get_order`` and
``cancel_order``) with personal data in them (names, e-mail addresses, phone and card
numbers), tool errors, follow-up questions in a second trace of the same thread, and outcome
labels (a thumbs-up score and a resolved flag). `write_samples` writes them as

- ``openai``: fine-tuning conversations (``style="conversations"``) or logged requests with
  responses and a thread id (``style="requests"``; the follow-up request sends a summary
  instead of the whole history, as a summarizing agent does);
- ``langsmith``: the runs LangChain's tracer records for such a graph (root ``LangGraph`` chain,
  node chains, ``llm`` runs with serialized messages, ``tool`` runs), runs of concurrent traces
  interleaved;
- ``otel``: OTLP/JSON export requests of GenAI spans (``invoke_agent``, ``chat`` with
  ``gen_ai.input.messages``/``gen_ai.output.messages``, ``execute_tool``), each trace split
  over two requests written apart, as a batching exporter does.

``broken=N`` adds N records that an import must report and skip: a torn line, a record of no
known shape, and a record the format's parser cannot read.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from hero_agents.trajectory import Message

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {key: {"type": "string"} for key in keys},
                "required": list(keys),
            },
        },
    }
    for name, description, keys in [
        ("find_user", "Find a customer by e-mail address.", ("email",)),
        ("get_order", "Look up an order by its id, e.g. 'W2378156'.", ("order_id",)),
        ("cancel_order", "Cancel a pending order.", ("order_id", "reason")),
    ]
]
SYSTEM = (
    "You are the support agent of Acme Shop. Identify the customer with find_user before "
    "touching an order. Order ids look like W2378156 (no '#'). Only pending orders can be "
    "cancelled; delivered ones cannot."
)
_NAMES = ("Jane Roe", "Ali Khan", "Mei Lin", "Tom Berg", "Ana Silva", "Omar Haddad", "Eva Novak")
_MODEL = "gpt-4o-mini"


@dataclass
class Step:
    """One model call: the action and the tool results that came back."""

    action: Message
    results: list[Message]


@dataclass
class Exchange:
    """One trace: a user message and the agent's calls until it answered."""

    user: Message
    steps: list[Step]


@dataclass
class SampleConversation:
    """One thread of the sample agent, with its outcome labels."""

    thread: str
    exchanges: list[Exchange]
    resolved: bool
    score: float
    start: float


def _tool_step(call_id: str, name: str, arguments: dict[str, Any], result: Any) -> Step:
    """An action that calls one tool, and its result (a string result starting with 'Error'
    is a tool error)."""
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    message: Message = {
        "role": "tool",
        "tool_call_id": call_id,
        "name": name,
        "content": result if isinstance(result, str) else json.dumps(result),
    }
    if isinstance(result, str) and result.startswith("Error"):
        message["status"] = "error"
    return Step({"role": "assistant", "content": "", "tool_calls": [call]}, [message])


def _answer(text: str) -> Step:
    return Step({"role": "assistant", "content": text}, [])


def _conversation(rng: random.Random, number: int) -> SampleConversation:
    name = rng.choice(_NAMES)
    first, last = name.lower().split()
    email = f"{first}.{last}{rng.randint(1, 99)}@example.com"
    phone = f"+1 (555) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
    order = f"W{rng.randint(1000000, 9999999)}"
    user_id = f"u_{number}"
    pending = rng.random() < 0.6
    sloppy = rng.random() < 0.3  # the agent passes '#W...' first and gets a tool error
    card = " I paid with card 4111 1111 1111 1111." if rng.random() < 0.25 else ""
    text = f"Hi, I'm {name} ({email}, {phone}). Please cancel my order #{order}.{card}"
    c = f"call_{number}_"
    steps = [
        _tool_step(c + "1", "find_user", {"email": email}, {"user_id": user_id, "email": email})
    ]
    if sloppy:
        error = f"Error: no order '#{order}'"
        steps.append(_tool_step(c + "2", "get_order", {"order_id": f"#{order}"}, error))
    status = "pending" if pending else "delivered"
    found = {"order_id": order, "status": status, "user_id": user_id}
    steps.append(_tool_step(c + "3", "get_order", {"order_id": order}, found))
    if pending:
        arguments = {"order_id": order, "reason": "customer request"}
        cancelled = {"order_id": order, "status": "cancelled"}
        steps.append(_tool_step(c + "4", "cancel_order", arguments, cancelled))
        steps.append(_answer(f"Done, {name.split()[0]}: order {order} is cancelled."))
    else:
        steps.append(_answer(f"Sorry, order {order} was delivered, so it cannot be cancelled."))
    exchanges = [Exchange({"role": "user", "content": text}, steps)]
    if rng.random() < 0.3:  # a follow-up in the same thread: a new trace
        follow = f"Thanks. Will the refund go to the card? Mail {email} if so."
        answer = _answer("Yes, refunds go back to the card used.")
        exchanges.append(Exchange({"role": "user", "content": follow}, [answer]))
    return SampleConversation(
        thread=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        exchanges=exchanges,
        resolved=pending,
        score=1.0 if pending and not sloppy else 0.0,
        start=1_767_225_600.0 + number * 60.0,  # from 2026-01-01, a minute apart
    )


def sample_conversations(count: int, *, seed: int = 0) -> Iterator[SampleConversation]:
    """`count` deterministic conversations of the sample support agent."""
    rng = random.Random(seed)
    for number in range(count):
        yield _conversation(rng, number)


def _contexts(conversation: SampleConversation) -> Iterator[tuple[int, list[Message], Step]]:
    """(exchange index, context the model saw, step) for every model call, append-only."""
    history: list[Message] = [{"role": "system", "content": SYSTEM}]
    for index, exchange in enumerate(conversation.exchanges):
        history.append(exchange.user)
        for step in exchange.steps:
            yield index, list(history), step
            history += [step.action, *step.results]


# -- openai ----------------------------------------------------------------------------------------


def _openai_lines(conversation: SampleConversation, style: str) -> Iterator[dict[str, Any]]:
    labels = {
        "resolved": conversation.resolved,
        "feedback": "thumbs_up" if conversation.score else "thumbs_down",
    }
    if style == "conversations":
        messages: list[Message] = [{"role": "system", "content": SYSTEM}]
        for exchange in conversation.exchanges:
            messages.append(exchange.user)
            for step in exchange.steps:
                messages += [step.action, *step.results]
        yield {
            "messages": messages,
            "tools": TOOLS,
            "metadata": {"conversation_id": conversation.thread, **labels},
        }
        return
    created = int(conversation.start)
    for position, (index, context, step) in enumerate(_contexts(conversation)):
        if index > 0:  # the follow-up: a summarizing agent sends a summary, not the history
            summary = "Summary so far: the customer asked to cancel an order; it was handled."
            context = [
                {"role": "system", "content": SYSTEM},
                {"role": "system", "content": summary},
                context[-1],
            ]
        yield {
            "request": {"model": _MODEL, "messages": context, "tools": TOOLS},
            "response": {
                "id": f"chatcmpl-{conversation.thread[:8]}-{position}",
                "object": "chat.completion",
                "created": created + position,
                "model": _MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": step.action,
                        "finish_reason": "tool_calls" if step.action.get("tool_calls") else "stop",
                    }
                ],
            },
            "metadata": {"thread_id": conversation.thread, **labels},
        }


# -- langsmith -------------------------------------------------------------------------------------

_LC_CLASS = {
    "system": "SystemMessage",
    "user": "HumanMessage",
    "assistant": "AIMessage",
    "tool": "ToolMessage",
}
_LC_TYPE = {"system": "system", "user": "human", "assistant": "ai", "tool": "tool"}


def _lc_fields(message: Message, message_id: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "content": message["content"],
        "type": _LC_TYPE[message["role"]],
        "id": message_id,
    }
    if message["role"] == "assistant":
        fields["tool_calls"] = [
            {
                "name": call["function"]["name"],
                "args": json.loads(call["function"]["arguments"]),
                "id": call["id"],
                "type": "tool_call",
            }
            for call in message.get("tool_calls") or []
        ]
        fields["invalid_tool_calls"] = []
    if message["role"] == "tool":
        fields.update(name=message["name"], tool_call_id=message["tool_call_id"])
        if message.get("status") == "error":
            fields["status"] = "error"
    return fields


def _dumpd(message: Message, message_id: str) -> dict[str, Any]:
    """A message as LangChain's ``dumpd`` serializes it (what the tracer puts in llm runs)."""
    return {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "schema", "messages", _LC_CLASS[message["role"]]],
        "kwargs": _lc_fields(message, message_id),
    }


def _dumped(message: Message, message_id: str) -> dict[str, Any]:
    """A message model as LangSmith's JSON encoder writes graph state (root run outputs)."""
    return {
        "additional_kwargs": {},
        "response_metadata": {},
        "name": None,
        **_lc_fields(message, message_id),
    }


class _Runs:
    """The runs of one trace, as LangChain's tracer records them (ids, times, dotted order)."""

    def __init__(self, rng: random.Random, start: float) -> None:
        self.rng = rng
        self.now = start
        self.runs: list[dict[str, Any]] = []

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(
        self,
        name: str,
        run_type: str,
        parent: dict[str, Any] | None,
        metadata: dict[str, Any],
        inputs: dict[str, Any],
        outputs: dict[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        self.now += 0.01
        run_id = self.new_id()
        started = datetime.fromtimestamp(self.now, tz=UTC)
        stamp = started.strftime("%Y%m%dT%H%M%S%fZ") + run_id
        iso = started.isoformat().replace("+00:00", "Z")
        run = {
            "id": run_id,
            "name": name,
            "start_time": iso,
            "end_time": iso,
            "run_type": run_type,
            "extra": {"metadata": metadata, "runtime": {"sdk": "langsmith-py"}},
            "error": None,
            "serialized": None,
            "events": [{"name": "start", "time": iso}],
            "inputs": inputs,
            "outputs": outputs,
            "reference_example_id": None,
            "parent_run_id": parent["id"] if parent else None,
            "tags": [],
            "attachments": {},
            "session_id": "9b8c1f9e-3f4f-4c7e-9a57-1d2f3a4b5c6d",
            "child_run_ids": None,
            "child_runs": None,
            "feedback_stats": None,
            "app_path": None,
            "manifest_id": None,
            "status": "success",
            "prompt_tokens": None,
            "completion_tokens": None,
            "total_tokens": None,
            "first_token_time": None,
            "total_cost": None,
            "prompt_cost": None,
            "completion_cost": None,
            "parent_run_ids": [parent["id"]] if parent else [],
            "trace_id": parent["trace_id"] if parent else run_id,
            "dotted_order": f"{parent['dotted_order']}.{stamp}" if parent else stamp,
            "in_dataset": False,
            **fields,
        }
        if run["error"]:
            run["status"] = "error"
        self.runs.append(run)
        return run


def _langsmith_traces(
    conversation: SampleConversation, rng: random.Random
) -> Iterator[list[dict[str, Any]]]:
    """The runs of each trace (exchange) of `conversation`."""
    now = conversation.start
    message_ids: dict[int, str] = {}
    calls = list(_contexts(conversation))
    state: list[Message] = []
    for index, exchange in enumerate(conversation.exchanges):
        trace = _Runs(rng, now)

        def message_id(message: Message, trace: _Runs = trace) -> str:
            return message_ids.setdefault(id(message), trace.new_id())

        base = {"thread_id": conversation.thread}
        first = {"messages": [["user", exchange.user["content"]]]}
        root = trace.add("LangGraph", "chain", None, base, first)
        state.append(exchange.user)
        for step_number, (_, context, step) in enumerate(c for c in calls if c[0] == index):
            meta = {**base, "langgraph_step": 2 * step_number + 1, "langgraph_node": "agent"}
            node_inputs = {"messages": [_dumped(m, message_id(m)) for m in context[1:]]}
            node = trace.add("agent", "chain", root, meta, node_inputs, {})
            finish = "tool_calls" if step.action.get("tool_calls") else "stop"
            generation = {
                "text": step.action["content"],
                "generation_info": {"finish_reason": finish, "model_name": _MODEL},
                "type": "ChatGeneration",
                "message": _dumpd(step.action, message_id(step.action)),
            }
            llm_meta = {**meta, "ls_provider": "openai", "ls_model_name": _MODEL}
            trace.add(
                "ChatOpenAI",
                "llm",
                node,
                llm_meta,
                {"messages": [[_dumpd(m, message_id(m)) for m in context]]},
                {"generations": [[generation]], "llm_output": {"model_name": _MODEL}, "run": None},
                extra={
                    "metadata": llm_meta,
                    "invocation_params": {"model": _MODEL, "_type": "openai-chat", "tools": TOOLS},
                },
            )
            state.append(step.action)
            if not step.results:
                continue
            tools_meta = {**base, "langgraph_step": 2 * step_number + 2, "langgraph_node": "tools"}
            tools = trace.add("tools", "chain", root, tools_meta, {}, {})
            for call, result in zip(step.action["tool_calls"], step.results, strict=True):
                arguments = json.loads(call["function"]["arguments"])
                name = call["function"]["name"]
                if result.get("status") == "error":
                    error = (
                        f"ToolException({result['content']!r})Traceback (most recent call last):"
                    )
                    trace.add(name, "tool", tools, tools_meta, arguments, error=f"{error}\n  ...")
                else:
                    output = {"output": _dumpd(result, message_id(result))}
                    trace.add(name, "tool", tools, tools_meta, arguments, output)
                state.append(result)
        root["outputs"] = {"messages": [_dumped(m, message_ids[id(m)]) for m in state]}
        if index == len(conversation.exchanges) - 1:
            stats = {"n": 1, "avg": conversation.score, "stdev": 0.0, "errors": 0, "values": {}}
            root["feedback_stats"] = {"user_score": stats}
        now = trace.now + 30.0
        yield trace.runs


# -- otel ------------------------------------------------------------------------------------------


def _parts(message: Message) -> dict[str, Any]:
    role = message["role"]
    if role == "tool":
        return {
            "role": "tool",
            "parts": [
                {
                    "type": "tool_call_response",
                    "id": message["tool_call_id"],
                    "response": message["content"],
                }
            ],
        }
    parts: list[dict[str, Any]] = (
        [{"type": "text", "content": message["content"]}] if message["content"] else []
    )
    for call in message.get("tool_calls") or []:
        parts.append(
            {
                "type": "tool_call",
                "id": call["id"],
                "name": call["function"]["name"],
                "arguments": json.loads(call["function"]["arguments"]),
            }
        )
    return {"role": role, "parts": parts}


_INTERNAL, _CLIENT = 1, 3  # OTLP SpanKind values


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


class _Spans:
    """The spans of one trace in OTLP/JSON (hex ids, nanosecond times as strings)."""

    def __init__(self, rng: random.Random, start: float) -> None:
        self.rng = rng
        self.now = start
        self.trace_id = f"{rng.getrandbits(128):032x}"
        self.spans: list[dict[str, Any]] = []

    def add(
        self,
        name: str,
        kind: int,
        parent: str | None,
        attributes: dict[str, Any],
        error: str | None = None,
    ) -> str:
        self.now += 0.01
        span_id = f"{self.rng.getrandbits(64):016x}"
        self.spans.append(
            {
                "traceId": self.trace_id,
                "spanId": span_id,
                "parentSpanId": parent or "",
                "name": name,
                "kind": kind,
                "startTimeUnixNano": str(int(self.now * 1e9)),
                "endTimeUnixNano": str(int((self.now + 0.005) * 1e9)),
                "attributes": [{"key": k, "value": _value(v)} for k, v in attributes.items()],
                "status": {"code": 2, "message": error} if error else {},
            }
        )
        return span_id


def _otlp_request(spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "support-agent"}}
                    ]
                },
                "scopeSpans": [
                    {"scope": {"name": "opentelemetry.instrumentation.langchain"}, "spans": spans}
                ],
            }
        ]
    }


def _otel_traces(
    conversation: SampleConversation, rng: random.Random
) -> Iterator[list[dict[str, Any]]]:
    now = conversation.start
    calls = list(_contexts(conversation))
    definitions = json.dumps([{"type": "function", **tool["function"]} for tool in TOOLS])
    for index in range(len(conversation.exchanges)):
        trace = _Spans(rng, now)
        root_attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support_agent",
            "gen_ai.conversation.id": conversation.thread,
        }
        if index == len(conversation.exchanges) - 1:
            root_attributes["app.resolved"] = conversation.resolved
        root = trace.add("invoke_agent support_agent", _INTERNAL, None, root_attributes)
        for _, context, step in (c for c in calls if c[0] == index):
            finish = "tool_call" if step.action.get("tool_calls") else "stop"
            instructions = [{"type": "text", "content": context[0]["content"]}]
            chat_attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": _MODEL,
                "gen_ai.response.model": _MODEL,
                "gen_ai.conversation.id": conversation.thread,
                "traceloop.association.properties.langgraph_node": "agent",
                "gen_ai.system_instructions": json.dumps(instructions),
                "gen_ai.input.messages": json.dumps([_parts(m) for m in context[1:]]),
                "gen_ai.output.messages": json.dumps(
                    [{**_parts(step.action), "finish_reason": finish}]
                ),
                "gen_ai.tool.definitions": definitions,
            }
            trace.add(f"chat {_MODEL}", _CLIENT, root, chat_attributes)
            for call, result in zip(step.action.get("tool_calls") or [], step.results, strict=True):
                tool_attributes = {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": call["function"]["name"],
                    "gen_ai.tool.call.id": call["id"],
                    "gen_ai.tool.call.arguments": call["function"]["arguments"],
                    "gen_ai.tool.call.result": result["content"],
                }
                error = result["content"] if result.get("status") == "error" else None
                name = f"execute_tool {call['function']['name']}"
                trace.add(name, _INTERNAL, root, tool_attributes, error=error)
        now = trace.now + 30.0
        yield trace.spans


# -- writing ---------------------------------------------------------------------------------------

Format = Literal["openai", "langsmith", "otel"]


def _write(handle: IO[str], record: Any) -> None:
    handle.write(json.dumps(record) + "\n")


def _broken(handle: IO[str], format_name: str, number: int) -> None:
    kind = number % 3
    if kind == 0:
        handle.write('{"messages": [{"role": "user", "content": "a torn li\n')
    elif kind == 1:
        _write(handle, {"event": "heartbeat", "ok": True})
    elif format_name == "openai":
        robot = [{"role": "robot", "content": "beep"}, {"role": "assistant", "content": "x"}]
        _write(handle, {"messages": robot})
    elif format_name == "langsmith":  # an llm run whose input is not a message
        trace = _Runs(random.Random(number), 0.0)
        root = trace.add("LangGraph", "chain", None, {}, {}, {})
        generations = {"generations": [[{"text": "?"}]]}
        trace.add("ChatOpenAI", "llm", root, {}, {"messages": [[{"lc": 1}]]}, generations)
        for run in trace.runs:
            _write(handle, run)
    else:  # a chat span whose messages attribute is not JSON
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.input.messages": "[{not json"}
        trace = _Spans(random.Random(number), 0.0)
        trace.add("chat x", _CLIENT, None, attributes)
        _write(handle, _otlp_request(trace.spans))


def write_samples(
    format_name: Format,
    path: str | Path,
    conversations: int,
    *,
    seed: int = 0,
    broken: int = 0,
    style: Literal["conversations", "requests"] = "conversations",
) -> int:
    """Write `conversations` sample conversations (and `broken` bad records) to `path` as
    JSON Lines in `format_name`; returns the number of traces written (a follow-up question
    is a trace of its own in ``langsmith`` and ``otel``, a request of its own in ``requests``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed + 1)
    traces = 0
    every = max(1, conversations // (broken + 1)) if broken else 0
    broken_written = 0
    with target.open("w", encoding="utf-8") as handle:
        pending: list[dict[str, Any]] = []  # langsmith runs / otel halves waiting to interleave
        for number, conversation in enumerate(sample_conversations(conversations, seed=seed)):
            if broken and broken_written < broken and number % every == every - 1:
                _broken(handle, format_name, broken_written)
                broken_written += 1
            if format_name == "openai":
                for line in _openai_lines(conversation, style):
                    _write(handle, line)
                    traces += 1 if style == "requests" else 0
                traces += 1 if style == "conversations" else 0
            elif format_name == "langsmith":
                for runs in _langsmith_traces(conversation, rng):
                    pending += runs
                    traces += 1
                if len(pending) > 64:  # runs of concurrent traces arrive interleaved
                    rng.shuffle(pending)
                    for run in pending:
                        _write(handle, run)
                    pending = []
            elif format_name == "otel":
                for spans in _otel_traces(conversation, rng):
                    half = len(spans) // 2
                    for request in pending:
                        _write(handle, request)
                    _write(handle, _otlp_request(spans[half:]))
                    pending = [_otlp_request(spans[:half])]  # flushed after the next trace
                    traces += 1
            else:
                raise ValueError(f"unknown format {format_name!r}: openai, langsmith or otel")
        rng.shuffle(pending)
        for record in pending:
            _write(handle, record)
        while broken_written < broken:
            _broken(handle, format_name, broken_written)
            broken_written += 1
    return traces
