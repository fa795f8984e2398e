"""The trainer's step on the real tiny model: masks, packing, modes, teachers, saving."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from distill_helpers import cpu_config, tool_conversation, with_tokens
from peft import PeftModel
from transformers import AutoModelForCausalLM

from hero_agents.distill import (
    HeroTrainer,
    action_logits,
    build_examples,
    student_sequences,
    teacher_sequences,
)
from hero_agents.distill.loss_utils import (  # TRL's own helpers, as imported there
    compute_full_logit_self_distillation_loss,
    compute_sampled_token_self_distillation_loss,
)


def test_scored_positions_are_exactly_the_action_tokens(tokenizer: Any) -> None:
    example = build_examples([tool_conversation(turns=6)], tokenizer)[0]
    completions = [t for turn in example.turns for t in turn.completion_ids]
    for rows in (student_sequences(example, pack=True), teacher_sequences(example)):
        predicted = [row.input_ids[p + 1] for row in rows for p in row.logit_positions()]
        assert predicted == completions
        for row in rows:  # no prompt, tool-result or note token is a target
            targets = {p + 1 for p in row.logit_positions()}
            spans = {p for start, n in row.spans for p in range(start, start + n)}
            assert targets == spans


@torch.no_grad()
def test_packed_scoring_equals_per_turn_scoring(tiny_model_dir: Path, tokenizer: Any) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    examples = build_examples(
        [tool_conversation("a", turns=8), tool_conversation("b", turns=3)], tokenizer
    )
    pad = tokenizer.pad_token_id
    packed_rows = [row for e in examples for row in student_sequences(e, pack=True)]
    per_turn_rows = [row for e in examples for row in student_sequences(e, pack=False)]
    assert len(packed_rows) == 2 and len(per_turn_rows) == 11

    packed = action_logits(model, packed_rows, pad_token_id=pad)
    per_turn = action_logits(model, per_turn_rows, pad_token_id=pad)
    # one left-padded forward over all rows, as under DDP / FSDP / DeepSpeed
    packed_batch = action_logits(model, packed_rows, pad_token_id=pad, one_forward=True)
    per_turn_batch = action_logits(model, per_turn_rows, pad_token_id=pad, one_forward=True)
    full = action_logits(model, packed_rows, pad_token_id=pad, supports_logits_to_keep=False)

    assert packed.shape == (sum(len(t.completion_ids) for e in examples for t in e.turns), 686)
    for other in (per_turn, packed_batch, per_turn_batch, full):
        torch.testing.assert_close(packed, other, atol=1e-4, rtol=1e-4)


def test_disagreement_distils_only_where_the_note_changes_the_likeliest_token(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path
) -> None:
    trajectories = [tool_conversation("a", turns=4), tool_conversation("b", turns=2)]
    args = cpu_config(
        tmp_path,
        distillation_mode="full_logits",
        distillation_alpha=0.5,
        teacher_model_kind="live",
        use_peft=False,
        distill_positions="disagreement",
    )
    trainer = HeroTrainer(str(tiny_model_dir), args=args, train_dataset=trajectories)
    model = trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(model, trainer.train_dataset)
        everywhere = _reference_loss(model, tokenizer, trainer.train_dataset, "full_logits")
        reference = _reference_loss(
            model, tokenizer, trainer.train_dataset, "full_logits", disagreement=True
        )
    share = float(trainer._metrics["eval"]["hero/distilled_share"][-1])
    assert 0.0 < share < 1.0  # the note changes some decisions, not all
    torch.testing.assert_close(loss, reference, atol=1e-5, rtol=1e-4)
    assert not torch.isclose(loss, everywhere)


def _reference_loss(
    model: Any, tokenizer: Any, examples: list[Any], mode: str, *, disagreement: bool = False
) -> torch.Tensor:
    """The distillation loss computed the plain way: one full forward per turn, all logits,
    then the action positions sliced out (with `disagreement`, only the positions where the
    teacher's likeliest token is not the student's)."""
    students, teachers, ids = [], [], []
    for turn in (t for e in examples for t in e.turns):
        n = len(turn.completion_ids)
        for prompt, out in ((turn.prompt_ids, students), (turn.teacher_prompt_ids, teachers)):
            logits = model(input_ids=torch.tensor([prompt + turn.completion_ids])).logits[0]
            out.append(logits[len(prompt) - 1 : len(prompt) - 1 + n])
        ids += turn.completion_ids
    student, teacher = torch.cat(students)[None], torch.cat(teachers)[None]
    completion = torch.tensor([ids])
    if mode == "sampled_token":
        per_token = compute_sampled_token_self_distillation_loss(
            student, teacher, completion, distillation_alpha=1.0
        )
    else:
        per_token = compute_full_logit_self_distillation_loss(
            student, teacher, distillation_alpha=0.5
        )
    if disagreement:
        return per_token[student.argmax(-1) != teacher.argmax(-1)].mean()
    return per_token.mean()


@pytest.mark.parametrize("mode", ["sampled_token", "full_logits"])
def test_loss_is_the_mean_over_action_tokens_only(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path, mode: str
) -> None:
    trajectories = [tool_conversation("a", turns=4), tool_conversation("b", turns=2)]
    args = cpu_config(
        tmp_path,
        distillation_mode=mode,
        distillation_alpha=1.0 if mode == "sampled_token" else 0.5,
        teacher_model_kind="live",
        use_peft=False,
    )
    trainer = HeroTrainer(str(tiny_model_dir), args=args, train_dataset=trajectories)
    model = trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(model, trainer.train_dataset)
        reference = _reference_loss(model, tokenizer, trainer.train_dataset, mode)
    torch.testing.assert_close(loss, reference, atol=1e-5, rtol=1e-4)


def _tasks(reflector: str | None, tokenizer: Any) -> list[Any]:
    """Two tasks, two rollouts each with different rewards; captured tokens on one."""
    trajectories = [
        tool_conversation("a1", task_id="a", reward=1.0, reflector=reflector, turns=3),
        tool_conversation("a2", task_id="a", reward=0.0, reflector=reflector, turns=2),
        tool_conversation("b1", task_id="b", reward=0.5, reflector=reflector, turns=2),
        tool_conversation("b2", task_id="b", reward=0.0, reflector=reflector, turns=3),
    ]
    trajectories[0] = with_tokens(trajectories[0], tokenizer)
    return trajectories


MODES = {
    "hero": "openai:gpt-4o-mini",
    "env-feedback": "env-feedback",
    "demo": "demo",
    "grpo": None,
    "hero+grpo": "self",
}


@pytest.mark.parametrize("mode", list(MODES))
def test_each_mode_trains_end_to_end(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path, mode: str
) -> None:
    args = cpu_config(tmp_path, signal=mode, max_steps=2, learning_rate=1e-2)
    trainer = HeroTrainer(
        str(tiny_model_dir), args=args, train_dataset=_tasks(MODES[mode], tokenizer)
    )
    lora = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert lora and all("lora_" in name for name in lora)

    trainer.train()

    logged = [row for row in trainer.state.log_history if "loss" in row]
    assert len(logged) == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in logged)
    moved = [n for n, p in trainer.model.named_parameters() if n in lora and not p.equal(lora[n])]
    assert moved, "no trainable weight changed"
    assert ("hero/divergence" in logged[0]) == (mode != "grpo")
    assert ("hero/grpo_loss" in logged[0]) == ("grpo" in mode)


def test_grpo_advantages_are_normalized_within_each_task(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path
) -> None:
    args = cpu_config(tmp_path, signal="grpo")
    trainer = HeroTrainer(str(tiny_model_dir), args=args, train_dataset=_tasks(None, tokenizer))
    advantages = {e.trajectory_id: e.advantage for e in trainer.train_dataset}
    assert advantages["a1"] == pytest.approx(0.7071, abs=1e-3)
    assert advantages["a2"] == pytest.approx(-0.7071, abs=1e-3)
    assert advantages["b1"] == pytest.approx(0.7071, abs=1e-3)


def test_hero_plus_grpo_blends_the_two_losses(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path
) -> None:
    trajectories = _tasks("self", tokenizer)
    losses = {}
    for mode in ("hero", "grpo", "hero+grpo"):
        args = cpu_config(tmp_path, signal=mode, distillation_weight=0.3, teacher_model_kind="base")
        trainer = HeroTrainer(str(tiny_model_dir), args=args, train_dataset=trajectories)
        model = trainer.model.eval()
        losses[mode] = trainer.compute_loss(model, trainer.train_dataset).item()
    assert losses["hero+grpo"] == pytest.approx(0.3 * losses["hero"] + 0.7 * losses["grpo"])


def test_saved_adapter_loads_back_and_changes_the_policy(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path
) -> None:
    args = cpu_config(tmp_path / "run", max_steps=3, learning_rate=5e-2)  # EMA teacher adapter
    trainer = HeroTrainer(
        str(tiny_model_dir), args=args, train_dataset=[tool_conversation(turns=3)]
    )
    trainer.train()
    assert "teacher" in trainer.model.peft_config
    saved = trainer.save_policy(tmp_path / "adapter")

    assert (saved / "adapter_model.safetensors").exists()
    assert not (saved / "teacher").exists()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.tensor([build_examples([tool_conversation()], tokenizer)[0].turns[1].prompt_ids])
    with torch.no_grad():
        before = base(input_ids=ids).logits
        tuned = PeftModel.from_pretrained(base, saved).eval()
        after = tuned(input_ids=ids).logits
    assert not torch.allclose(before, after, atol=1e-3)


@pytest.mark.parametrize("mode", ["hero", "grpo"])
def test_trains_under_torchrun_with_two_processes(
    tiny_model_dir: Path, tmp_path: Path, mode: str
) -> None:
    """DDP on CPU (gloo), as `accelerate launch` or torchrun start it: both ranks train the
    same steps, their weights stay in sync, and the adapter is saved once."""
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**child_environment(worker.parent), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(  # torchrun, from this interpreter (no console script needed)
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", str(_free_port()),
         str(worker), str(tiny_model_dir), str(tmp_path), mode],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["processes"] == 2 and r["one_forward"] for r in ranks)
    assert len(ranks[0]["losses"]) == 2
    assert ranks[0]["weights_sum"] == pytest.approx(ranks[1]["weights_sum"], rel=1e-6)
    assert ranks[0]["weights_norm"] == pytest.approx(ranks[1]["weights_norm"], rel=1e-6)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()


def child_environment(*first: Path) -> dict[str, str]:
    """Our environment for a Python child process, with `first` then every entry of our own
    ``sys.path`` on its PYTHONPATH: the child imports what this process imports, however it
    found it (the venv, an editable install, PYTHONPATH, pytest's rootdir)."""
    paths = [str(path) for path in first] + [os.path.abspath(path) for path in sys.path if path]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
