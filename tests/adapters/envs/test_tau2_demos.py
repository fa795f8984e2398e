"""Demonstrations of tau2 tasks: gold actions played through the agent graph, scored by tau2."""

from __future__ import annotations

import pytest

from hero_agents.adapters.envs import make_env
from hero_agents.adapters.envs.tau2_demos import DONE_MESSAGE, TRANSFER_MESSAGE
from hero_agents.environment import DemonstrationSource, SolutionLengths


def test_every_train_task_with_gold_actions_has_a_full_reward_demonstration() -> None:
    env = make_env("tau2:mock")
    assert isinstance(env, DemonstrationSource) and isinstance(env, SolutionLengths)
    train = env.task_ids("train")
    demos = env.demonstrations(train)

    with_actions = [t for t in train if env.task(t).evaluation_criteria.actions]
    assert sorted(t.task_id for t in demos.trajectories) == sorted(with_actions)
    assert set(demos.left_out) == set(train) - set(with_actions)
    assert set(demos.left_out.values()) == {"no gold actions"}
    for demo in demos.trajectories:
        task = env.task(demo.task_id)
        assert demo.reward == 1.0 and demo.termination == "stop"
        assert len(demo.turns) == env.solution_turns(demo.task_id)
        called = [c["function"]["name"] for t in demo.turns for c in t.action.get("tool_calls", [])]
        assert called == [a.name for a in task.evaluation_criteria.actions]
        reply = demo.turns[-1].action["content"]
        for info in task.evaluation_criteria.communicate_info or []:
            assert info in reply
        assert reply.startswith(
            TRANSFER_MESSAGE if called[-1] == "transfer_to_human_agents" else DONE_MESSAGE
        )


@pytest.mark.parametrize("split", ["test", "test-templates"])
def test_every_held_out_task_is_solved_by_its_gold_actions(split: str) -> None:
    """Generated held-out tasks are solvable: gold actions played through the graph earn 1."""
    env = make_env("tau2:mock")
    held_out = env.task_ids(split)
    demos = env.demonstrations(held_out)
    without_actions = {t for t in held_out if not env.task(t).evaluation_criteria.actions}
    assert demos.left_out == dict.fromkeys(without_actions, "no gold actions")
    assert len(demos.trajectories) == len(held_out) - len(without_actions)
    assert all(d.reward == 1.0 and d.termination == "stop" for d in demos.trajectories)
    # tau2 accepted every gold call (a reward of 1 alone would not show it: the DB check
    # compares with the gold actions' own replay, failed calls included)
    assert not [d.task_id for d in demos.trajectories if d.tool_errors]
    if split == "test-templates":
        assert not without_actions


def test_a_task_scored_only_by_env_assertions_has_no_solution_length() -> None:
    env = make_env("tau2:mock")
    task_id = next(t for t in env.task_ids("train") if not env.task(t).evaluation_criteria.actions)
    assert env.solution_turns(task_id) is None
    assert env.demonstrations([task_id]).trajectories == []


def test_telecom_demonstrations_end_with_the_solo_stop_tool() -> None:
    env = make_env("tau2:telecom")
    train = env.task_ids("train")[:6]
    demos = env.demonstrations(train)
    assert sorted(t.task_id for t in demos.trajectories) == sorted(train)
    for demo in demos.trajectories:
        assert demo.reward == 1.0 and demo.termination == "stop"
        assert len(demo.turns) == env.solution_turns(demo.task_id)
        assert demo.turns[-1].action["tool_calls"][0]["function"]["name"] == "done"
        assert not any(m["role"] == "user" for m in demo.turns[0].messages)  # solo: no user
