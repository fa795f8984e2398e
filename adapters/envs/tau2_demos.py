"""Demonstrations of tau2 tasks: each task's gold actions played through the real agent graph.

A tau2 task's evaluation criteria list the actions a correct agent takes (tool name and
arguments). `GoldActionPolicy` is a chat model that plays them, one tool call per turn, and
then answers the user: with tau2's transfer message after a transfer to a human agent, else a
short confirmation that states every piece of information the task asks the agent to
communicate. The episode runs through the same graph, recorder and tau2 evaluator as any
rollout, so a demonstration is a real, scored trajectory; one that does not earn the full reward
is not a demonstration and is left out (reported by `demonstrations`).

Tasks without gold actions (e.g. ones checked by env assertions only) have no demonstration.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from tau2.data_model.tasks import Task

from hero_agents.environment import Environment
from hero_agents.trajectory import Trajectory

logger = logging.getLogger(__name__)

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


class GoldActionPolicy(BaseChatModel):
    """Plays one task's gold actions (one tool call per policy call), then `final_message`."""

    task: Any
    """The tau2 `Task` whose actions are played."""

    @property
    def _llm_type(self) -> str:
        return "hero-tau2-gold-actions"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, BaseMessage]:
        return self.bind(tools=[convert_to_openai_tool(tool) for tool in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        actions = self.task.evaluation_criteria.actions or []
        # Turns already taken in this episode: AI messages after the ticket (the last user
        # message of the initial context, which may hold an earlier exchange).
        last_user = max(i for i, m in enumerate(messages) if m.type == "human")
        done = sum(isinstance(m, AIMessage) for m in messages[last_user:])
        if done < len(actions):
            action = actions[done]
            call = {"name": action.name, "args": dict(action.arguments), "id": f"gold_{done}"}
            reply = AIMessage(content="", tool_calls=[call])
        else:
            reply = AIMessage(content=final_message(self.task))
        return ChatResult(generations=[ChatGeneration(message=reply)])


def has_gold_actions(task: Task) -> bool:
    """Whether the task's criteria list the actions a correct agent takes."""
    criteria = task.evaluation_criteria
    return bool(criteria is not None and criteria.actions)


async def ademonstrations(
    env: Environment, tasks: Sequence[Task], *, concurrency: int = 4
) -> tuple[list[Trajectory], dict[str, str]]:
    """Demonstrations of `tasks` in `env`, and the tasks left out with the reason.

    Each demonstration is the episode of `GoldActionPolicy`, scored by tau2's evaluator; only
    episodes with reward 1 are kept.
    """
    from hero_agents.rollout import arun_episode

    gate = asyncio.Semaphore(concurrency)
    left_out: dict[str, str] = {}

    async def one(task: Task) -> Trajectory | None:
        if not has_gold_actions(task):
            left_out[task.id] = "no gold actions"
            return None
        async with gate:
            actions = len(task.evaluation_criteria.actions)
            trajectory = await arun_episode(
                env, GoldActionPolicy(task=task), task.id, max_turns=actions + 1
            )
        if (trajectory.reward or 0.0) < 1.0:
            left_out[task.id] = f"the gold actions scored {trajectory.reward}"
            logger.warning("task %s: its gold actions scored %s", task.id, trajectory.reward)
            return None
        trajectory.metadata["demonstration"] = "gold-actions"
        return trajectory

    results = await asyncio.gather(*(one(task) for task in tasks))
    return [t for t in results if t is not None], left_out
