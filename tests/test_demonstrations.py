"""Scripted replies played through the agent graph: kept only when the environment gives full
reward."""

from __future__ import annotations

from langchain_core.messages import AIMessage

from hero_agents.adapters.envs import make_env
from hero_agents.adapters.envs.tau2_demos import gold_replies
from hero_agents.demonstrations import record_demonstrations


def test_a_script_that_fails_the_task_is_left_out_with_its_score() -> None:
    env = make_env("tau2:mock")
    good, bad = env.task_ids("train")[:2]
    scripts = {good: gold_replies(env.task(good)), bad: [AIMessage("I cannot help with that.")]}
    demos = record_demonstrations(env, scripts, left_out={"other": "no script"})
    assert [t.task_id for t in demos.trajectories] == [good]
    assert demos.left_out == {"other": "no script", bad: "its correct replies scored 0.0"}
    assert demos.trajectories[0].metadata["demonstration"] == "scripted"
