"""Rollouts on the real tau2 mock environment: scored, recorded, concurrent, failures reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from hero_agents.adapters.envs import make_env
from hero_agents.adapters.envs.tau2_env import Tau2Environment
from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.metrics import EpisodeStats
from hero_agents.phases.rollout import EpisodeSlot, cycling_slots, run_episodes
from hero_agents.storage import read_trajectories


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


def one_each(task_ids: list[str]) -> list[EpisodeSlot]:
    return cycling_slots("t", task_ids, len(task_ids))


def test_rollouts_are_scored_and_recorded_in_task_order(tmp_path: Path) -> None:
    env = make_env("tau2:mock")
    task_ids = tasks_with_actions(env)
    policy = ExpectedActionsPolicy(env=with_tickets(env, task_ids), responses=[])
    out = tmp_path / "traces.jsonl"
    result = run_episodes(env, policy, one_each(task_ids), out=out, concurrency=3)

    assert [t.task_id for t in result.trajectories] == task_ids
    recorded = read_trajectories(out)
    assert sorted(t.id for t in recorded) == sorted(t.id for t in result.trajectories)
    for trajectory in result.trajectories:
        assert trajectory.env == "tau2:mock"
        assert trajectory.reward == 1.0, trajectory.reward_info
        assert trajectory.termination == "stop"
        assert trajectory.reward_info
        first = trajectory.turns[0]
        assert first.messages[0]["role"] == "system" and first.tools and first.node == "agent"
        assert first.observation and first.observation[0]["role"] == "tool"
    summary = EpisodeStats.of(result.trajectories)
    assert summary.success_rate == 1.0 and not result.failures and summary.mean_turns > 1


def test_a_rerun_runs_only_the_episodes_the_file_does_not_hold(tmp_path: Path) -> None:
    env = make_env("tau2:mock")
    task_ids = tasks_with_actions(env)[:3]
    policy = ExpectedActionsPolicy(env=with_tickets(env, task_ids), responses=[])
    out = tmp_path / "traces.jsonl"
    first = run_episodes(env, policy, one_each(task_ids[:2]), out=out)
    with out.open("ab") as handle:  # a writer killed mid-line
        handle.write(b'{"schema_version": 1, "id": "t-torn')
    again = run_episodes(env, policy, one_each(task_ids), out=out)
    assert again.resumed == 2 and len(again.trajectories) == 3
    assert [t.id for t in again.trajectories[:2]] == [t.id for t in first.trajectories]
    assert [t.id for t in read_trajectories(out)] == [t.id for t in again.trajectories]


def test_failed_episodes_are_reported_not_recorded() -> None:
    env = make_env("tau2:mock")
    task_ids = tasks_with_actions(env)[:2]
    with_tickets(env, task_ids)
    env.task_by_ticket[env.new_episode(task_ids[1]).initial_messages[-1].content] = "boom"  # type: ignore[attr-defined]
    result = run_episodes(env, ExpectedActionsPolicy(env=env, responses=[]), one_each(task_ids))
    assert [t.task_id for t in result.trajectories] == task_ids[:1]
    assert [f.task_id for f in result.failures] == task_ids[1:]
    assert "policy crashed" in result.failures[0].error


def test_turn_budget_ends_without_reward() -> None:
    env = make_env("tau2:mock")
    task_ids = tasks_with_actions(env)
    policy = ExpectedActionsPolicy(env=with_tickets(env, task_ids[:1]), responses=[])
    [trajectory] = run_episodes(env, policy, one_each(task_ids[:1]), max_turns=1).trajectories
    assert trajectory.termination == "max_turns"
    assert trajectory.reward == 0.0
    assert len(trajectory.turns) == 1


def test_cycling_slots_cycle_with_stable_ids() -> None:
    slots = cycling_slots("rollout", ["a", "b"], 5)
    assert [s.task_id for s in slots] == ["a", "b", "a", "b", "a"]
    assert [s.id for s in slots] == [
        f"rollout-{t}-{n}" for t, n in [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2)]
    ]
    assert [s.id for s in cycling_slots("x", ["a", "a"], 2)] == ["x-a-0", "x-a-1"]
