"""``hero eval``: real environments, real in-process models, a loopback user simulator; and
pass^k as tau2-bench computes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from tau2.metrics.agent_metrics import pass_hat_k as tau2_task_pass_hat_k
from typer.testing import CliRunner

from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.adapters.reflectors.local_endpoint import LocalChatEndpoint
from hero_agents.cli import app
from hero_agents.metrics import EpisodeStats, tau2_pass_hat_k
from hero_agents.storage import read_trajectories
from hero_agents.trajectory import Trajectory


def hero_eval(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["eval", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_pass_hat_k_is_tau2s_over_every_task() -> None:
    outcomes = {"a": [1, 1, 0, 1], "b": [0, 1, 1], "c": [1, 1, 1, 1, 1]}
    trajectories = [
        Trajectory(id=f"{task}{i}", task_id=task, turns=[], reward=float(r))
        for task, rewards in outcomes.items()
        for i, r in enumerate(rewards)
    ]
    hat = tau2_pass_hat_k(trajectories)
    assert list(hat) == [1, 2, 3]  # tau2 stops at the fewest trials of any task (b: 3)
    for k, value in hat.items():
        expected = sum(tau2_task_pass_hat_k(len(r), sum(r), k) for r in outcomes.values()) / len(
            outcomes
        )
        assert value == pytest.approx(expected)


def test_eval_on_webshop_lite_prints_the_figures_and_writes_trajectories(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval.jsonl"
    code, output = hero_eval(
        "--env", "webshop-lite", "--policy", str(tiny_model_dir), "--episodes", "2",
        "--max-turns", "2", "--max-new-tokens", "16", "--out", str(out),
    )  # fmt: skip
    assert code == 0, output
    for column in ("success", "pass^1", "mean turns", "tool-error rate"):
        assert column in output
    trajectories = read_trajectories(out)
    assert [t.task_id for t in trajectories] == ["ws0002", "ws0005"]  # the first test tasks
    assert all(t.env == "webshop-lite" and t.reward is not None for t in trajectories)
    row = next(line for line in output.splitlines() if line.startswith("│"))
    episodes, tasks, success, pass1, mean_reward, *_ = (c.strip() for c in row.split("│")[1:-1])
    stats = EpisodeStats.of(trajectories)
    assert (episodes, tasks) == ("2", "2")
    assert success == pass1 == f"{stats.success_rate:.1%}"
    assert mean_reward == f"{stats.mean_reward:.3f}"
    code, output = hero_eval("--env", "webshop-lite", "--out", str(out))
    assert code == 2 and "exists" in output


def test_eval_interactive_tau2_with_a_loopback_user_simulator(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    user = ScriptedChatModel(
        responses=[AIMessage("Please help with my task."), AIMessage("###STOP###")]
    )
    out = tmp_path / "eval.jsonl"
    with LocalChatEndpoint(user, model_name="customer") as endpoint:
        code, output = hero_eval(
            "--env", "tau2:mock", "--policy", str(tiny_model_dir),
            "--user-sim", f"openai-compatible:{endpoint.url}#customer",
            "--episodes", "1", "--max-turns", "2", "--max-new-tokens", "8", "--out", str(out),
        )  # fmt: skip
    assert code == 0, output
    assert "user-sim openai-compatible:" in output
    (trajectory,) = read_trajectories(out)
    assert trajectory.reward_info["mode"] == "interactive"
    assert trajectory.turns[0].messages[2] == {
        "role": "user",
        "content": "Please help with my task.",
    }


def test_eval_names_bad_options(tmp_path: Path) -> None:
    out = str(tmp_path / "x.jsonl")
    code, output = hero_eval("--env", "webshop-full", "--out", out)
    assert code == 2 and "unknown environment" in output and "webshop-lite" in output
    code, output = hero_eval("--env", "tau2:mock", "--user-sim", "gpt-4.1", "--out", out)
    assert code == 2 and "invalid user-simulator spec" in output


@pytest.mark.slow
def test_eval_webshop_lite_with_the_default_model(tmp_path: Path) -> None:
    out = tmp_path / "eval.jsonl"
    code, output = hero_eval(
        "--env", "webshop-lite", "--policy", "default", "--episodes", "1",
        "--max-turns", "2", "--max-new-tokens", "48", "--out", str(out),
    )  # fmt: skip
    assert code == 0, output
    (trajectory,) = read_trajectories(out)
    assert trajectory.turns and trajectory.reward is not None
    assert trajectory.turns[0].messages[1]["content"].startswith("WebShop [SEP] Instruction:")
