"""`hero distill` end to end: input file in, adapter + config + metrics out; bad input named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import typer
from distill_helpers import tool_conversation
from peft import PeftModel
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from hero_agents.cli.distill import distill
from hero_agents.distill import build_examples
from hero_agents.storage import write_trajectories

app = typer.Typer()
app.command()(distill)
app.command("noop", hidden=True)(lambda: None)


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["distill", *args])


def flat(result: Any) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_distill_writes_adapter_config_and_metrics(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path
) -> None:
    diagnosed = tmp_path / "diagnosed.jsonl"
    write_trajectories(diagnosed, [tool_conversation(f"t{i}", turns=3) for i in range(4)])
    out = tmp_path / "out"

    result = run(
        str(diagnosed), "--model", str(tiny_model_dir), "--out", str(out),
        "--learning-rate", "0.05", "--max-steps", "2",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "trained hero on 4 trajectories, 12 turns" in flat(result)
    config = json.loads((out / "hero_config.json").read_text())
    assert config["signal"] == "hero" and config["use_peft"] is True
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["input"]["trajectories"] == 4 and metrics["input"]["turns"] == 12
    assert metrics["train"]["train_runtime"] > 0
    assert [row["step"] for row in metrics["log_history"] if "loss" in row] == [1, 2]

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.tensor([build_examples([tool_conversation()], tokenizer)[0].turns[1].prompt_ids])
    with torch.no_grad():
        before = base(input_ids=ids).logits
        after = PeftModel.from_pretrained(base, out / "adapter")(input_ids=ids).logits
    assert not torch.allclose(before, after, atol=1e-3)


@pytest.mark.parametrize(
    ("trajectory", "mode", "message"),
    [
        (tool_conversation("bare", reflector=None), "hero", "trajectory 'bare': has no diagnoses"),
        (
            tool_conversation("baseline", reflector="env-feedback"),
            "hero",
            "trajectory 'baseline', turn 0: signal 'hero' needs hindsight diagnoses",
        ),
        (
            tool_conversation("rewardless", reward=None),
            "grpo",
            "trajectory 'rewardless': has no reward",
        ),
    ],
)
def test_bad_input_fails_naming_the_trajectory(
    tiny_model_dir: Path, tmp_path: Path, trajectory: Any, mode: str, message: str
) -> None:
    diagnosed = tmp_path / "diagnosed.jsonl"
    write_trajectories(diagnosed, [trajectory])
    out = tmp_path / "out"
    result = run(str(diagnosed), "--model", str(tiny_model_dir), "--mode", mode, "--out", str(out))
    assert result.exit_code == 2
    assert message in flat(result)
    assert not (out / "adapter").exists()


def test_distill_refuses_to_overwrite_an_output_folder(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    diagnosed = tmp_path / "diagnosed.jsonl"
    write_trajectories(diagnosed, [tool_conversation()])
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    for extra in ([], ["--overwrite"]):  # not a folder hero wrote: refused even with --overwrite
        result = run(str(diagnosed), "--model", str(tiny_model_dir), "--out", str(out), *extra)
        assert result.exit_code == 2 and "is not a distillation folder" in flat(result)
        assert (out / "metrics.json").read_text() == "{}"


def test_distill_rejects_an_unknown_mode_and_model(tmp_path: Path) -> None:
    diagnosed = tmp_path / "diagnosed.jsonl"
    write_trajectories(diagnosed, [tool_conversation()])
    result = run(str(diagnosed), "--mode", "sft", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "hero, env-feedback, demo, grpo, hero+grpo" in flat(result)
    result = run(str(diagnosed), "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "neither 'default' nor a Hugging Face model folder" in flat(
        result
    )


@pytest.mark.slow
def test_distill_default_model_on_reflected_tau2_rollouts(tmp_path: Path) -> None:
    """The default policy plays tau2's mock domain (real env, sampled tokens captured), the
    policy-as-reflector path diagnoses the episode, and `hero distill --model default` writes an
    adapter that loads back onto the default model and changes its outputs."""
    from langchain_core.messages import AIMessage

    from hero_agents.adapters.envs import make_env
    from hero_agents.adapters.policy import load_policy
    from hero_agents.adapters.policy.default_model import default_model_path
    from hero_agents.adapters.policy.testing import ScriptedChatModel
    from hero_agents.adapters.reflectors.loading import self_reflector
    from hero_agents.phases.rollout import cycling_slots, run_episodes

    policy = load_policy("default", temperature=1.0, max_new_tokens=48, seed=0)
    rollouts = run_episodes(
        make_env("tau2:mock"), policy, cycling_slots("t", ["create_task_1"], 1), max_turns=2
    )
    assert not rollouts.failures
    (trajectory,) = rollouts.trajectories
    assert all(turn.tokens is not None for turn in trajectory.turns)
    reply = json.dumps(
        {
            "diagnoses": [
                {
                    "turn_index": turn.index,
                    "necessity": "necessary",
                    "validity": "invalid",
                    "cause": "did not create the task",
                    "hint": "Call create_task with the user's id and the title they gave.",
                }
                for turn in trajectory.turns
            ]
        }
    )
    with self_reflector(ScriptedChatModel(responses=[AIMessage(reply)])) as reflector:
        (result,) = reflector.reflect([trajectory])
    assert result.ok, result.error
    diagnosed = tmp_path / "diagnosed.jsonl"
    write_trajectories(diagnosed, [result.trajectory])

    out = tmp_path / "out"
    outcome = run(
        str(diagnosed), "--model", "default", "--out", str(out),
        "--max-steps", "1", "--learning-rate", "1e-3",
    )  # fmt: skip

    assert outcome.exit_code == 0, outcome.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["input"]["captured_turns"] == len(trajectory.turns)
    base = AutoModelForCausalLM.from_pretrained(default_model_path()).eval()
    ids = torch.tensor([trajectory.turns[-1].tokens.prompt_token_ids])
    with torch.no_grad():
        before = base(input_ids=ids).logits[0, -1]
        after = PeftModel.from_pretrained(base, out / "adapter")(input_ids=ids).logits[0, -1]
    assert not torch.allclose(before, after, atol=1e-4)


def test_distill_rejects_an_unknown_teacher(tiny_model_dir: Path, tmp_path: Path) -> None:
    diagnosed = tmp_path / "diagnosed.jsonl"
    write_trajectories(diagnosed, [tool_conversation()])
    result = run(
        str(diagnosed), "--model", str(tiny_model_dir), "--teacher", "oracle",
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "teacher_model_kind must be one of live, ema, base; got 'oracle'" in flat(result)


def test_distill_seq_kd_is_refused_with_grpo(tiny_model_dir: Path, tmp_path: Path) -> None:
    diagnosed = tmp_path / "diagnosed.jsonl"
    write_trajectories(diagnosed, [tool_conversation()])
    result = run(
        str(diagnosed), "--model", str(tiny_model_dir), "--signal", "grpo", "--seq-kd",
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "seq_kd replaces sampled actions, which the GRPO term needs" in flat(result)
    assert not (tmp_path / "o").exists()


def test_distill_seq_kd_reports_the_turns_scored_on_teacher_actions(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    diagnosed = tmp_path / "diagnosed.jsonl"
    write_trajectories(diagnosed, [tool_conversation()])
    out = tmp_path / "out"
    result = run(
        str(diagnosed), "--model", str(tiny_model_dir), "--seq-kd", "--max-steps", "1",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads((out / "hero_config.json").read_text())["seq_kd"] is True
    # The random tiny model never ends an action within the budget: every turn keeps its own.
    assert metrics["input"]["teacher_action_turns"] == 0
