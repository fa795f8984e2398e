"""``hero train`` with ``backend: vllm``: the policy served by a real vLLM(-cpu) server that
hot-loads each iteration's adapter, the tiny model on tau2 mock."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hero_agents.cli import app
from hero_agents.loop.run_dir import RunDir
from hero_agents.storage import read_trajectories

pytestmark = pytest.mark.server


def test_one_iteration_on_a_vllm_server(
    write_config: Callable[..., Path], tmp_path: Path, hero_cache: Path
) -> None:
    out = tmp_path / "run"
    config = write_config(backend="vllm", vllm_max_model_len=4096)
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)

    run = RunDir(out)
    rows = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert [row["iteration"] for row in rows] == [0, 1]
    assert rows[1]["policy_version"] == "policy-v1"  # named by the server's WeightSync
    # Rollouts came from the served warm start, the evaluation after training from the adapter.
    rollouts = read_trajectories(run.rollouts(1))
    assert {turn.tokens.policy_version for t in rollouts for turn in t.turns} == {"policy-v0"}
    evaluated = read_trajectories(run.eval(1))
    assert {turn.tokens.policy_version for t in evaluated for turn in t.turns} == {"policy-v1"}
    assert (out / "vllm-server.log").is_file()
