"""``hero rollout --user-sim``: tau2 rollouts with a simulated customer on a loopback endpoint."""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import AIMessage
from typer.testing import CliRunner

from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.adapters.reflectors.local_endpoint import LocalChatEndpoint
from hero_agents.cli import app
from hero_agents.storage import read_trajectories


def test_rollout_with_a_user_simulator_records_interactive_episodes(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    user = ScriptedChatModel(responses=[AIMessage("I need a new task."), AIMessage("###STOP###")])
    out = tmp_path / "traces.jsonl"
    args = ["rollout", "--env", "tau2:mock", "--policy", str(tiny_model_dir), "--episodes", "1"]
    args += ["--max-turns", "2", "--max-new-tokens", "8", "--out", str(out)]
    with LocalChatEndpoint(user, model_name="customer") as endpoint:
        spec = f"openai-compatible:{endpoint.url}#customer"
        result = CliRunner().invoke(app, [*args, "--user-sim", spec])
    assert result.exit_code == 0, result.output
    (trajectory,) = read_trajectories(out)
    assert trajectory.reward_info["mode"] == "interactive"
    assert trajectory.reward_info["user_simulator"] == spec
    first = trajectory.turns[0]
    assert first.messages[1:] == [
        {"role": "assistant", "content": "Hi! How can I help you today?"},
        {"role": "user", "content": "I need a new task."},
    ]
    result = CliRunner().invoke(app, [*args, "--overwrite", "--user-sim", "local:"])
    assert result.exit_code == 2 and "invalid user-simulator spec" in result.output


def test_overwrite_keeps_the_old_file_when_another_option_is_wrong(tmp_path: Path) -> None:
    out = tmp_path / "traces.jsonl"
    out.write_text("earlier results\n")
    for command in ("rollout", "eval"):
        result = CliRunner().invoke(
            app, [command, "--env", "tau2:nope", "--out", str(out), "--overwrite"]
        )
        assert result.exit_code == 2 and "unknown environment" in result.output
        assert out.read_text() == "earlier results\n"
