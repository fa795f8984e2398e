"""The agent ⇄ simulated-user conversation graph: routing, the user's view, stop signals, budget."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.tools import tool
from pydantic import Field

from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.capture import TraceRecorder
from hero_agents.graphs import build_conversation_graph, conversation_termination, user_view

STOP = "###STOP###"


@tool
def lookup(order_id: str) -> str:
    """Look an order up."""
    return f"order {order_id}: shipped"


class RecordingUser(ScriptedChatModel):
    """A scripted user that keeps every context it was shown."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)


def call(order_id: str, call_id: str) -> AIMessage:
    return AIMessage(
        "", tool_calls=[{"name": "lookup", "args": {"order_id": order_id}, "id": call_id}]
    )


def graph(agent: list[AIMessage], user: RecordingUser, *, max_turns: int = 10) -> Any:
    return build_conversation_graph(
        ScriptedChatModel(responses=agent),
        [lookup],
        user,
        user_system_prompt="You are a customer. Your order is #1.",
        stop_signals=[STOP, "###TRANSFER###"],
        system_prompt="You are an agent.",
        max_turns=max_turns,
    )


def test_user_opens_after_a_greeting_and_ends_with_a_stop_signal() -> None:
    user = RecordingUser(
        responses=[AIMessage("Where is order #1?"), AIMessage(f"Thanks! {STOP}")], seen=[]
    )
    agent = [call("#1", "c1"), AIMessage("Order #1 has shipped.")]
    state = graph(agent, user).invoke({"messages": [AIMessage("Hi! How can I help you today?")]})

    kinds = [type(m).__name__ for m in state["messages"]]
    assert kinds == [
        "AIMessage",
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
        "HumanMessage",
    ]
    assert state["turns"] == 2 and state["stop_signal"] == STOP
    assert conversation_termination(state) == "user_stop"
    # The user saw its prompt, the greeting and the agent's answer as user messages, its own
    # earlier turn as an assistant message, and none of the tool traffic.
    first, second = user.seen
    assert isinstance(first[0], SystemMessage) and "order is #1" in first[0].content
    assert [(type(m).__name__, m.content) for m in second[1:]] == [
        ("HumanMessage", "Hi! How can I help you today?"),
        ("AIMessage", "Where is order #1?"),
        ("HumanMessage", "Order #1 has shipped."),
    ]


def test_any_stop_signal_ends_the_conversation() -> None:
    user = RecordingUser(
        responses=[AIMessage("I need a human."), AIMessage("ok ###TRANSFER###")], seen=[]
    )
    state = graph([AIMessage("Transferring you.")] * 3, user).invoke(
        {"messages": [AIMessage("Hi!")]}
    )
    assert state["stop_signal"] == "###TRANSFER###" and state["turns"] == 1


def test_turn_budget_ends_the_conversation_after_the_users_last_reply() -> None:
    user = RecordingUser(responses=[AIMessage("hello?")])
    state = graph([AIMessage("Hello.")] * 5, user, max_turns=2).invoke(
        {"messages": [AIMessage("Hi!")]}
    )
    assert state["turns"] == 2
    assert isinstance(state["messages"][-1], HumanMessage)  # the user answered the last reply
    assert conversation_termination(state) == "max_turns"
    # a tool call at the end of the budget is not executed
    tools_state = graph([call("#1", f"c{i}") for i in range(5)], user, max_turns=2).invoke(
        {"messages": [HumanMessage("where is #1?")]}
    )
    assert tools_state["turns"] == 2 and isinstance(tools_state["messages"][-1], AIMessage)
    assert conversation_termination(tools_state) == "max_turns"


def test_conversation_resumes_where_its_messages_leave_off() -> None:
    user = RecordingUser(responses=[AIMessage(STOP)])
    # after a user message: the agent speaks first
    state = graph([AIMessage("Shipped.")], user).invoke(
        {"messages": [HumanMessage("Where is #1?")]}
    )
    assert [type(m).__name__ for m in state["messages"]] == [
        "HumanMessage",
        "AIMessage",
        "HumanMessage",
    ]
    # after an agent tool call: the tools run first
    history = [HumanMessage("Where is #1?"), call("#1", "h1")]
    state = graph([AIMessage("Shipped.")], user).invoke({"messages": history})
    assert isinstance(state["messages"][2], ToolMessage) and state["turns"] == 1
    with pytest.raises(ValueError, match="starts from"):
        graph([], user).invoke({"messages": []})


def test_empty_user_reply_is_an_error_not_a_silent_turn() -> None:
    user = RecordingUser(responses=[AIMessage("   ")])
    with pytest.raises(ValueError, match="empty reply"):
        graph([AIMessage("Hello.")], user).invoke({"messages": [AIMessage("Hi!")]})


def test_recorder_on_the_agent_node_keeps_user_replies_as_observations() -> None:
    user = RecordingUser(
        responses=[AIMessage("Where is order #1?"), AIMessage(f"Thanks {STOP}")], seen=[]
    )
    recorder = TraceRecorder(nodes={"agent"})
    graph([call("#1", "c1"), AIMessage("Shipped.")], user).invoke(
        {"messages": [AIMessage("Hi!")]}, config={"callbacks": [recorder]}
    )
    (trajectory,) = recorder.trajectories
    assert [t.node for t in trajectory.turns] == ["agent", "agent"]
    assert trajectory.turns[0].observation[0]["role"] == "tool"
    assert trajectory.turns[1].observation == [{"role": "user", "content": f"Thanks {STOP}"}]
    assert trajectory.turns[0].messages[0]["role"] == "system"


def test_user_view_rejects_foreign_messages_and_invalid_arguments() -> None:
    from langchain_core.messages import ChatMessage

    with pytest.raises(ValueError, match="ChatMessage"):
        user_view([ChatMessage(role="x", content="?")], "prompt")
    with pytest.raises(ValueError, match="stop signal"):
        build_conversation_graph(
            ScriptedChatModel(responses=[]), [], ScriptedChatModel(responses=[]),
            user_system_prompt="p", stop_signals=[],
        )  # fmt: skip
    with pytest.raises(ValueError, match="max_turns"):
        graph([], RecordingUser(responses=[]), max_turns=0)
