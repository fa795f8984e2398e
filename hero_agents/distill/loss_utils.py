"""Pure loss math of the HERO trainer. No model, no trainer state: tensors in, tensors out.

The self-distillation divergences are TRL's (`trl.experimental.sdpo.loss_utils`, shared with
SDFT), imported and dispatched here, never re-implemented. What TRL has no standalone function for
is written out with its math: GRPO's group-normalized advantages and clipped surrogate (inline in
`GRPOTrainer`, not importable on their own).

Shapes: ``N`` action tokens flattened across turns and trajectories, ``V`` the vocabulary. Tensors
are ``(1, N)`` / ``(1, N, V)`` when passed to TRL's helpers, which expect a batch dimension.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import torch
from trl.trainer.utils import selective_log_softmax

with warnings.catch_warnings():  # TRL flags trl.experimental as unstable; we pin trl<1.17
    warnings.filterwarnings("ignore", message=".*trl.experimental.*")
    from trl.experimental.sdpo.loss_utils import (
        apply_importance_sampling_clipping,
        compute_full_logit_self_distillation_loss,
        compute_sampled_token_self_distillation_loss,
        compute_topk_self_distillation_loss,
    )

DistillationMode = Literal["sampled_token", "topk_logits", "full_logits"]

__all__ = [
    "clipped_surrogate_loss",
    "distillation_loss",
    "group_advantages",
    "selective_log_softmax",
]


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    completion_ids: torch.Tensor,
    *,
    mode: DistillationMode,
    alpha: float = 1.0,
    topk: int | None = None,
    add_tail: bool = True,
    behaviour_logps: torch.Tensor | None = None,
    behaviour_mask: torch.Tensor | None = None,
    is_clip: float | None = None,
) -> torch.Tensor:
    """Per-token distillation loss of the student toward a stop-gradient teacher, shape ``(N,)``.

    `student_logits`, `teacher_logits`: ``(N, V)`` at the positions that predict the action
    tokens `completion_ids` ``(N,)``; the teacher is detached here.

    - ``sampled_token``: TRL's reverse-KL surrogate on the sampled token y,
      ``sg(log s(y) - log t(y)) * log s(y)``, whose gradient is the on-policy reverse-KL gradient.
    - ``topk_logits``: ``D_alpha(s || t)`` on the student's top-k support, with a tail bucket for
      the remaining mass when `add_tail` (else the top-k is renormalized).
    - ``full_logits``: ``D_alpha(s || t)`` over the whole vocabulary.

    ``D_alpha`` is TRL's generalized JSD: alpha=0 forward KL(t||s), alpha=1 reverse KL(s||t).

    When `is_clip` is set and `behaviour_logps` ``(N,)`` are given, each token's loss is weighted by
    ``min(exp(log s(y) - log b(y)), is_clip)`` (detached), correcting for the student having moved
    since the behaviour policy sampled y. Tokens where `behaviour_mask` is 0 (no captured
    behaviour log-prob) get weight 1.
    """
    student = student_logits.unsqueeze(0)  # (1, N, V)
    teacher = teacher_logits.detach().unsqueeze(0)
    ids = completion_ids.unsqueeze(0)  # (1, N)
    if mode == "sampled_token":
        per_token = compute_sampled_token_self_distillation_loss(
            student, teacher, ids, distillation_alpha=alpha
        )
    elif mode == "topk_logits":
        if topk is None:
            raise ValueError("mode='topk_logits' needs topk")
        per_token = compute_topk_self_distillation_loss(
            student, teacher, distillation_topk=topk, distillation_alpha=alpha,
            distillation_add_tail=add_tail,
        )  # fmt: skip
    elif mode == "full_logits":
        per_token = compute_full_logit_self_distillation_loss(
            student, teacher, distillation_alpha=alpha
        )
    else:
        raise ValueError(f"unknown distillation mode {mode!r}")
    per_token = per_token.squeeze(0)  # (N,)

    if is_clip is not None and behaviour_logps is not None:
        student_logps = selective_log_softmax(student_logits, completion_ids)  # (N,)
        if behaviour_mask is not None:
            behaviour_logps = torch.where(
                behaviour_mask.bool(), behaviour_logps, student_logps.detach()
            )
        per_token = apply_importance_sampling_clipping(
            per_token, student_logps, behaviour_logps, is_clip
        )
    return per_token


def group_advantages(
    rewards: Sequence[float],
    groups: Sequence[str],
    *,
    scale: Literal["group", "none"] = "group",
    eps: float = 1e-4,
) -> list[float]:
    """GRPO advantages: each reward minus its group's mean, over its group's std when `scale`.

    ``A_i = (r_i - mean_{g(i)}) / (std_{g(i)} + eps)``; the std is the unbiased one, as in TRL's
    `GRPOTrainer`. A group of one rollout has no baseline and gets advantage 0.
    """
    if len(rewards) != len(groups):
        raise ValueError(f"{len(rewards)} rewards for {len(groups)} group labels")
    members: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    advantages = [0.0] * len(rewards)
    for indices in members.values():
        if len(indices) < 2:
            continue
        values = torch.tensor([float(rewards[i]) for i in indices], dtype=torch.float64)
        centred = values - values.mean()
        if scale == "group":
            centred = centred / (values.std() + eps)
        for i, value in zip(indices, centred.tolist(), strict=True):
            advantages[i] = value
    return advantages


def clipped_surrogate_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    *,
    epsilon_low: float,
    epsilon_high: float,
) -> torch.Tensor:
    """PPO/GRPO clipped surrogate per token, shape like `logps`.

    ``ratio = exp(log pi(y) - log pi_old(y))``;
    ``loss = -min(ratio * A, clip(ratio, 1 - epsilon_low, 1 + epsilon_high) * A)``.
    `old_logps` are the behaviour log-probs (detached); `advantages` broadcast per token.
    """
    ratio = torch.exp(logps - old_logps.detach())
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    return -torch.min(ratio * advantages, clipped * advantages)
