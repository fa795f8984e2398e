"""Rollouts on the real tau2 mock environment: scored, recorded, concurrent, failures reported."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from hero_agents.adapters.envs import make_env
from hero_agents.adapters.envs.tau2_env import Tau2Environment
from hero_agents.rollout import RolloutSummary, pick_tasks, run_rollouts
from hero_agents.testing import ScriptedChatModel


class ExpectedActionsPolicy(ScriptedChatModel):
    """Plays each task's expected actions (found by its ticket), then answers; 'boom' raises."""

    env: Any

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        ticket = next(m for m in messages if isinstance(m, HumanMessage)).content
        task_id = self.env.task_by_ticket[ticket]
        if task_id == "boom":
            raise RuntimeError("policy crashed")
        actions = self.env.task(task_id).evaluation_criteria.actions or []
        done = sum(isinstance(m, AIMessage) for m in messages)
        if done < len(actions):
            action = actions[done]
            reply = AIMessage(
                "", tool_calls=[{"name": action.name, "args": action.arguments, "id": f"c{done}"}]
            )
        else:
            reply = AIMessage("Done.")
        return ChatResult(generations=[ChatGeneration(message=reply)])


def tasks_with_actions(env: Tau2Environment) -> list[str]:
    return [t for t in env.task_ids("train") if env.task(t).evaluation_criteria.actions][:6]


def with_tickets(env: Tau2Environment, task_ids: list[str]) -> Tau2Environment:
    env.task_by_ticket = {  # type: ignore[attr-defined]
        env.new_episode(t).initial_messages[-1].content: t for t in task_ids
    }
    return env


def test_rollouts_are_scored_and_recorded_in_task_order() -> None:
    env = make_env("tau2:mock")
    task_ids = tasks_with_actions(env)
    policy = ExpectedActionsPolicy(env=with_tickets(env, task_ids), responses=[])
    recorded = []
    result = run_rollouts(env, policy, task_ids, concurrency=3, on_trajectory=recorded.append)

    assert [t.task_id for t in result.trajectories] == task_ids
    assert sorted(t.id for t in recorded) == sorted(t.id for t in result.trajectories)
    for trajectory in result.trajectories:
        assert trajectory.env == "tau2:mock"
        assert trajectory.reward == 1.0, trajectory.reward_info
        assert trajectory.termination == "stop"
        assert trajectory.reward_info
        first = trajectory.turns[0]
        assert first.messages[0]["role"] == "system" and first.tools and first.node == "agent"
        assert first.observation and first.observation[0]["role"] == "tool"
    summary = RolloutSummary.of(result)
    assert summary.success_rate == 1.0 and summary.failures == 0 and summary.mean_turns > 1


def test_failed_episodes_are_reported_not_recorded() -> None:
    env = make_env("tau2:mock")
    task_ids = tasks_with_actions(env)[:2]
    with_tickets(env, task_ids)
    env.task_by_ticket[env.new_episode(task_ids[1]).initial_messages[-1].content] = "boom"  # type: ignore[attr-defined]
    result = run_rollouts(env, ExpectedActionsPolicy(env=env, responses=[]), task_ids)
    assert [t.task_id for t in result.trajectories] == task_ids[:1]
    assert [f.task_id for f in result.failures] == task_ids[1:]
    assert "policy crashed" in result.failures[0].error


def test_turn_budget_ends_without_reward() -> None:
    env = make_env("tau2:mock")
    task_ids = tasks_with_actions(env)
    policy = ExpectedActionsPolicy(env=with_tickets(env, task_ids[:1]), responses=[])
    [trajectory] = run_rollouts(env, policy, task_ids[:1], max_turns=1).trajectories
    assert trajectory.termination == "max_turns"
    assert trajectory.reward == 0.0
    assert len(trajectory.turns) == 1


def test_pick_tasks_cycles() -> None:
    assert pick_tasks(["a", "b"], 5) == ["a", "b", "a", "b", "a"]
