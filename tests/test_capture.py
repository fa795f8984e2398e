"""TraceRecorder captures real LangGraph graphs, unchanged, as trajectories."""

from __future__ import annotations

import asyncio
import threading

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent

import hero_agents
from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.capture import TASK_ID_KEY, TraceRecorder, new_run_id
from hero_agents.graphs import build_tool_agent
from hero_agents.trajectory import RESPONSE_METADATA_KEY, Trajectory


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def lookup(key: str) -> str:
    """Look a key up; fails for unknown keys."""
    table = {"alpha": "1", "beta": "2"}
    if key not in table:
        raise ValueError(f"unknown key {key!r}")
    return table[key]


def call(name: str, call_id: str, **args: object) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


def test_prebuilt_react_agent_is_captured_turn_by_turn() -> None:
    model = ScriptedChatModel(
        responses=[call("add", "c1", a=2, b=3), call("add", "c2", a=5, b=1), AIMessage("6")]
    )
    graph = create_react_agent(model, [add], prompt="You add numbers.")
    recorder = TraceRecorder()
    graph.invoke({"messages": [HumanMessage("2+3+1?")]}, config={"callbacks": [recorder]})

    [trajectory] = recorder.trajectories
    assert len(trajectory.turns) == 3
    first, second, last = trajectory.turns
    assert first.messages == [
        {"role": "system", "content": "You add numbers."},
        {"role": "user", "content": "2+3+1?"},
    ]
    assert [t["function"]["name"] for t in first.tools] == ["add"]
    assert first.action["tool_calls"][0]["function"]["name"] == "add"
    assert first.observation == [
        {"role": "tool", "name": "add", "tool_call_id": "c1", "content": "5"}
    ]
    assert first.node == "agent"
    # The next turn saw the whole history: context is append-only.
    assert second.messages[: len(first.messages) + 1] == [*first.messages, first.action]
    assert second.observation[0]["content"] == "6"
    assert last.action == {"role": "assistant", "content": "6"}
    assert last.observation == []


def test_hand_written_state_graph_is_captured() -> None:
    model = ScriptedChatModel(responses=[call("add", "c1", a=1, b=1), AIMessage("2")])
    graph = build_tool_agent(model, [add], system_prompt="Be brief.", max_turns=4)
    graph, recorder = hero_agents.wrap(graph)
    graph.invoke({"messages": [HumanMessage("1+1?")]})

    [trajectory] = recorder.trajectories
    assert [turn.node for turn in trajectory.turns] == ["agent", "agent"]
    assert trajectory.turns[0].messages[0] == {"role": "system", "content": "Be brief."}
    assert trajectory.turns[0].observation[0]["content"] == "2"
    assert trajectory.turns[1].action["content"] == "2"


def test_tool_errors_are_observations() -> None:
    model = ScriptedChatModel(
        responses=[
            call("lookup", "c1", key="gamma"),
            call("lookup", "c2", key="alpha"),
            AIMessage("1"),
        ]
    )
    graph = build_tool_agent(model, [lookup])
    recorder = TraceRecorder()
    graph.invoke({"messages": [HumanMessage("gamma?")]}, config={"callbacks": [recorder]})

    [trajectory] = recorder.trajectories
    failed = trajectory.turns[0].observation[0]
    assert failed["status"] == "error" and "unknown key 'gamma'" in failed["content"]
    assert trajectory.turns[0].tool_errors == 1
    assert trajectory.turns[1].observation[0]["content"] == "1"
    assert trajectory.tool_errors == 1


def test_invalid_tool_arguments_are_captured_as_errors() -> None:
    model = ScriptedChatModel(responses=[call("add", "c1", a=1, b="x"), AIMessage("sorry")])
    graph = create_react_agent(model, [add])
    recorder = TraceRecorder()
    graph.invoke({"messages": [HumanMessage("1+x")]}, config={"callbacks": [recorder]})
    observation = recorder.trajectories[0].turns[0].observation
    assert observation[0]["status"] == "error"


def test_concurrent_threads_keep_runs_apart() -> None:
    recorder = TraceRecorder()
    barrier = threading.Barrier(2)

    class Waiting(ScriptedChatModel):
        def _generate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            barrier.wait(timeout=10)  # force the two runs to interleave
            return super()._generate(*args, **kwargs)

    def run(label: str, a: int) -> None:
        model = Waiting(responses=[call("add", f"{label}1", a=a, b=a), AIMessage(label)])
        graph = build_tool_agent(model, [add])
        graph.invoke(
            {"messages": [HumanMessage(label)]},
            config={"callbacks": [recorder], "metadata": {TASK_ID_KEY: label}},
        )

    threads = [threading.Thread(target=run, args=(label, a)) for label, a in [("x", 1), ("y", 7)]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    by_task = {t.task_id: t for t in recorder.trajectories}
    assert set(by_task) == {"x", "y"}
    for label, total in [("x", "2"), ("y", "14")]:
        trajectory = by_task[label]
        assert trajectory.turns[0].messages == [{"role": "user", "content": label}]
        assert trajectory.turns[0].observation[0]["content"] == total
        assert trajectory.turns[1].action["content"] == label


async def test_concurrent_async_runs_keep_runs_apart() -> None:
    recorder = TraceRecorder()

    async def run(label: str, a: int) -> Trajectory:
        model = ScriptedChatModel(responses=[call("add", f"{label}1", a=a, b=1), AIMessage(label)])
        graph = build_tool_agent(model, [add])
        run_id = new_run_id()
        await graph.ainvoke(
            {"messages": [HumanMessage(label)]},
            config={"callbacks": [recorder], "run_id": run_id},
        )
        return recorder.take(run_id)

    results = await asyncio.gather(*(run(label, a) for label, a in [("p", 1), ("q", 2), ("r", 3)]))
    for trajectory, (label, total) in zip(
        results, [("p", "2"), ("q", "3"), ("r", "4")], strict=True
    ):
        assert trajectory.turns[0].messages == [{"role": "user", "content": label}]
        assert trajectory.turns[0].observation[0]["content"] == total
    assert recorder.trajectories == []


def test_node_filter_and_token_metadata() -> None:
    trace = {
        "completion_token_ids": [5, 6],
        "completion_logprobs": [-0.1, -0.2],
        "policy_version": "v3",
    }
    model = ScriptedChatModel(
        responses=[AIMessage("ok", response_metadata={RESPONSE_METADATA_KEY: trace})]
    )
    graph = build_tool_agent(model, [add])
    recorder = TraceRecorder(nodes={"agent"})
    graph.invoke({"messages": [HumanMessage("hi")]}, config={"callbacks": [recorder]})
    [turn] = recorder.trajectories[0].turns
    assert turn.tokens is not None and turn.tokens.completion_token_ids == [5, 6]
    assert turn.policy_version == "v3"

    ignoring = TraceRecorder(nodes={"planner"})
    graph.invoke({"messages": [HumanMessage("hi")]}, config={"callbacks": [ignoring]})
    assert ignoring.trajectories[0].turns == []


def test_non_append_history_falls_back_to_tool_events() -> None:
    """A node that shows the model only the latest message: observations come from callbacks."""
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    model = ScriptedChatModel(responses=[call("add", "c1", a=3, b=4), AIMessage("7")])
    bound = model.bind_tools([add])

    def agent(state: MessagesState) -> dict:
        return {"messages": [bound.invoke(state["messages"][-1:])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([add]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    builder.add_edge("tools", "agent")
    recorder = TraceRecorder()
    builder.compile().invoke({"messages": [HumanMessage("3+4")]}, config={"callbacks": [recorder]})

    first, second = recorder.trajectories[0].turns
    assert second.messages == [
        {"role": "tool", "name": "add", "tool_call_id": "c1", "content": "7"}
    ]
    assert first.observation == second.messages
