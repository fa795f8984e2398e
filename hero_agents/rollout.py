"""One episode of an environment's task, recorded as a scored trajectory.

Each episode gets a fresh environment instance, the tool agent from `hero_agents.graphs` (or
the conversation graph, when a simulated user takes part), and a `TraceRecorder` in its run
config. Many episodes at once, resumable over a file, are the rollout phase
(`hero_agents.phases.rollout`).
"""

from __future__ import annotations

import asyncio

from langchain_core.language_models import BaseChatModel

from hero_agents.capture import ENV_KEY, TASK_ID_KEY, TraceRecorder, new_run_id
from hero_agents.environment import Environment, InteractiveEpisode
from hero_agents.graphs import (
    build_conversation_graph,
    build_tool_agent,
    conversation_termination,
    termination_reason,
)
from hero_agents.trajectory import Trajectory


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
