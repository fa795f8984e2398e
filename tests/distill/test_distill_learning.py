"""The teacher's hindsight note must move the student, and only an informative note may.

The note-following tiny model (see conftest) answers PREFERRED only when an informative note
says so; without a note, its student gives PREFERRED a log-prob near -5.8. We distill on a turn
whose sampled action is PREFERRED and check, per loss variant and teacher kind, that:

- with the informative diagnosis, the student's log-prob of PREFERRED (no note in its context)
  rises by several nats and its divergence from the informed teacher falls;
- with an uninformative diagnosis, neither moves.

The optimizer is plain SGD: Adam rescales any non-zero gradient to a step of about the learning
rate, so it would move the student even on a near-zero loss and hide what the loss says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from distill_helpers import (
    INFORMATIVE_HINT,
    NOTE_TEMPLATE,
    PREFERRED,
    UNINFORMATIVE_HINT,
    note_contexts,
)
from transformers import AutoModelForCausalLM, AutoTokenizer

from hero_agents.distill import HeroConfig, HeroTrainer
from hero_agents.messages import template_messages
from hero_agents.trajectory import Diagnosis, Message, TokenTrace, Trajectory, Turn

CONTEXT = note_contexts()[0]  # ends with a tool result


def prompt_ids(tokenizer: Any, messages: list[Message]) -> torch.Tensor:
    text = tokenizer.apply_chat_template(
        template_messages(messages), tokenize=False, add_generation_prompt=True
    )
    return torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])


@torch.no_grad()
def next_token_logprobs(model: Any, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids.to(model.device)).logits[0, -1].log_softmax(-1)


def trajectory(tokenizer: Any, model: Any, hint: str) -> Trajectory:
    """One turn whose sampled action is PREFERRED, with the behaviour log-probs of the student
    that sampled it (so the importance-sampling clip is exercised)."""
    completion = tokenizer(PREFERRED + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    ids = prompt_ids(tokenizer, CONTEXT)
    with torch.no_grad():
        logits = model(input_ids=torch.cat([ids, torch.tensor([completion])], 1)).logits[0]
    behaviour = logits[ids.shape[1] - 1 : -1].log_softmax(-1)
    behaviour = behaviour.gather(1, torch.tensor(completion)[:, None])[:, 0].tolist()
    turn = Turn(
        index=0,
        messages=CONTEXT,
        action={"role": "assistant", "content": PREFERRED},
        tokens=TokenTrace(
            prompt_token_ids=ids[0].tolist(),
            completion_token_ids=completion,
            completion_logprobs=behaviour,
        ),
    )
    diagnosis = Diagnosis(
        turn_index=0, necessity="necessary", validity="invalid", hint=hint, reflector="self"
    )
    return Trajectory(id="rare-action", task_id="t", turns=[turn], diagnoses=[diagnosis])


def distill(model_dir: Path, out: Path, hint: str, **config: Any) -> dict[str, float]:
    """Train a few SGD steps on the one-turn trajectory; report the student's log-prob of
    PREFERRED and its reverse KL to the informed teacher (the initial model with the informative
    note), before and after."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    reference = AutoModelForCausalLM.from_pretrained(model_dir)
    note = {"role": "user", "content": NOTE_TEMPLATE.format(hint=INFORMATIVE_HINT)}
    teacher = next_token_logprobs(reference, prompt_ids(tokenizer, [*CONTEXT, note]))
    student_ids = prompt_ids(tokenizer, CONTEXT)
    preferred = tokenizer(PREFERRED, add_special_tokens=False)["input_ids"][0]

    args = HeroConfig(
        output_dir=str(out),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        optim="sgd",
        lr_scheduler_type="constant",
        per_device_train_batch_size=1,
        max_steps=config.pop("max_steps", 8),
        hindsight_note_template=NOTE_TEMPLATE,
        **config,
    )
    trainer = HeroTrainer(
        str(model_dir), args=args, train_dataset=[trajectory(tokenizer, reference, hint)]
    )

    def measure() -> tuple[float, float]:
        student = next_token_logprobs(trainer.model, student_ids)
        kl = torch.sum(student.exp() * (student - teacher)).item()
        return student[preferred].item(), kl

    logprob_before, kl_before = measure()
    trainer.train()
    logprob_after, kl_after = measure()
    history = trainer.state.log_history
    logged = [row["hero/divergence"] for row in history if "hero/divergence" in row]
    return {
        "logprob_before": logprob_before,
        "logprob_after": logprob_after,
        "kl_before": kl_before,
        "kl_after": kl_after,
        "logged_first": logged[0],
        "logged_last": logged[-1],
    }


VARIANTS = {
    "sampled_token": {"distillation_mode": "sampled_token", "learning_rate": 0.3},
    "topk_logits": {
        "distillation_mode": "topk_logits",
        "distillation_topk": 16,
        "distillation_alpha": 0.0,
        "distillation_add_tail": True,
        "learning_rate": 1.0,
    },
    "full_logits-forward_kl": {
        "distillation_mode": "full_logits",
        "distillation_alpha": 0.0,
        "learning_rate": 1.0,
    },
    "full_logits-jsd": {
        # JSD saturates (vanishing gradient) when the distributions are far apart: more steps.
        # Not a larger rate: at 2.0 one SGD step overshoots, the student's log-prob of the
        # sampled token collapses, and the importance-sampling weight then zeroes the loss.
        "distillation_mode": "full_logits",
        "distillation_alpha": 0.5,
        "learning_rate": 0.5,
        "max_steps": 32,
    },
    "sampled_token-live_teacher": {"teacher_model_kind": "live", "learning_rate": 0.3},
    "sampled_token-base_teacher": {"teacher_model_kind": "base", "learning_rate": 0.3},
    "full_logits-full_finetune": {
        "use_peft": False,
        "distillation_mode": "full_logits",
        "distillation_alpha": 0.0,
        "learning_rate": 0.1,
    },
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_informative_diagnosis_raises_the_preferred_token(
    variant: str, note_following_model_dir: Path, tmp_path: Path
) -> None:
    result = distill(note_following_model_dir, tmp_path, INFORMATIVE_HINT, **VARIANTS[variant])

    assert result["logprob_before"] < -4.0  # the student rarely picks it
    assert result["logprob_after"] > result["logprob_before"] + 2.5
    assert result["kl_after"] < 0.5 * result["kl_before"]
    assert abs(result["logged_last"]) < 0.5 * abs(result["logged_first"])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_uninformative_diagnosis_moves_nothing(
    variant: str, note_following_model_dir: Path, tmp_path: Path
) -> None:
    result = distill(note_following_model_dir, tmp_path, UNINFORMATIVE_HINT, **VARIANTS[variant])

    assert abs(result["logprob_after"] - result["logprob_before"]) < 0.25
    assert abs(result["kl_after"] - result["kl_before"]) < 0.25
    assert abs(result["logged_first"]) < 0.05
