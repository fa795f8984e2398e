"""`hero reflect` on trajectories recorded by the rollout loop on the real tau2 mock domain."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from langchain_core.messages import AIMessage
from reflection_server import valid_reply
from typer.testing import CliRunner

from hero_agents.adapters.envs import make_env
from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.cli.reflect import reflect
from hero_agents.phases.rollout import cycling_slots, run_episodes
from hero_agents.storage import read_trajectories, write_trajectories

app = typer.Typer()
app.command()(reflect)
app.command("noop", hidden=True)(lambda: None)


def call(name: str, call_id: str, **arguments: object) -> dict:
    return {"name": name, "args": arguments, "id": call_id, "type": "tool_call"}


def test_reflect_diagnoses_every_turn_of_recorded_rollouts(chat_server, tmp_path: Path) -> None:
    env = make_env("tau2:mock")
    policy = ScriptedChatModel(
        responses=[
            AIMessage("", tool_calls=[call("get_users", "c1")]),
            AIMessage("", tool_calls=[call("create_task", "c2", user_id="nobody", title="x")]),
            AIMessage(
                "",
                tool_calls=[call("create_task", "c3", user_id="user_1", title="Important Meeting")],
            ),
            AIMessage("I created the task 'Important Meeting' for user_1."),
        ]
    )
    rollouts = run_episodes(
        env, policy, cycling_slots("t", ["create_task_1", "create_task_1__v0"], 2), max_turns=6
    )
    assert not rollouts.failures
    traces = tmp_path / "traces.jsonl"
    write_trajectories(traces, rollouts.trajectories)
    recorded = read_trajectories(traces)
    assert all(len(t.turns) == 4 for t in recorded)
    assert recorded[0].turns[1].tool_errors == 1  # the unknown user, reported by tau2

    server = chat_server(default=valid_reply)
    out = tmp_path / "diagnosed.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "reflect",
            str(traces),
            "-r",
            f"openai-compatible:{server.url}#m",
            "-o",
            str(out),
            "--no-cache",
        ],
    )

    assert result.exit_code == 0, result.output
    diagnosed = read_trajectories(out)
    assert sorted(t.id for t in diagnosed) == sorted(t.id for t in recorded)
    for trajectory in diagnosed:
        assert [d.turn_index for d in trajectory.diagnoses] == [0, 1, 2, 3]
    assert len(server.requests) == len(recorded)  # one call per trajectory
    prompt = server.user_prompts()[0]
    assert "create_task" in prompt and '"status": "error"' in prompt


@pytest.mark.usefixtures("single_thread")
def test_reflect_on_the_output_of_hero_rollout(tiny_model_dir: Path, tmp_path: Path) -> None:
    from hero_agents.cli import app as hero

    traces, out = tmp_path / "traces.jsonl", tmp_path / "diagnosed.jsonl"
    rolled = CliRunner().invoke(
        hero,
        [
            "rollout",
            "--env",
            "tau2:mock",
            "--policy",
            str(tiny_model_dir),
            "--episodes",
            "2",
            "--max-turns",
            "1",
            "--out",
            str(traces),
        ],
    )
    assert rolled.exit_code == 0, rolled.output
    recorded = read_trajectories(traces)
    assert len(recorded) == 2

    result = CliRunner().invoke(app, ["reflect", str(traces), "-r", "env-feedback", "-o", str(out)])

    assert result.exit_code == 0, result.output
    diagnosed = read_trajectories(out)
    assert sorted(t.id for t in diagnosed) == sorted(t.id for t in recorded)
    for trajectory in diagnosed:
        assert [d.turn_index for d in trajectory.diagnoses] == list(range(len(trajectory.turns)))
