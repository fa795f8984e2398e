"""The evaluation phase: episodes of held-out tasks, and the figures every report shows.

It is the rollout phase (`hero_agents.phases.rollout`) at evaluation settings, resumable the
same way, followed by `hero_agents.metrics.episode_figures` over the episodes. ``hero eval``,
``hero warmup``, the loop's held-out evaluations and ``hero compare``'s shared baseline all
evaluate through `evaluate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from hero_agents.environment import Environment
from hero_agents.metrics import episode_figures
from hero_agents.phases import Progress, no_progress
from hero_agents.phases.rollout import EpisodeBatch, EpisodeSlot, run_episodes


@dataclass
class Evaluation:
    """The episodes of an evaluation and their figures (JSON-ready, as metrics.jsonl holds)."""

    batch: EpisodeBatch
    figures: dict[str, Any]


def evaluate(
    env: Environment,
    policy: BaseChatModel,
    slots: Sequence[EpisodeSlot],
    *,
    out: Path | None,
    max_turns: int,
    concurrency: int = 1,
    metadata: Mapping[str, Any] | None = None,
    progress: Progress = no_progress,
    phase: str = "eval",
    fsync: bool = False,
) -> Evaluation:
    """Run (or finish) the episodes of `slots` and measure them; figures include ``failed``
    (episodes that raised) and ``seconds`` (time spent on new episodes)."""
    batch = run_episodes(
        env,
        policy,
        slots,
        out=out,
        max_turns=max_turns,
        concurrency=concurrency,
        metadata=metadata,
        progress=progress,
        phase=phase,
        fsync=fsync,
    )
    figures = episode_figures(batch.trajectories, env)
    figures["failed"] = len(batch.failures)
    figures["seconds"] = batch.seconds
    return Evaluation(batch, figures)
