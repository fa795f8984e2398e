"""``hero rollout`` and ``hero distill`` resume an interrupted run as the loop does: stable ids
and whole lines for episodes, a finished training found and kept, a cut one started over.
(``hero reflect --append`` is tested in tests/reflection/test_reflect_resume.py.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from hero_agents.cli import app
from hero_agents.storage import read_trajectories, write_trajectories

sys.path.insert(0, str(Path(__file__).parent / "distill"))
from distill_helpers import tool_conversation


def hero(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_rollout_append_runs_only_the_missing_episodes(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "traces.jsonl"
    command = ["rollout", "--policy", tiny_model_dir, "--episodes", "4", "--max-turns", "1"]
    command += ["--max-new-tokens", "4", "--out", out, "--seed", "0"]
    code, output = hero(*command)
    assert code == 0, output
    first = out.read_bytes().splitlines(keepends=True)
    ids = [t.id for t in read_trajectories(out)]
    assert ids == [f"rollout-{t}-0" for t in [json.loads(line)["task_id"] for line in first]]
    # A run killed after two episodes, mid-way through writing the third.
    out.write_bytes(b"".join(first[:2]) + first[2][:40])

    code, output = hero(*command, "--append")
    assert code == 0, output
    assert "2 episodes were already in --out" in output
    again = read_trajectories(out)
    assert sorted(t.id for t in again) == sorted(ids)  # each once, none lost
    assert out.read_bytes().startswith(b"".join(first[:2]))  # the first two kept as written


def test_distill_rerun_keeps_a_finished_training_and_redoes_a_cut_one(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    diagnosed = tmp_path / "diagnosed.jsonl"
    write_trajectories(diagnosed, [tool_conversation(f"t{i}", turns=2) for i in range(2)])
    out = tmp_path / "out"
    command = ["distill", diagnosed, "--model", tiny_model_dir, "--out", out, "--max-steps", "1"]
    code, output = hero(*command)
    assert code == 0, output
    weights = out / "adapter" / "adapter_model.safetensors"
    stamp = weights.stat().st_mtime_ns

    code, output = hero(*command)  # finished: found and kept
    assert code == 0, output
    assert weights.stat().st_mtime_ns == stamp

    # A training killed before its adapter was renamed into place leaves a scratch folder.
    (out / "adapter").rename(out / "adapter.partial")
    (out / "metrics.json").unlink()
    code, output = hero(*command)
    assert code == 0, output
    assert weights.is_file() and not (out / "adapter.partial").exists()

    code, output = hero(*command[:-1], "2")  # other settings: refused, naming the key
    assert code == 2 and "max_steps: 1 -> 2" in output
