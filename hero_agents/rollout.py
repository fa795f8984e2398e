"""Roll a policy out on an environment's tasks, recording every episode as a scored trajectory.

Each episode gets a fresh environment instance, the tool agent from `hero_agents.graphs`, and a
`TraceRecorder` in its run config; episodes run concurrently up to a bound (useful against a
server that batches requests). An episode that fails is reported, never half-recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel

from hero_agents.capture import ENV_KEY, TASK_ID_KEY, TraceRecorder, new_run_id
from hero_agents.environment import Environment, InteractiveEpisode
from hero_agents.errors import HeroError
from hero_agents.graphs import (
    build_conversation_graph,
    build_tool_agent,
    conversation_termination,
    termination_reason,
)
from hero_agents.trajectory import Trajectory

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeFailure:
    """An episode that raised instead of finishing; nothing of it was recorded."""

    task_id: str
    error: str


@dataclass
class RolloutResult:
    """Finished trajectories (in task order) and the episodes that failed."""

    trajectories: list[Trajectory] = field(default_factory=list)
    failures: list[EpisodeFailure] = field(default_factory=list)


@dataclass(frozen=True)
class RolloutSummary:
    """The headline figures of a set of episodes."""

    episodes: int
    success_rate: float
    mean_reward: float
    mean_turns: float
    tool_error_rate: float
    failures: int

    @classmethod
    def of(cls, result: RolloutResult, *, success_threshold: float = 1.0) -> RolloutSummary:
        trajectories = result.trajectories
        count = len(trajectories)
        rewards = [t.reward or 0.0 for t in trajectories]
        calls = sum(t.tool_calls for t in trajectories)
        return cls(
            episodes=count,
            success_rate=sum(r >= success_threshold for r in rewards) / count if count else 0.0,
            mean_reward=sum(rewards) / count if count else 0.0,
            mean_turns=sum(len(t.turns) for t in trajectories) / count if count else 0.0,
            tool_error_rate=sum(t.tool_errors for t in trajectories) / calls if calls else 0.0,
            failures=len(result.failures),
        )


async def arun_episode(
    env: Environment, policy: BaseChatModel, task_id: str, *, max_turns: int = 10
) -> Trajectory:
    """Run one episode of `task_id` and return its scored trajectory.

    An `InteractiveEpisode` runs as a conversation with its simulated user; only the agent's
    calls are turns (the user's replies are observations).
    """
    episode = await asyncio.to_thread(env.new_episode, task_id)
    if isinstance(episode, InteractiveEpisode):
        user = episode.user_simulator
        graph = build_conversation_graph(
            policy,
            episode.tools,
            user.model,
            user_system_prompt=user.system_prompt,
            stop_signals=user.stop_signals,
            system_prompt=episode.system_prompt,
            max_turns=max_turns,
        )
        termination_of = conversation_termination
    else:
        graph = build_tool_agent(
            policy, episode.tools, system_prompt=episode.system_prompt, max_turns=max_turns
        )
        termination_of = termination_reason
    recorder = TraceRecorder(nodes={"agent"})
    run_id = new_run_id()
    state = await graph.ainvoke(
        {"messages": list(episode.initial_messages)},
        config={
            "callbacks": [recorder],
            "run_id": run_id,
            "metadata": {TASK_ID_KEY: task_id, ENV_KEY: env.name},
            "recursion_limit": 2 * max_turns + 5,
        },
    )
    trajectory = recorder.take(run_id)
    termination = termination_of(state)
    score = await asyncio.to_thread(episode.score, state["messages"], termination=termination)
    trajectory.termination = termination
    trajectory.reward = score.reward
    trajectory.reward_info = dict(score.info)
    return trajectory


async def arun_rollouts(
    env: Environment,
    policy: BaseChatModel,
    task_ids: Sequence[str],
    *,
    max_turns: int = 10,
    concurrency: int = 1,
    on_trajectory: Callable[[Trajectory], None] | None = None,
    on_failure: Callable[[EpisodeFailure], None] | None = None,
) -> RolloutResult:
    """Run one episode per entry of `task_ids` (repeats allowed), at most `concurrency` at once.

    `on_trajectory` is called as each episode finishes (e.g. to append it to a file);
    `on_failure` as each one fails.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    gate = asyncio.Semaphore(concurrency)
    slots: list[Trajectory | None] = [None] * len(task_ids)
    failures: list[EpisodeFailure] = []

    async def one(position: int, task_id: str) -> None:
        async with gate:
            try:
                trajectory = await arun_episode(env, policy, task_id, max_turns=max_turns)
            except Exception as error:  # reported, never half-recorded
                # An error raised on purpose says what is wrong; anything else gets its trace.
                expected = isinstance(error, HeroError)
                logger.warning(
                    "episode of task %s failed: %s", task_id, error, exc_info=not expected
                )
                failure = EpisodeFailure(task_id=task_id, error=f"{type(error).__name__}: {error}")
                failures.append(failure)
                if on_failure is not None:
                    on_failure(failure)
                return
        slots[position] = trajectory
        if on_trajectory is not None:
            on_trajectory(trajectory)

    await asyncio.gather(*(one(i, task_id) for i, task_id in enumerate(task_ids)))
    return RolloutResult(trajectories=[t for t in slots if t is not None], failures=failures)


def run_rollouts(
    env: Environment,
    policy: BaseChatModel,
    task_ids: Sequence[str],
    *,
    max_turns: int = 10,
    concurrency: int = 1,
    on_trajectory: Callable[[Trajectory], None] | None = None,
    on_failure: Callable[[EpisodeFailure], None] | None = None,
) -> RolloutResult:
    """Synchronous `arun_rollouts`."""
    return asyncio.run(
        arun_rollouts(
            env,
            policy,
            task_ids,
            max_turns=max_turns,
            concurrency=concurrency,
            on_trajectory=on_trajectory,
            on_failure=on_failure,
        )
    )


def pick_tasks(task_ids: Sequence[str], episodes: int) -> list[str]:
    """`episodes` task ids, cycling through `task_ids` in order."""
    if not task_ids:
        raise ValueError("no tasks to pick from")
    return [task_ids[i % len(task_ids)] for i in range(episodes)]
