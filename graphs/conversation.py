"""A conversation between a tool-calling agent and a simulated user, as a plain StateGraph.

Three nodes: ``agent`` (the policy), ``tools`` (its tool calls) and ``user`` (another chat model
playing the customer). The agent's text replies go to the user; its tool calls go to the tools
and back to the agent; the user's replies go to the agent. The user ends the conversation by
writing one of its stop signals (e.g. tau2-bench's ``###STOP###``).

The state holds the conversation as the agent sees it: the user's turns are `HumanMessage`s.
The user model sees it the other way round (`user_view`): its own turns as assistant messages,
the agent's text replies as user messages, and neither the agent's tool calls nor their results.

Nothing here knows about HERO: traces are captured from the outside by a callback (record the
``agent`` node only, so the user's replies are observations, not turns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode

AGENT_NODE = "agent"
TOOLS_NODE = "tools"
USER_NODE = "user"


class ConversationState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: int
    """Agent (policy) calls so far."""
    stop_signal: str | None
    """The stop signal the user ended the conversation with, if it did."""


def user_view(messages: Sequence[BaseMessage], system_prompt: str) -> list[BaseMessage]:
    """The conversation as the simulated user sees it: its prompt, its own turns as assistant
    messages and the agent's text replies as user messages; tool traffic is left out."""
    view: list[BaseMessage] = [SystemMessage(system_prompt)]
    for message in messages:
        if isinstance(message, HumanMessage):
            view.append(AIMessage(message.text))
        elif isinstance(message, AIMessage) and not message.tool_calls:
            view.append(HumanMessage(message.text))
        elif not isinstance(message, (AIMessage, ToolMessage, SystemMessage)):
            raise ValueError(f"unexpected {type(message).__name__} in a conversation")
    return view


def build_conversation_graph(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    user_model: BaseChatModel,
    *,
    user_system_prompt: str,
    stop_signals: Sequence[str],
    system_prompt: str | None = None,
    max_turns: int = 10,
) -> CompiledStateGraph:
    """Agent ⇄ tools, agent ⇄ user, until the user writes a stop signal or the agent has acted
    `max_turns` times (the user still answers the agent's last text reply).

    The conversation starts where its messages leave off: with the user after an agent message
    (e.g. a greeting), with the agent after a user message or a tool result.
    """
    if max_turns < 1:
        raise ValueError(f"max_turns must be at least 1, got {max_turns}")
    if not stop_signals:
        raise ValueError("a simulated user needs at least one stop signal to end a conversation")
    bound = model.bind_tools(list(tools)) if tools else model

    def agent(state: ConversationState) -> ConversationState:
        messages = list(state["messages"])
        if system_prompt:
            messages = [SystemMessage(system_prompt), *messages]
        return {"messages": [bound.invoke(messages)], "turns": state.get("turns", 0) + 1}

    def user(state: ConversationState) -> ConversationState:
        reply = user_model.invoke(user_view(state["messages"], user_system_prompt))
        text = reply.text.strip()
        if not text:
            raise ValueError("the user model returned an empty reply")
        signal = next((s for s in stop_signals if s in text), None)
        return {"messages": [HumanMessage(text)], "stop_signal": signal}

    def start(state: ConversationState) -> Literal["agent", "tools", "user"]:
        last = state["messages"][-1] if state.get("messages") else None
        if isinstance(last, AIMessage):
            return TOOLS_NODE if last.tool_calls else USER_NODE
        if isinstance(last, (HumanMessage, ToolMessage)):
            return AGENT_NODE
        raise ValueError("a conversation starts from at least one user, agent or tool message")

    def after_agent(state: ConversationState) -> Literal["tools", "user", "__end__"]:
        last = state["messages"][-1]
        if isinstance(last, AIMessage) and last.tool_calls:
            return TOOLS_NODE if state.get("turns", 0) < max_turns else END
        return USER_NODE

    def after_user(state: ConversationState) -> Literal["agent", "__end__"]:
        if state.get("stop_signal") or state.get("turns", 0) >= max_turns:
            return END
        return AGENT_NODE

    builder = StateGraph(ConversationState)
    builder.add_node(AGENT_NODE, agent)
    builder.add_node(TOOLS_NODE, ToolNode(list(tools), handle_tool_errors=True))
    builder.add_node(USER_NODE, user)
    builder.add_conditional_edges(START, start)
    builder.add_conditional_edges(AGENT_NODE, after_agent)
    builder.add_edge(TOOLS_NODE, AGENT_NODE)
    builder.add_conditional_edges(USER_NODE, after_user)
    return builder.compile()


def conversation_termination(state: ConversationState) -> Literal["user_stop", "max_turns"]:
    """'user_stop' when the user ended the conversation with a stop signal, else 'max_turns'."""
    return "user_stop" if state.get("stop_signal") else "max_turns"
