"""``hero train`` end to end with the tiny model on the real tau2 mock environment: one
iteration of every method, the run folder it leaves, and the policy versions it serves."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hero_agents.cli import app
from hero_agents.loop.run_dir import RunDir
from hero_agents.storage import read_trajectories

runner = CliRunner()


def train(config: Path, out: Path, *extra: str) -> None:
    result = runner.invoke(app, ["train", str(config), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output


def test_one_iteration_leaves_a_complete_run_folder(
    write_config: Callable[..., Path], tmp_path: Path, hero_cache: Path
) -> None:
    out = tmp_path / "run"
    train(write_config(), out)
    run = RunDir(out)

    rows = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert [row["iteration"] for row in rows] == [0, 1]
    before, after = rows
    assert before["eval"]["episodes"] == 3 and before["policy_version"] == "warm-start"
    assert after["rollout"]["episodes"] == 4 and after["rollout"]["tasks"] == 2
    assert after["reflect"] == {**after["reflect"], "reflector": "env-feedback", "diagnosed": 4}
    assert after["train"]["steps"] >= 1 and after["train"]["trajectories"] == 4
    assert after["eval"]["episodes"] == 3 and after["policy_version"] == "policy-v1"
    assert set(after["seconds"]) == {"rollout", "reflect", "train", "sync", "guard", "eval"}
    assert after["rollout_turns_total"] == after["rollout"]["turns"]

    rollouts = read_trajectories(run.rollouts(1))
    assert len({t.id for t in rollouts}) == 4
    assert {t.metadata["iteration"] for t in rollouts} == {1}
    # Rollouts were sampled by the warm start; the evaluation after training by policy-v1.
    assert {turn.tokens.policy_version for t in rollouts for turn in t.turns} == {"base"}
    evaluated = read_trajectories(run.eval(1))
    assert {turn.tokens.policy_version for t in evaluated for turn in t.turns} == {"policy-v1"}
    assert (run.adapter(1) / "adapter_config.json").is_file()
    assert yaml.safe_load(run.config.read_text())["method"] == "env-feedback"
    warm = json.loads(run.warmup.read_text())
    assert Path(warm["model"]).parent == hero_cache / "warmups"


@pytest.mark.parametrize("method", ["hero", "hero-targeted", "hero+grpo", "grpo", "demo"])
def test_every_method_runs_an_iteration(
    method: str,
    write_config: Callable[..., Path],
    tmp_path: Path,
    hero_cache: Path,
    reflector_server,
) -> None:
    reflector = f"openai-compatible:{reflector_server.url}#scripted"
    out = tmp_path / method
    train(write_config(method=method, reflector=reflector), out)
    row = json.loads(RunDir(out).metrics.read_text().splitlines()[-1])
    assert row["method"] == method and row["iteration"] == 1
    if method in ("hero", "hero-targeted", "hero+grpo"):
        # The scripted reflector diagnosed every rollout (odd turns unnecessary).
        assert row["reflect"]["diagnosed"] == 4 and row["reflect"]["reflector"] == reflector
        assert len(reflector_server.requests) == 4
    if method == "demo":
        # The random model never succeeds: no demonstration, nothing to distill.
        assert row["reflect"]["diagnosed"] == 0 and row["reflect"]["failed"] == 4
        assert "skipped" in row["train"]
    elif method == "grpo":
        # All rewards are 0: no group has a reward contrast, so there is no gradient to take.
        assert row["train"] == {"skipped": row["train"]["skipped"]}
    elif method == "hero-targeted":
        # One turn per episode, diagnosed necessary and valid: only the sampled share trains.
        assert "skipped" in row["train"] or row["train"]["turns"] <= 4
    else:
        assert row["train"]["turns"] == row["rollout"]["turns"]


def test_bad_configs_fail_before_any_work_naming_the_key(
    write_config: Callable[..., Path],
    tmp_path: Path,
    hero_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("HERO_REFLECTOR_API_KEY", raising=False)
    cases = {
        "no API key": (
            write_config("g.yaml", method="hero", reflector="openai:gpt-4o-mini"),
            "needs an API key",
        ),
        "unknown key": (
            write_config("a.yaml", rollout={"groups": 3}),
            "rollout.groups: unknown key",
        ),
        "missing model": (write_config("b.yaml", model=str(tmp_path / "nope")), "model:"),
        "impossible budget": (
            write_config("c.yaml", budget={"rollout_turns": 2}),
            "budget.rollout_turns=2 is less than one iteration",
        ),
        "grpo group": (
            write_config("d.yaml", method="grpo", rollout={"group_size": 1}),
            "group_size >= 2",
        ),
        "bad reflector": (write_config("e.yaml", reflector="gpt-4"), "reflector:"),
        "too many tasks": (write_config("f.yaml", rollout={"tasks": 1000}), "rollout.tasks=1000"),
    }
    warmups = hero_cache / "warmups"
    before = sorted(warmups.iterdir()) if warmups.exists() else []
    for name, (config, message) in cases.items():
        out = tmp_path / f"run-{name}"
        result = runner.invoke(app, ["train", str(config), "--out", str(out)])
        assert result.exit_code == 2, (name, result.output)
        assert message in " ".join(result.output.split()), (name, result.output)
        assert not (out / "metrics.jsonl").exists()
    after = sorted(warmups.iterdir()) if warmups.exists() else []
    assert after == before  # no warm start was trained


def test_a_run_folder_refuses_a_different_config(
    write_config: Callable[..., Path], tmp_path: Path, hero_cache: Path
) -> None:
    out = tmp_path / "run"
    train(write_config(), out)
    other = write_config("other.yaml", rollout={"tasks": 3})
    result = runner.invoke(app, ["train", str(other), "--out", str(out)])
    assert result.exit_code == 2 and "other settings" in result.output


def test_the_example_configs_are_valid() -> None:
    from hero_agents.errors import ConfigError
    from hero_agents.loop.config import load_compare_config, load_train_config

    examples = Path(__file__).parents[2] / "examples" / "configs"
    assert load_train_config(examples / "train_cpu.yaml").model == "default"
    assert len(load_compare_config(examples / "compare_cpu.yaml").seeds) >= 3
    # compare_demo.yaml is hero demo's run, over seeds, for every arm of compare_cpu.yaml.
    from hero_agents.cli.demo import DEMO_SETTINGS
    from hero_agents.loop.config import parse_train_config

    demo = parse_train_config(DEMO_SETTINGS, source="hero demo")
    seeds = load_compare_config(examples / "compare_demo.yaml")
    every_arm = load_compare_config(examples / "compare_cpu.yaml").methods
    assert sorted(seeds.methods) == sorted(every_arm) and len(seeds.seeds) >= 3
    arm = seeds.run_config("hero-reference", 0)
    sections = ("warmup", "rollout", "train", "eval", "budget", "guard")
    assert [getattr(arm, s) for s in sections] == [getattr(demo, s) for s in sections]
    # The GPU example names a model folder this machine does not have, and says so.
    with pytest.raises(ConfigError, match=r"Qwen2\.5-7B-Instruct' is neither 'default' nor"):
        load_compare_config(examples / "compare_gpu.yaml")


def test_report_to_tensorboard_logs_each_iteration(
    write_config: Callable[..., Path], tmp_path: Path, hero_cache: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    train(write_config(report_to=["tensorboard"]), out)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"eval/success_rate", "rollout/episodes", "seconds/train"} <= set(tags)
    assert [e.step for e in events.Scalars("eval/success_rate")] == [0, 1]
    assert [e.value for e in events.Scalars("rollout/episodes")] == [4.0]
