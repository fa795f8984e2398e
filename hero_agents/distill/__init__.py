"""The HERO distillation trainer: per-turn self-teachers inside multi-turn tool conversations.

`HeroTrainer` trains a policy on diagnosed trajectories (`hero_agents.trajectory.Trajectory`
with ``diagnoses``), configured by `HeroConfig`; ``hero distill`` is `command.distill`.
"""

from hero_agents.distill.config import HeroConfig
from hero_agents.distill.examples import (
    ScoringSequence,
    TrajectoryExample,
    TurnExample,
    build_examples,
    student_sequences,
    teacher_sequences,
)
from hero_agents.distill.trainer import HeroTrainer, action_logits

__all__ = [
    "HeroConfig",
    "HeroTrainer",
    "ScoringSequence",
    "TrajectoryExample",
    "TurnExample",
    "action_logits",
    "build_examples",
    "student_sequences",
    "teacher_sequences",
]
