"""A tool-calling agent written the way a user writes one: a plain LangGraph StateGraph.

Nothing here knows about HERO: traces are captured from the outside by a callback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode


class AgentState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: int


def build_tool_agent(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    *,
    system_prompt: str | None = None,
    max_turns: int = 10,
) -> CompiledStateGraph:
    """Policy node → tool node → policy node ..., until the policy answers without a tool call,
    calls a tool marked ``return_direct`` (its result ends the episode, as in LangGraph's
    prebuilt agent; such a call runs even on the last turn), or has acted `max_turns` times."""
    if max_turns < 1:
        raise ValueError(f"max_turns must be at least 1, got {max_turns}")
    bound = model.bind_tools(list(tools)) if tools else model
    final_tools = {tool.name for tool in tools if tool.return_direct}

    def agent(state: AgentState) -> AgentState:
        messages = list(state["messages"])
        if system_prompt:
            messages = [SystemMessage(system_prompt), *messages]
        return {"messages": [bound.invoke(messages)], "turns": state.get("turns", 0) + 1}

    def route(state: AgentState) -> Literal["tools", "__end__"]:
        last = state["messages"][-1]
        if not (isinstance(last, AIMessage) and last.tool_calls):
            return END
        if state.get("turns", 0) < max_turns:
            return "tools"
        # Out of turns: only a call that ends the episode itself still runs.
        ends = all(call["name"] in final_tools for call in last.tool_calls)
        return "tools" if final_tools and ends else END

    def after_tools(state: AgentState) -> Literal["agent", "__end__"]:
        results = []
        for message in reversed(state["messages"]):
            if not isinstance(message, ToolMessage):
                break
            results.append(message)
        return END if any(r.name in final_tools for r in results) else "agent"

    builder = StateGraph(AgentState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(list(tools), handle_tool_errors=True))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route)
    if final_tools:
        builder.add_conditional_edges("tools", after_tools)
    else:
        builder.add_edge("tools", "agent")
    return builder.compile()


def termination_reason(state: AgentState) -> str:
    """'max_turns' when the policy still wanted a tool when its turns ran out, else 'stop'
    (it answered without a tool call, or a ``return_direct`` tool ended the episode)."""
    last = state["messages"][-1] if state.get("messages") else None
    if isinstance(last, AIMessage) and last.tool_calls:
        return "max_turns"
    return "stop"
