"""The rollout phase: episodes of an environment's tasks, each appended to a file as it ends.

Every episode has a stable id (`EpisodeSlot`), so a rerun on the same output skips the episodes
it already holds and runs only the rest: ``hero rollout --append``, ``hero eval --append`` and
the loop's rollouts and evaluations all resume this way. An episode that fails is reported,
never half-recorded; a rerun tries it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from hero_agents.environment import Environment
from hero_agents.errors import ConfigError, HeroError
from hero_agents.phases import Progress, no_progress
from hero_agents.rollout import arun_episode
from hero_agents.storage import TrajectoryWriter, read_whole_lines
from hero_agents.trajectory import Trajectory

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeSlot:
    """One episode to run: its stable id, its task, and which sample of that task it is."""

    id: str
    task_id: str
    sample: int


def task_slots(prefix: str, task_ids: Sequence[str], samples: int) -> list[EpisodeSlot]:
    """`samples` episodes of each task, task by task: ids ``PREFIX-TASK-SAMPLE``."""
    return [
        EpisodeSlot(f"{prefix}-{task}-{sample}", task, sample)
        for task in task_ids
        for sample in range(samples)
    ]


def cycling_slots(prefix: str, task_ids: Sequence[str], episodes: int) -> list[EpisodeSlot]:
    """`episodes` episodes cycling through `task_ids` in order (so ``episodes = k x tasks``
    gives every task k samples; a task listed twice counts twice): ids ``PREFIX-TASK-SAMPLE``,
    a task's samples numbered in order."""
    if not task_ids:
        raise ConfigError("no tasks to run episodes of")
    seen: dict[str, int] = {}
    slots = []
    for position in range(episodes):
        task = task_ids[position % len(task_ids)]
        sample = seen.get(task, 0)
        seen[task] = sample + 1
        slots.append(EpisodeSlot(f"{prefix}-{task}-{sample}", task, sample))
    return slots


@dataclass(frozen=True)
class EpisodeFailure:
    """An episode that raised instead of finishing; nothing of it was recorded."""

    slot: EpisodeSlot
    error: str

    @property
    def task_id(self) -> str:
        return self.slot.task_id


@dataclass
class EpisodeBatch:
    """What a rollout phase produced: trajectories in slot order (including those read back
    from the output), the failures, and how long the new episodes took."""

    trajectories: list[Trajectory]
    failures: list[EpisodeFailure] = field(default_factory=list)
    resumed: int = 0
    """Episodes the output already held, not run again."""
    seconds: float = 0.0


async def arun_episodes(
    env: Environment,
    policy: BaseChatModel,
    slots: Sequence[EpisodeSlot],
    *,
    out: Path | None = None,
    max_turns: int = 10,
    concurrency: int = 1,
    metadata: Mapping[str, Any] | None = None,
    progress: Progress = no_progress,
    phase: str = "rollout",
    fsync: bool = False,
) -> EpisodeBatch:
    """Run the episodes of `slots` that `out` does not hold yet, `concurrency` at once.

    Each scored trajectory gets its slot's id and ``metadata`` plus its ``sample`` number, and
    is appended to `out` (when given) as soon as it ends. Returns every slot's trajectory that
    exists now, in slot order.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    started = time.perf_counter()
    wanted = {slot.id for slot in slots}
    done = {t.id: t for t in read_whole_lines(out) if t.id in wanted} if out else {}
    resumed = len(done)
    todo = [slot for slot in slots if slot.id not in done]
    failures: list[EpisodeFailure] = []
    advance = progress(phase, len(todo))
    gate = asyncio.Semaphore(concurrency)

    async def one(slot: EpisodeSlot, writer: TrajectoryWriter | None) -> None:
        async with gate:
            try:
                trajectory = await arun_episode(env, policy, slot.task_id, max_turns=max_turns)
            except Exception as error:  # reported, never half-recorded; a rerun tries again
                # An error raised on purpose says what is wrong; anything else gets its trace.
                expected = isinstance(error, HeroError)
                logger.warning("episode %s failed: %s", slot.id, error, exc_info=not expected)
                failures.append(EpisodeFailure(slot, f"{type(error).__name__}: {error}"))
                advance(f"failed: {slot.id}")
                return
        trajectory.id = slot.id
        trajectory.metadata.update({**(metadata or {}), "sample": slot.sample})
        if writer is not None:
            writer.write(trajectory)
        done[slot.id] = trajectory
        advance(f"reward {trajectory.reward}")

    if todo:
        if out is None:
            await asyncio.gather(*(one(slot, None) for slot in todo))
        else:
            with TrajectoryWriter(out, fsync=fsync) as writer:
                await asyncio.gather(*(one(slot, writer) for slot in todo))
    order = {slot.id: position for position, slot in enumerate(slots)}
    return EpisodeBatch(
        trajectories=[done[slot.id] for slot in slots if slot.id in done],
        failures=sorted(failures, key=lambda failure: order[failure.slot.id]),
        resumed=resumed,
        seconds=time.perf_counter() - started,
    )


def run_episodes(
    env: Environment,
    policy: BaseChatModel,
    slots: Sequence[EpisodeSlot],
    **options: Any,
) -> EpisodeBatch:
    """Synchronous `arun_episodes` (same options)."""
    return asyncio.run(arun_episodes(env, policy, slots, **options))
