"""One learning-rate schedule for a whole run, across iterations and a kill -9; and the drift
guard that stops a run whose train-split reference log-likelihood falls too far."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from test_resume import hero, kill_when, lines
from typer.testing import CliRunner

from hero_agents.cli import app
from hero_agents.loop.optimizer import LearningRateSchedule
from hero_agents.loop.run_dir import RunDir

STEPS, ITERATIONS = 2, 3


def rates(run: RunDir, number: int) -> list[float]:
    return json.loads((run.adapter(number) / "hero_train.json").read_text())["learning_rates"]


def test_the_schedule_continues_across_iterations_and_a_kill(
    write_config: Callable[..., Path], tmp_path: Path, hero_cache: Path
) -> None:
    train = {"steps_per_iteration": STEPS, "schedule": "cosine", "warmup_steps": 1}
    config = write_config(
        train={**train, "learning_rate": 1e-3, "batch_size": 2},
        budget={"iterations": ITERATIONS},
        guard={"tasks": 0},
        eval={"every": ITERATIONS, "tasks": 1, "reference_logprob": False},
    )
    schedule = LearningRateSchedule(
        peak=1e-3, total_steps=STEPS * ITERATIONS, warmup_steps=1, shape="cosine"
    )
    expected = [schedule.rate(step) for step in range(STEPS * ITERATIONS)]
    assert expected[2] < expected[1]  # the rate falls across the run, not within an iteration

    whole = RunDir(tmp_path / "whole")
    assert hero(config, whole.root).wait(timeout=900) == 0
    logged = [rate for n in range(1, ITERATIONS + 1) for rate in rates(whole, n)]
    assert logged == pytest.approx(expected, rel=1e-6)

    cut = RunDir(tmp_path / "cut")  # killed during iteration 2's rollouts, then resumed
    first = hero(config, cut.root)
    kill_when(first, lambda: cut.finished(1) and lines(cut.rollouts(2)) >= 1, limit_s=900)
    assert hero(config, cut.root).wait(timeout=900) == 0
    resumed = [rate for n in range(1, ITERATIONS + 1) for rate in rates(cut, n)]
    assert resumed == pytest.approx(logged, rel=1e-6)  # the same rate at the same global step
    saved = json.loads((cut.adapter(ITERATIONS) / "schedule.json").read_text())
    assert saved["step"] == STEPS * ITERATIONS


def test_the_drift_guard_stops_a_run_that_forgets(
    write_config: Callable[..., Path], tmp_path: Path, hero_cache: Path
) -> None:
    # A learning rate far too high wrecks the policy in one iteration of two steps. The loss
    # is pinned to the live sampled-token one on every action token: with the opening tokens
    # left out, a tiny-model action of only those tokens trains nothing, and nothing is wrecked;
    # on the sampled actions, whatever the tiny teacher would generate.
    config = write_config(
        train={
            "learning_rate": 0.5,
            "steps_per_iteration": 2,
            "loss": "sampled_token",
            "teacher": "live",
            "distill_action_opening": True,
            "seq_kd": False,
        },
        rollout={"tasks": 2, "group_size": 2},
        guard={"tasks": 3, "max_drop": 0.05},
        budget={"iterations": 3},
        eval={"every": 3, "tasks": 2},
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[0], rows[-1]
    assert first["guard"]["baseline"] == first["guard"]["reference_logprob"]
    assert first["eval"]["reference_logprob"]["tasks"] == 2
    assert [row["iteration"] for row in rows] == [0, 1]  # stopped: iterations 2, 3 never ran
    assert last["guard"]["stopped"] is True
    assert last["guard"]["baseline"] - last["guard"]["reference_logprob"] > 0.05
    assert last["eval"] is not None  # the stopped policy is still evaluated
