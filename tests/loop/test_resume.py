"""A run killed with SIGKILL mid-iteration resumes on rerun: no trajectory lost or duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hero_agents.adapters.envs import make_env
from hero_agents.loop.run_dir import RunDir
from hero_agents.loop.runner import iteration_tasks, slot_id
from hero_agents.storage import read_trajectories

TASKS, GROUP = 4, 4


def hero(config: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hero_agents", "train", str(config), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not ready():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the run never reached the point to kill it at"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_kill_during_rollouts_then_rerun(
    write_config: Callable[..., Path], tmp_path: Path, hero_cache: Path
) -> None:
    config = write_config(
        rollout={"tasks": TASKS, "group_size": GROUP, "max_new_tokens": 48, "concurrency": 2},
        budget={"iterations": 2},
    )
    out = tmp_path / "run"
    run = RunDir(out)
    rollouts = run.rollouts(1)

    first = hero(config, out)
    kill_when(first, lambda: lines(rollouts) >= 3, limit_s=600)
    before = rollouts.read_bytes()
    whole = before[: before.rfind(b"\n") + 1]  # a line cut by the kill is not a trajectory
    assert 3 <= whole.count(b"\n") < TASKS * GROUP  # killed mid-phase
    assert not run.finished(1)

    second = hero(config, out)
    kill_when(second, lambda: run.finished(1) and lines(run.rollouts(2)) >= 1, limit_s=600)

    third = hero(config, out)
    assert third.wait(timeout=900) == 0, third.stderr.read().decode()[-3000:]

    # Iteration 1: what was written before the kill is kept byte for byte, and every slot
    # appears exactly once.
    after = rollouts.read_bytes()
    assert after.startswith(whole)
    train_ids = make_env("tau2:mock").task_ids("train")
    tasks = iteration_tasks(train_ids, seed=0, iteration=1, count=TASKS)
    expected = {slot_id("rollout", 1, task, sample) for task in tasks for sample in range(GROUP)}
    for number in (1, 2):
        ids = [t.id for t in read_trajectories(run.rollouts(number))]
        assert len(ids) == len(set(ids)) == TASKS * GROUP
        diagnosed = [t.id for t in read_trajectories(run.diagnosed(number))]
        assert sorted(diagnosed) == sorted(ids)
    assert {t.id for t in read_trajectories(rollouts)} == expected

    rows = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert [row["iteration"] for row in rows] == [0, 1, 2]
    assert (
        rows[2]["rollout_turns_total"] == rows[1]["rollout"]["turns"] + rows[2]["rollout"]["turns"]
    )
