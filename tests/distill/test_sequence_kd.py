"""`seq_kd`: turns with a note are scored on the teacher's own greedy action under the note."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from distill_helpers import answering_with, cpu_config, tool_conversation
from transformers import AutoModelForCausalLM

from hero_agents.distill import HeroTrainer, build_examples
from hero_agents.trajectory import Trajectory


def noted(trajectory: Trajectory, *hinted: int) -> Trajectory:
    """The trajectory with a hint on the `hinted` turns only."""
    assert trajectory.diagnoses is not None
    diagnoses = [
        d.model_copy(update={"hint": d.hint if d.turn_index in hinted else ""})
        for d in trajectory.diagnoses
    ]
    return trajectory.model_copy(update={"diagnoses": diagnoses})


def test_noted_turns_are_scored_on_the_teachers_greedy_action(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path
) -> None:
    trajectory = noted(tool_conversation("a", turns=3), 0, 2)
    sampled = build_examples([trajectory], tokenizer)[0].turns
    eos = tokenizer.eos_token_id
    args = cpu_config(tmp_path, seq_kd=True, max_steps=1, teacher_model_kind="base")
    trainer = HeroTrainer(
        answering_with(tiny_model_dir, eos), args=args, train_dataset=[trajectory]
    )

    turns = trainer.train_dataset[0].turns
    assert [t.completion_source for t in turns] == ["teacher", "retokenized", "teacher"]
    assert [t.completion_ids for t in turns] == [[eos], sampled[1].completion_ids, [eos]]
    assert [t.prompt_ids for t in turns] == [t.prompt_ids for t in sampled]
    trainer.train()
    assert trainer.state.global_step == 1


def test_a_teacher_action_cut_off_keeps_the_sampled_action(
    tiny_model_dir: Path, tokenizer: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trajectory = noted(tool_conversation("a", turns=2), 0)
    sampled = build_examples([trajectory], tokenizer)[0].turns
    never_ends = tokenizer.convert_tokens_to_ids("a")
    assert never_ends != tokenizer.eos_token_id
    args = cpu_config(tmp_path, seq_kd=True, seq_kd_max_new_tokens=5)
    with caplog.at_level(logging.WARNING):
        trainer = HeroTrainer(
            answering_with(tiny_model_dir, never_ends), args=args, train_dataset=[trajectory]
        )
    turns = trainer.train_dataset[0].turns
    assert [t.completion_ids for t in turns] == [t.completion_ids for t in sampled]
    assert "1 teacher action(s) did not end within 5 tokens" in caplog.text


@pytest.mark.parametrize("signal", ["grpo", "hero+grpo"])
def test_seq_kd_is_refused_where_grpo_needs_the_sampled_actions(signal: str) -> None:
    with pytest.raises(ValueError, match="seq_kd replaces sampled actions, which the GRPO"):
        cpu_config(Path("unused"), seq_kd=True, signal=signal)


def test_left_padded_batches_generate_what_single_prompts_do(
    tiny_model_dir: Path, tokenizer: Any
) -> None:
    from hero_agents.scoring import greedy_continuations

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    turns = build_examples([tool_conversation("a", turns=4)], tokenizer)[0].turns
    prompts = [list(t.teacher_prompt_ids or ()) for t in turns]
    assert len({len(p) for p in prompts}) == 4  # padding is needed
    options = {"pad_token_id": tokenizer.pad_token_id, "max_new_tokens": 6}
    together = greedy_continuations(model, prompts, **options)
    alone = [greedy_continuations(model, [p], **options)[0] for p in prompts]
    assert together == alone
