"""The HERO distillation trainer: per-turn self-teachers inside multi-turn tool conversations.

`HeroTrainer` trains a policy on diagnosed trajectories (`hero_agents.trajectory.Trajectory`
with ``diagnoses``), configured by `HeroConfig`; ``hero distill`` is `command.distill`. Names
are imported on first use, so that the CLI starts without loading torch and TRL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_SOURCES = {
    "HeroConfig": "config",
    "HeroTrainer": "trainer",
    "action_logits": "trainer",
    "ScoringSequence": "examples",
    "TrajectoryExample": "examples",
    "TurnExample": "examples",
    "build_examples": "examples",
    "student_sequences": "examples",
    "teacher_sequences": "examples",
}

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


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
