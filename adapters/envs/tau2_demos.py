"""Correct replies of tau2 tasks, from their gold actions (for `hero_agents.demonstrations` and
reference solutions).

A tau2 task's evaluation criteria list the actions a correct agent takes (tool name and
arguments). A correct episode plays them, one tool call per turn, and then answers the user:
with tau2's transfer message after a transfer to a human agent, else a short confirmation that
states every piece of information the task asks the agent to communicate (in solo mode, where
the agent cannot talk to the user, a call to ``done``). Played through the agent graph and scored
by tau2's evaluator, only full-reward episodes become demonstrations.

Tasks without gold actions (e.g. ones checked by env assertions only) have no demonstration.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage
from tau2.agent.llm_agent import LLMSoloAgent
from tau2.data_model.tasks import Task

TRANSFER_TOOL = "transfer_to_human_agents"
TRANSFER_MESSAGE = "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON."
"""What tau2's domain policies tell the agent to say after transferring the user."""

DONE_MESSAGE = "Your request is done."


def final_message(task: Task) -> str:
    """The agent's closing reply once the task's gold actions have run."""
    criteria = task.evaluation_criteria
    actions = (criteria.actions if criteria else None) or []
    if actions and actions[-1].name == TRANSFER_TOOL:
        return TRANSFER_MESSAGE
    info = (criteria.communicate_info if criteria else None) or []
    if info:
        return f"{DONE_MESSAGE} As requested: {'; '.join(info)}."
    return DONE_MESSAGE


def gold_replies(task: Task, *, solo: bool = False) -> list[AIMessage] | None:
    """The agent's replies of a correct episode: one gold tool call per turn, then
    `final_message` (solo: a call to ``done``); None for a task without gold actions."""
    criteria = task.evaluation_criteria
    actions = (criteria.actions if criteria else None) or []
    if not actions:
        return None
    calls = [
        AIMessage(
            content="",
            tool_calls=[{"name": a.name, "args": dict(a.arguments), "id": f"gold_{i}"}],
        )
        for i, a in enumerate(actions)
    ]
    if solo:
        done = {"name": LLMSoloAgent.STOP_FUNCTION_NAME, "args": {}, "id": "gold_done"}
        return [*calls, AIMessage(content="", tool_calls=[done])]
    return [*calls, AIMessage(content=final_message(task))]


def compared_arguments(task: Task) -> dict[int, frozenset[str]]:
    """Per gold reply of `gold_replies` (reply i is gold action i), the only arguments tau2's
    evaluator compares, where the action limits them (``compare_args``, e.g. none of a transfer's
    free-text summary)."""
    criteria = task.evaluation_criteria
    actions = (criteria.actions if criteria else None) or []
    return {
        i: frozenset(a.compare_args) for i, a in enumerate(actions) if a.compare_args is not None
    }
