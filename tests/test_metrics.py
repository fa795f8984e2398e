"""pass^k as tau-bench defines it, and the per-episode figures every report shares."""

from __future__ import annotations

import pytest

from hero_agents.metrics import EpisodeStats, pass_hat_k, successes_by_task, task_pass_hat_k
from hero_agents.trajectory import Trajectory, Turn


def episode(
    task: str, reward: float, *, error: bool = False, malformed: bool = False
) -> Trajectory:
    action = {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "function": {}}]}
    if malformed:
        action = {"role": "assistant", "content": "<tool_call>{", "invalid_tool_calls": [{}]}
    result = {"role": "tool", "tool_call_id": "c", "content": "x"}
    if error:
        result["status"] = "error"
    turns = [
        Turn(index=0, messages=[], action=action, observation=[result]),
        Turn(index=1, messages=[], action={"role": "assistant", "content": "done"}),
    ]
    return Trajectory(id=f"{task}-{reward}-{error}", task_id=task, turns=turns, reward=reward)


def test_pass_hat_k_is_the_mean_over_tasks_of_c_choose_k_over_n_choose_k() -> None:
    trials = {"a": [True, False, True, False], "b": [True, True, True, True], "c": [False]}
    assert pass_hat_k(trials, 1) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    # c has one trial: only a and b count for k >= 2.
    assert pass_hat_k(trials, 2) == pytest.approx((1 / 6 + 1.0) / 2)
    assert pass_hat_k(trials, 4) == pytest.approx((0.0 + 1.0) / 2)
    assert pass_hat_k(trials, 5) is None
    with pytest.raises(ValueError, match="at least 1"):
        pass_hat_k(trials, 0)


def test_each_tasks_pass_hat_k_from_its_share_of_successes() -> None:
    trials = {"a": [True, False, True, False], "b": [True] * 4, "c": [False] * 4}
    shares = {task: sum(o) / len(o) for task, o in trials.items()}
    per_task = task_pass_hat_k(shares, 4, 2)
    assert per_task == pytest.approx({"a": 1 / 6, "b": 1.0, "c": 0.0})
    assert sum(per_task.values()) / 3 == pytest.approx(pass_hat_k(trials, 2))
    with pytest.raises(ValueError, match="between 1 and the 4 trials"):
        task_pass_hat_k(shares, 4, 5)


def test_episode_stats_count_successes_turns_and_invalid_actions() -> None:
    runs = [
        episode("a", 1.0),
        episode("a", 0.0, error=True),
        episode("b", 1.0, malformed=True),
    ]
    stats = EpisodeStats.of(runs)
    assert successes_by_task(runs) == {"a": [True, False], "b": [True]}
    assert stats.episodes == 3 and stats.tasks == 2
    assert stats.success_rate == pytest.approx(2 / 3)
    assert stats.pass_hat_k[1] == pytest.approx((0.5 + 1.0) / 2)
    assert stats.pass_hat_k[2] == pytest.approx(0.0)  # only a has two trials, one failed
    assert stats.mean_turns == 2.0 and stats.turns == 6
    assert stats.invalid_action_rate == pytest.approx(2 / 6)
    assert stats.tool_calls == 2 and stats.tool_error_rate == pytest.approx(1 / 2)


def test_episode_stats_of_nothing_are_zero() -> None:
    stats = EpisodeStats.of([])
    assert stats.episodes == 0 and stats.success_rate == 0.0 and stats.pass_hat_k == {}
