"""The plain StateGraph tool agent: policy → tools → policy, a turn budget, and a stop."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool

from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.graphs import build_tool_agent, termination_reason


@tool
def echo(text: str) -> str:
    """Echo the text."""
    return text


def call(i: int) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "echo", "args": {"text": f"t{i}"}, "id": f"c{i}"}])


def test_stops_when_the_policy_answers() -> None:
    model = ScriptedChatModel(responses=[call(0), AIMessage("bye")])
    state = build_tool_agent(model, [echo], max_turns=5).invoke({"messages": [HumanMessage("hi")]})
    assert [m.type for m in state["messages"]] == ["human", "ai", "tool", "ai"]
    assert state["turns"] == 2
    assert termination_reason(state) == "stop"


def test_turn_budget_ends_the_episode() -> None:
    model = ScriptedChatModel(responses=[call(i) for i in range(10)])
    state = build_tool_agent(model, [echo], max_turns=3).invoke({"messages": [HumanMessage("hi")]})
    assert state["turns"] == 3
    assert termination_reason(state) == "max_turns"
    assert isinstance(state["messages"][-1], AIMessage)


def test_system_prompt_is_shown_but_not_stored() -> None:
    seen: list[list] = []

    class Spy(ScriptedChatModel):
        def _generate(self, messages, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(messages)
            return super()._generate(messages, *args, **kwargs)

    state = build_tool_agent(
        Spy(responses=[AIMessage("ok")]), [echo], system_prompt="rules"
    ).invoke({"messages": [HumanMessage("hi")]})
    assert isinstance(seen[0][0], SystemMessage) and seen[0][0].content == "rules"
    assert not any(isinstance(m, SystemMessage) for m in state["messages"])


def test_rejects_empty_budget() -> None:
    with pytest.raises(ValueError, match="max_turns must be at least 1"):
        build_tool_agent(ScriptedChatModel(responses=[]), [echo], max_turns=0)


@tool(return_direct=True)
def finish() -> str:
    """End the task."""
    return "finished"


def finish_call(i: int) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": "finish", "args": {}, "id": f"f{i}"}])


def test_a_return_direct_tool_ends_the_episode() -> None:
    model = ScriptedChatModel(responses=[call(0), finish_call(1), AIMessage("never asked")])
    graph = build_tool_agent(model, [echo, finish], max_turns=5)
    state = graph.invoke({"messages": [HumanMessage("hi")]})
    assert [m.type for m in state["messages"]] == ["human", "ai", "tool", "ai", "tool"]
    assert state["messages"][-1].content == "finished"
    assert state["turns"] == 2
    assert termination_reason(state) == "stop"


def test_a_return_direct_call_runs_on_the_last_turn_but_no_other_call_does() -> None:
    ending = build_tool_agent(
        ScriptedChatModel(responses=[call(0), finish_call(1)]), [echo, finish], max_turns=2
    ).invoke({"messages": [HumanMessage("hi")]})
    assert ending["messages"][-1].content == "finished"
    assert termination_reason(ending) == "stop"

    cut = build_tool_agent(
        ScriptedChatModel(responses=[call(0), call(1)]), [echo, finish], max_turns=2
    ).invoke({"messages": [HumanMessage("hi")]})
    assert isinstance(cut["messages"][-1], AIMessage)
    assert termination_reason(cut) == "max_turns"
