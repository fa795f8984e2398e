"""LangSmith run exports recorded by LangChain's own tracer from real LangGraph agents:
turns, observations, nodes, tools, threads, interleaved shards and broken records."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, RemoveMessage, SystemMessage
from langchain_core.tools import ToolException, tool
from langgraph.checkpoint.memory import MemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, create_react_agent, tools_condition
from langsmith_export import capturing_tracer, export_runs, scripted_model, set_feedback
from message_helpers import tool_call_names

from hero_agents.adapters.importers import OutcomeLabels
from hero_agents.trajectory import Trajectory


@tool
def get_order(order_id: str) -> str:
    """Look up an order by its id, e.g. W1001."""
    if order_id.startswith("#"):
        raise ToolException(f"no order {order_id!r}; drop the '#'")
    return json.dumps({"order_id": order_id, "status": "pending"})


@tool
def cancel_order(order_id: str) -> str:
    """Cancel a pending order."""
    return json.dumps({"order_id": order_id, "status": "cancelled"})


get_order.handle_tool_error = True


def call(name: str, call_id: str, **arguments: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": arguments, "id": call_id}])


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Runs of three traces: thread th-1 (a tool error, a retry, an answer, then a follow-up
    question in a second trace) and one trace without a thread."""
    tracer, runs = capturing_tracer()
    model = scripted_model(
        [
            call("get_order", "c1", order_id="#W1001"),
            call("get_order", "c2", order_id="W1001"),
            AIMessage(content="Order W1001 is pending."),
            AIMessage(content="Yes, I can cancel it if you like."),
            AIMessage(content="Hello! How can I help?"),
        ]
    )
    tools = ToolNode([get_order, cancel_order])
    threaded = create_react_agent(model, tools, checkpointer=MemorySaver())
    config = {"callbacks": [tracer], "configurable": {"thread_id": "th-1"}}
    threaded.invoke({"messages": [("user", "Where is my order #W1001?")]}, config)
    first_traces = {str(run.trace_id) for run in runs.values()}
    threaded.invoke({"messages": [("user", "Can it still be cancelled?")]}, config)
    plain = create_react_agent(model, tools)
    plain.invoke({"messages": [("user", "hi")]}, {"callbacks": [tracer]})

    path = tmp_path_factory.mktemp("langsmith") / "runs.jsonl"
    export_runs(runs, path)
    roots = {str(run.id): run for run in runs.values() if run.parent_run_id is None}
    [first] = first_traces
    second = next(
        t for t, r in roots.items() if t != first and r.extra["metadata"].get("thread_id")
    )
    lone = next(t for t, r in roots.items() if not r.extra["metadata"].get("thread_id"))
    set_feedback(path, second, {"user_score": {"n": 1, "avg": 1.0, "stdev": 0, "errors": 0}})
    return {"path": path, "first": first, "second": second, "lone": lone, "runs": len(runs)}


def test_a_thread_becomes_one_trajectory_of_its_model_calls(run_import, export) -> None:
    outcome = OutcomeLabels(fields=("feedback_stats.user_score.avg",))
    trajectories, report = run_import("langsmith", export["path"], outcome=outcome)

    assert set(trajectories) == {"th-1", export["lone"]}
    assert report.records == export["runs"] and report.problem_count == 0
    assert report.ignored["chain runs"] > 0
    thread = trajectories["th-1"]
    assert thread.source == "production" and thread.reward == 1.0
    assert thread.reward_info == {"label": {"field": "feedback_stats.user_score.avg", "value": 1.0}}
    assert thread.metadata["traces"] == [export["first"], export["second"]]
    assert [turn.node for turn in thread.turns] == ["agent"] * 4
    first, retry, answer, follow_up = thread.turns

    assert [m["role"] for m in first.messages] == ["user"]
    assert first.messages[0]["content"] == "Where is my order #W1001?"
    assert [tool["function"]["name"] for tool in first.tools] == ["get_order", "cancel_order"]
    assert tool_call_names(first.action) == ["get_order"]
    assert json.loads(first.action["tool_calls"][0]["function"]["arguments"]) == {
        "order_id": "#W1001"
    }
    [error] = first.observation
    assert error["role"] == "tool" and error["status"] == "error"
    assert error["tool_call_id"] == "c1" and "drop the '#'" in error["content"]

    assert retry.messages == [*first.messages, first.action, error]
    [result] = retry.observation
    assert json.loads(result["content"]) == {"order_id": "W1001", "status": "pending"}
    assert thread.tool_errors == 1 and thread.tool_calls == 2
    assert answer.action == {"role": "assistant", "content": "Order W1001 is pending."}
    assert answer.observation == [{"role": "user", "content": "Can it still be cancelled?"}]
    assert follow_up.messages[-1] == {"role": "user", "content": "Can it still be cancelled?"}
    assert follow_up.observation == []  # the end of the thread

    lone = trajectories[export["lone"]]
    assert len(lone.turns) == 1 and lone.reward is None and "thread" not in lone.metadata
    assert lone.turns[0].action["content"] == "Hello! How can I help?"


def _comparable(trajectory: Trajectory) -> dict[str, Any]:
    data = trajectory.model_dump()
    del data["metadata"]["location"]  # which file and line it was read from
    return data


def test_interleaved_sharded_runs_import_the_same_in_little_memory(
    run_import, export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected, _ = run_import("langsmith", export["path"])
    lines = export["path"].read_text().splitlines()
    random.Random(7).shuffle(lines)  # newest first, other traces in between: any order
    shards = tmp_path / "export"
    shards.mkdir()
    for number in range(3):
        (shards / f"part-{number}.jsonl").write_text("\n".join(lines[number::3]) + "\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    got, report = run_import("langsmith", shards, memory_bytes=2048)  # forces re-splitting
    assert report.problem_count == 0
    assert {k: _comparable(v) for k, v in got.items()} == {
        k: _comparable(v) for k, v in expected.items()
    }
    assert got["th-1"].metadata["location"].startswith(str(shards / "part-"))
    assert not list(scratch.iterdir())  # the spilled partitions are gone


def test_without_threads_each_trace_is_a_trajectory(run_import, export) -> None:
    trajectories, _ = run_import("langsmith", export["path"], threads=False)
    assert set(trajectories) == {export["first"], export["second"], export["lone"]}
    assert len(trajectories[export["first"]].turns) == 3
    # the last turn of a trace reads its observation from the graph's final state
    assert trajectories[export["first"]].turns[-1].observation == []


def test_broken_records_are_reported_with_their_line_and_the_rest_imported(
    run_import, export, tmp_path: Path
) -> None:
    path = tmp_path / "runs.jsonl"
    good = export["path"].read_text().splitlines()
    broken_llm = next(r for r in map(json.loads, good) if r["run_type"] == "llm")
    broken_llm.update(id="00000000-0000-4000-8000-000000000001", trace_id="t-broken")
    broken_llm.update(parent_run_id="00000000-0000-4000-8000-000000000002", dotted_order=None)
    broken_llm["outputs"] = {"generations": [[{"text": "no message here"}]]}
    lines = [
        good[0],
        '{"id": "r1", "run_type": "llm", "trace_id": ',  # torn
        json.dumps({"id": "r2", "run_type": "banana", "trace_id": "t2"}),
        json.dumps({"name": "no id"}),
        json.dumps(broken_llm),
        json.dumps(
            {"id": "r3", "run_type": "llm", "trace_id": "t3", "parent_run_id": "p", "extra": 7}
        ),
        *good[1:],
    ]
    path.write_text("\n".join(lines) + "\n")

    trajectories, report = run_import("langsmith", path)
    assert set(trajectories) == {"th-1", export["lone"]}
    assert dict(report.problems) == {
        "invalid JSON": 1,
        "unknown run type": 1,
        "not a LangSmith run": 1,
        "unreadable llm run": 1,
        "unreadable record": 1,  # a shape no exporter writes: named, not fatal
    }
    assert report.examples["invalid JSON"][0].location == f"{path}:2"
    assert report.examples["unknown run type"][0].location == f"{path}:3 (run r2)"
    assert report.examples["not a LangSmith run"][0].location == f"{path}:4"
    unreadable = report.examples["unreadable llm run"][0]
    assert unreadable.location.startswith(f"{path}:5 (run 00000000-0000-4000-8000-000000000001)")
    assert "no message" in unreadable.message
    odd = report.examples["unreadable record"][0]
    assert odd.location == f"{path}:6" and "AttributeError" in odd.message


def test_a_rewritten_history_keeps_its_own_context_and_tool_results(
    run_import, tmp_path: Path
) -> None:
    """A graph whose summarizer node replaces the history between two policy calls."""
    agent_model = scripted_model(
        [call("get_order", "c9", order_id="W7"), AIMessage("It is pending.")]
    )
    summary_model = scripted_model([AIMessage("The user asked about W7; it was looked up.")])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [agent_model.bind_tools([get_order]).invoke(state["messages"])]}

    def summarize(state: MessagesState) -> dict[str, Any]:
        summary = summary_model.invoke([*state["messages"], ("user", "Summarize.")])
        removed = [RemoveMessage(id=m.id) for m in state["messages"][:-1]]
        return {"messages": [*removed, SystemMessage(f"Summary: {summary.content}")]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([get_order]))
    graph.add_node("summarize", summarize)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "summarize")
    graph.add_edge("summarize", "agent")
    tracer, runs = capturing_tracer()
    graph.compile().invoke({"messages": [("user", "Where is W7?")]}, {"callbacks": [tracer]})
    path = tmp_path / "runs.jsonl"
    export_runs(runs, path)

    everything, report = run_import("langsmith", path)
    [trajectory] = everything.values()
    assert [turn.node for turn in trajectory.turns] == ["agent", "summarize", "agent"]
    assert trajectory.turns[0].observation[0]["tool_call_id"] == "c9"  # the summarizer saw it
    assert report.problem_count == 0

    policy_only, _ = run_import("langsmith", path, nodes=frozenset({"agent"}))
    [trajectory] = policy_only.values()
    assert [turn.node for turn in trajectory.turns] == ["agent", "agent"]
    first, after_summary = trajectory.turns
    # the next policy call saw a summary, not the action: the observation is the tool run's
    [result] = first.observation
    assert result["role"] == "tool" and result["tool_call_id"] == "c9"
    assert json.loads(result["content"])["order_id"] == "W7"
    assert [m["role"] for m in after_summary.messages] == ["tool", "system"]
    assert after_summary.messages[1]["content"].startswith("Summary: The user asked about W7")
