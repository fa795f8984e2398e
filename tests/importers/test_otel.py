"""OpenTelemetry GenAI spans recorded with the real SDK, in the current semantic conventions,
OpenLLMetry's flattened attributes and the older span events; as OTLP/JSON and SDK JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from message_helpers import tool_call_names
from otel_export import Recorder, fail, write_otlp_json, write_sdk_json

from hero_agents.adapters.importers import OutcomeLabels

SYSTEM = "You are the support agent of Acme Shop."
DEFINITIONS = [
    {
        "type": "function",
        "name": "find_user",
        "description": "Find a customer by e-mail.",
        "parameters": {"type": "object", "properties": {"email": {"type": "string"}}},
    }
]
USER_1 = {"role": "user", "parts": [{"type": "text", "content": "I'm jo@example.com, help!"}]}
CALL = {
    "role": "assistant",
    "parts": [
        {
            "type": "tool_call",
            "id": "call_1",
            "name": "find_user",
            "arguments": {"email": "jo@example.com"},
        }
    ],
}
RESPONSE = {
    "role": "tool",
    "parts": [{"type": "tool_call_response", "id": "call_1", "response": {"user_id": "u_1"}}],
}
ANSWER = {"role": "assistant", "parts": [{"type": "text", "content": "Found you, u_1."}]}
USER_2 = {"role": "user", "parts": [{"type": "text", "content": "Thanks!"}]}


def chat(recorder: Recorder, inputs: list, output: dict, **extra) -> None:
    with recorder.tracer.start_as_current_span("chat gpt-4o-mini") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        span.set_attribute(
            "gen_ai.system_instructions", json.dumps([{"type": "text", "content": SYSTEM}])
        )
        span.set_attribute("gen_ai.input.messages", json.dumps(inputs))
        span.set_attribute(
            "gen_ai.output.messages", json.dumps([{**output, "finish_reason": "stop"}])
        )
        span.set_attribute("gen_ai.tool.definitions", json.dumps(DEFINITIONS))
        for key, value in extra.items():
            span.set_attribute(key, value)


def semconv_conversation(recorder: Recorder) -> None:
    """Two traces of one conversation, as current GenAI instrumentations record them."""
    with recorder.tracer.start_as_current_span("invoke_agent support_agent") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.name", "support_agent")
        root.set_attribute("gen_ai.conversation.id", "conv-9")
        chat(recorder, [USER_1], CALL)
        with recorder.tracer.start_as_current_span("execute_tool find_user") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "find_user")
            tool.set_attribute("gen_ai.tool.call.id", "call_1")
            tool.set_attribute("gen_ai.tool.call.result", '{"user_id": "u_1"}')
        chat(recorder, [USER_1, CALL, RESPONSE], ANSWER)
    with recorder.tracer.start_as_current_span("invoke_agent support_agent") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.name", "support_agent")
        root.set_attribute("gen_ai.conversation.id", "conv-9")
        root.set_attribute("app.resolved", True)
        chat(
            recorder,
            [USER_1, CALL, RESPONSE, ANSWER, USER_2],
            {"role": "assistant", "parts": [{"type": "text", "content": "Bye."}]},
        )


@pytest.mark.parametrize("writer", [write_otlp_json, write_sdk_json], ids=["otlp-json", "sdk-json"])
def test_semantic_convention_spans_become_a_conversation(
    run_import, tmp_path: Path, writer
) -> None:
    recorder = Recorder()
    semconv_conversation(recorder)
    path = tmp_path / "spans.jsonl"
    writer(recorder.spans, path)

    trajectories, report = run_import("otel", path, outcome=OutcomeLabels(fields=("app.resolved",)))
    assert report.problem_count == 0
    [conversation] = trajectories.values()
    assert conversation.id == "conv-9" and conversation.reward == 1.0
    assert len(conversation.metadata["traces"]) == 2
    assert conversation.metadata["models"] == ["gpt-4o-mini"]
    lookup, answer, bye = conversation.turns
    assert [turn.node for turn in conversation.turns] == ["support_agent"] * 3
    assert lookup.messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "I'm jo@example.com, help!"},
    ]
    assert lookup.tools == [
        {
            "type": "function",
            "function": {
                "name": "find_user",
                "description": "Find a customer by e-mail.",
                "parameters": DEFINITIONS[0]["parameters"],
            },
        }
    ]
    assert tool_call_names(lookup.action) == ["find_user"]
    assert lookup.action["tool_calls"][0]["id"] == "call_1"
    assert json.loads(lookup.action["tool_calls"][0]["function"]["arguments"]) == {
        "email": "jo@example.com"
    }
    assert lookup.observation == [
        {"role": "tool", "tool_call_id": "call_1", "content": '{"user_id": "u_1"}'}
    ]
    assert answer.action == {"role": "assistant", "content": "Found you, u_1."}
    assert answer.observation == [{"role": "user", "content": "Thanks!"}]  # from the next trace
    assert bye.observation == []


def test_openllmetry_attributes_nested_spans_and_task_nodes(run_import, tmp_path: Path) -> None:
    recorder = Recorder()
    tracer = recorder.tracer
    with tracer.start_as_current_span("LangGraph.workflow") as workflow:
        workflow.set_attribute("traceloop.span.kind", "workflow")
        workflow.set_attribute("traceloop.association.properties.thread_id", "th-42")
        with tracer.start_as_current_span("agent.task") as task:
            task.set_attribute("traceloop.span.kind", "task")
            task.set_attribute("traceloop.entity.name", "agent")
            with tracer.start_as_current_span("ChatOpenAI.chat") as llm:
                prompt = {
                    "llm.request.type": "chat",
                    "gen_ai.prompt.0.role": "system",
                    "gen_ai.prompt.0.content": SYSTEM,
                    "gen_ai.prompt.1.role": "user",
                    "gen_ai.prompt.1.content": "Where is W7?",
                    "gen_ai.completion.0.role": "assistant",
                    "gen_ai.completion.0.content": "",
                    "gen_ai.completion.0.finish_reason": "tool_calls",
                    "gen_ai.completion.0.tool_calls.0.id": "call_7",
                    "gen_ai.completion.0.tool_calls.0.name": "get_order",
                    "gen_ai.completion.0.tool_calls.0.arguments": '{"order_id": "W7"}',
                    "llm.request.functions.0.name": "get_order",
                    "llm.request.functions.0.description": "Look up an order.",
                    "llm.request.functions.0.parameters": '{"type": "object", "properties": {}}',
                }
                for key, value in prompt.items():
                    llm.set_attribute(key, value)
                with tracer.start_as_current_span("openai.chat") as inner:  # the SDK's own span
                    for key, value in prompt.items():
                        inner.set_attribute(key, value)
        with tracer.start_as_current_span("get_order.tool") as tool:
            tool.set_attribute("traceloop.span.kind", "tool")
            tool.set_attribute("traceloop.entity.name", "get_order")
            tool.set_attribute("traceloop.entity.output", '{"status": "pending"}')
    path = tmp_path / "spans.jsonl"
    write_otlp_json(recorder.spans, path)

    trajectories, report = run_import("otel", path)
    [trajectory] = trajectories.values()
    assert trajectory.id == "th-42"
    [turn] = trajectory.turns  # the nested openai.chat span is the same call
    assert report.ignored["model spans inside model spans"] == 1
    assert turn.node == "agent"
    assert [m["role"] for m in turn.messages] == ["system", "user"]
    assert tool_call_names(turn.action) == ["get_order"]
    assert turn.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_order",
                "description": "Look up an order.",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    assert turn.observation == [
        {"role": "tool", "name": "get_order", "content": '{"status": "pending"}'}
    ]


def test_older_span_events(run_import, tmp_path: Path) -> None:
    recorder = Recorder()
    with recorder.tracer.start_as_current_span("chat gpt-4") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.add_event("gen_ai.system.message", {"content": SYSTEM})
        span.add_event("gen_ai.user.message", {"content": "Cancel W7."})
        message = {"role": "assistant", "content": "Cancelled."}
        span.add_event(
            "gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": json.dumps(message)}
        )
    path = tmp_path / "spans.jsonl"
    write_sdk_json(recorder.spans, path)

    trajectories, _ = run_import("otel", path)
    [trajectory] = trajectories.values()
    [turn] = trajectory.turns
    assert turn.messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Cancel W7."},
    ]
    assert turn.action == {"role": "assistant", "content": "Cancelled."}


def test_broken_spans_are_reported_and_the_rest_imported(run_import, tmp_path: Path) -> None:
    recorder = Recorder()
    semconv_conversation(recorder)
    with recorder.tracer.start_as_current_span("chat no-content") as span:
        span.set_attribute("gen_ai.operation.name", "chat")  # content capture was off
    with recorder.tracer.start_as_current_span("chat torn") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.input.messages", '[{"role": "user", "parts": [')
        span.set_attribute("gen_ai.output.messages", json.dumps([ANSWER]))
    with recorder.tracer.start_as_current_span("invoke_agent flaky") as root:
        chat(recorder, [USER_1], ANSWER)
        with recorder.tracer.start_as_current_span("chat gpt-4o-mini") as failed:
            failed.set_attribute("gen_ai.operation.name", "chat")
            failed.set_attribute("gen_ai.input.messages", json.dumps([USER_1]))
            fail(failed, "429 Too Many Requests")
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
    path = tmp_path / "spans.jsonl"
    write_sdk_json(recorder.spans, path)
    with path.open("a") as handle:
        handle.write('{"name": "chat", "context": {"trace_id": "0xab\n')
        handle.write(json.dumps({"resource": {"attributes": {}}}) + "\n")

    trajectories, report = run_import("otel", path)
    assert dict(report.problems) == {
        "model span without content": 1,
        "bad GenAI attribute": 1,
        "invalid JSON": 1,
        "not a span": 1,
    }
    lines = path.read_text().splitlines()
    assert report.examples["invalid JSON"][0].location == f"{path}:{len(lines) - 1}"
    assert report.examples["not a span"][0].location == f"{path}:{len(lines)}"
    no_content = report.examples["model span without content"][0]
    assert (
        "(chat no-content)" in no_content.location
        and "CAPTURE_MESSAGE_CONTENT" in no_content.message
    )
    assert "gen_ai.input.messages is not JSON" in report.examples["bad GenAI attribute"][0].message
    assert report.failed_calls == 1  # the 429: no action to learn from, the trace is kept
    assert len(trajectories) == 2
    assert len(trajectories["conv-9"].turns) == 3
    [flaky] = [t for t in trajectories.values() if t.id != "conv-9"]
    assert len(flaky.turns) == 1
