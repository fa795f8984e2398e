"""LangGraph agents that know nothing of HERO, importable as `hero_agents.graphs`."""

from hero_agents.graphs.conversation import (
    ConversationState,
    build_conversation_graph,
    conversation_termination,
    user_view,
)
from hero_agents.graphs.tool_agent import AgentState, build_tool_agent, termination_reason

__all__ = [
    "AgentState",
    "ConversationState",
    "build_conversation_graph",
    "build_tool_agent",
    "conversation_termination",
    "termination_reason",
    "user_view",
]
