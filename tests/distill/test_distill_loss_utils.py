"""The pure loss math: dispatch to TRL's divergences, importance clipping, GRPO pieces."""

from __future__ import annotations

import math

import pytest
import torch

from hero_agents.distill.loss_utils import (
    clipped_surrogate_loss,
    compute_topk_self_distillation_loss,
    distillation_loss,
    group_advantages,
)


def _logits(seed: int, n: int = 5, vocab: int = 11) -> torch.Tensor:
    return torch.randn(n, vocab, generator=torch.Generator().manual_seed(seed))


def test_distillation_loss_is_trls_divergence_per_token() -> None:
    student, teacher = _logits(0), _logits(1)
    ids = torch.tensor([1, 2, 3, 4, 5])
    topk = distillation_loss(student, teacher, ids, mode="topk_logits", alpha=0.5, topk=4)
    expected = compute_topk_self_distillation_loss(
        student[None], teacher[None], distillation_topk=4, distillation_alpha=0.5,
        distillation_add_tail=True,
    )[0]  # fmt: skip
    torch.testing.assert_close(topk, expected)

    reverse_kl = distillation_loss(student, teacher, ids, mode="full_logits", alpha=1.0)
    s, t = student.log_softmax(-1), teacher.log_softmax(-1)
    torch.testing.assert_close(reverse_kl, (s.exp() * (s - t)).sum(-1))

    sampled = distillation_loss(student, teacher, ids, mode="sampled_token")
    s_y, t_y = s.gather(1, ids[:, None])[:, 0], t.gather(1, ids[:, None])[:, 0]
    torch.testing.assert_close(sampled, (s_y - t_y) * s_y)


def test_the_teacher_gets_no_gradient() -> None:
    student, teacher = _logits(0).requires_grad_(), _logits(1).requires_grad_()
    ids = torch.tensor([0, 1, 2, 3, 4])
    for mode in ("sampled_token", "full_logits"):
        alpha = 1.0
        distillation_loss(student, teacher, ids, mode=mode, alpha=alpha).sum().backward()
    assert teacher.grad is None and student.grad is not None


def test_importance_weight_is_clipped_and_only_where_behaviour_is_known() -> None:
    student, teacher = _logits(0), _logits(1)
    ids = torch.tensor([0, 1, 2, 3, 4])
    plain = distillation_loss(student, teacher, ids, mode="sampled_token")
    student_logps = student.log_softmax(-1).gather(1, ids[:, None])[:, 0]
    behaviour = student_logps - torch.tensor([0.0, math.log(1.5), math.log(10.0), 5.0, 0.0])
    known = torch.tensor([1, 1, 1, 0, 1])
    weighted = distillation_loss(
        student, teacher, ids, mode="sampled_token",
        behaviour_logps=behaviour, behaviour_mask=known, is_clip=2.0,
    )  # fmt: skip
    torch.testing.assert_close(weighted, plain * torch.tensor([1.0, 1.5, 2.0, 1.0, 1.0]))


def test_group_advantages_normalize_within_each_group() -> None:
    advantages = group_advantages([1.0, 0.0, 3.0, 3.0, 7.0], ["a", "a", "b", "b", "c"])
    assert advantages[0] == pytest.approx(0.5 / (math.sqrt(0.5) + 1e-4))  # unbiased std
    assert advantages[1] == pytest.approx(-advantages[0])
    assert advantages[2:] == [0.0, 0.0, 0.0]  # no spread; a group of one has no baseline
    centred = group_advantages([1.0, 0.0], ["a", "a"], scale="none")
    assert centred == [0.5, -0.5]


def test_clipped_surrogate_stops_pushing_past_the_clip() -> None:
    old = torch.zeros(4)
    logps = torch.log(torch.tensor([1.0, 1.5, 0.5, 0.5])).requires_grad_()
    advantages = torch.tensor([1.0, 1.0, -1.0, 1.0])
    loss = clipped_surrogate_loss(logps, old, advantages, epsilon_low=0.2, epsilon_high=0.2)
    torch.testing.assert_close(loss.detach(), torch.tensor([-1.0, -1.2, 0.8, -0.5]))
    loss.sum().backward()
    # beyond the clip in the advantage's direction: no gradient; otherwise -A * ratio
    torch.testing.assert_close(logps.grad, torch.tensor([-1.0, 0.0, 0.0, -0.5]))
