"""Demonstrations of tau2 tasks: gold actions played through the agent graph, scored by tau2."""

from __future__ import annotations

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
