"""Sequence-level KD for hindsight teachers (`HeroConfig.seq_kd`, as TRL GKD's `seq_kd`): on
every turn with a note, the teacher's own greedy action under that note replaces the sampled
action as the completion that student and teacher score.

On-policy self-distillation scores the action the policy sampled. When that action is wrong,
the teacher (reading a note that names the right call) disagrees at the first wrong token, and
on every later token it is asked how it would continue a path it would not have taken. Scoring
the teacher's own action instead teaches the corrected action itself, still as a divergence to
the teacher's distribution at every position. A teacher action that does not end within the
token budget leaves the turn's sampled action in place: a cut-off call is nothing to learn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hero_agents.distill.examples import TrajectoryExample, action_opening_length
from hero_agents.scoring import greedy_continuations

logger = logging.getLogger(__name__)


def use_teacher_actions(
    model: Any,
    examples: Sequence[TrajectoryExample],
    tokenizer: Any,
    *,
    max_new_tokens: int,
    batch_size: int = 8,
) -> int:
    """Replace, in place, the completion of every turn whose teacher reads a note with
    `model`'s greedy continuation of the teacher prompt, up to and including the end-of-turn
    token; return how many turns were replaced. Prompts are generated `batch_size` at a time
    (`scoring.greedy_continuations`, left-padded)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no end-of-turn (eos) token to end a teacher action")
    noted = [
        turn
        for turn in (t for e in examples for t in e.turns)
        if turn.teacher_prompt_ids is not None and turn.teacher_prompt_ids != turn.prompt_ids
    ]  # a turn without a note: the teacher would act as the student did
    noted.sort(key=lambda turn: len(turn.teacher_prompt_ids or ()))  # less padding
    training = model.training
    model.eval()
    replaced = kept = 0
    try:
        for start in range(0, len(noted), batch_size):
            batch = noted[start : start + batch_size]
            actions = greedy_continuations(
                model,
                [list(turn.teacher_prompt_ids or ()) for turn in batch],
                pad_token_id=tokenizer.pad_token_id,
                max_new_tokens=max_new_tokens,
                eos_token_id=eos,
            )
            for turn, action in zip(batch, actions, strict=True):
                if eos not in action:
                    kept += 1
                    continue
                action = action[: action.index(eos) + 1]
                turn.completion_ids = action
                turn.behaviour_logprobs = None
                turn.completion_source = "teacher"
                turn.drift = None
                turn.opening_length = action_opening_length(tokenizer, action)
                replaced += 1
    finally:
        model.train(training)
    if kept:
        logger.warning(
            "seq_kd: %d teacher action(s) did not end within %d tokens; those turns keep their "
            "sampled action",
            kept, max_new_tokens,
        )  # fmt: skip
    return replaced
