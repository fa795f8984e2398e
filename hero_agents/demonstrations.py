"""Demonstrations: scripted correct replies played through the real agent graph and scored.

An environment that knows a correct reply sequence for a task (tau2's gold actions, WebShop's
shortest purchase path) gives it to `arecord_demonstrations`, which plays it with
`ScriptedReplies` through the same graph, recorder and scorer as any rollout. A demonstration
is therefore a real trajectory in the policy's own format, and one that does not earn the full
reward is not a demonstration: it is left out, with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

from hero_agents.environment import Demonstrations, Environment

logger = logging.getLogger(__name__)


class ScriptedReplies(BaseChatModel):
    """Answers the i-th policy call of an episode with ``replies[i]``.

    Calls are counted as the AI messages after the conversation's last user message (the task;
    a task may start from an earlier exchange).
    """

    replies: list[AIMessage]

    @property
    def _llm_type(self) -> str:
        return "hero-scripted-replies"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, BaseMessage]:
        return self.bind(tools=[convert_to_openai_tool(tool) for tool in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        users = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
        done = sum(isinstance(m, AIMessage) for m in messages[users[-1] if users else 0 :])
        if done >= len(self.replies):
            raise ValueError(f"the script has {len(self.replies)} replies; call {done + 1} asked")
        return ChatResult(generations=[ChatGeneration(message=self.replies[done])])


async def arecord_demonstrations(
    env: Environment,
    scripts: Mapping[str, Sequence[AIMessage]],
    *,
    left_out: Mapping[str, str] | None = None,
    concurrency: int = 4,
) -> Demonstrations:
    """Play each task's script in `env` and keep the episodes that earn reward 1.

    `left_out` names tasks that have no script, with the reason; failed scripts join them.
    """
    from hero_agents.rollout import arun_episode

    gate = asyncio.Semaphore(concurrency)
    missing = dict(left_out or {})

    async def one(task_id: str, replies: Sequence[AIMessage]) -> Any:
        async with gate:
            trajectory = await arun_episode(
                env, ScriptedReplies(replies=list(replies)), task_id, max_turns=len(replies)
            )
        if (trajectory.reward or 0.0) < 1.0:
            missing[task_id] = f"its correct replies scored {trajectory.reward}"
            logger.warning("task %s: its demonstration scored %s", task_id, trajectory.reward)
            return None
        trajectory.metadata["demonstration"] = "scripted"
        return trajectory

    results = await asyncio.gather(*(one(task, replies) for task, replies in scripts.items()))
    return Demonstrations([t for t in results if t is not None], missing)


def record_demonstrations(
    env: Environment,
    scripts: Mapping[str, Sequence[AIMessage]],
    *,
    left_out: Mapping[str, str] | None = None,
) -> Demonstrations:
    """Synchronous `arecord_demonstrations`."""
    return asyncio.run(arecord_demonstrations(env, scripts, left_out=left_out))
