"""LangGraph agents that know nothing of HERO, importable as `hero_agents.graphs`."""

from hero_agents.graphs.tool_agent import AgentState, build_tool_agent, termination_reason

__all__ = ["AgentState", "build_tool_agent", "termination_reason"]
