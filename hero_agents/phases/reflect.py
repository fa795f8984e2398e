"""The reflection phase: diagnose every turn of some trajectories, appending each as it is done.

A trajectory is written to the output with its diagnoses as soon as the reflector returns it
(completion order), or recorded in the failures file with the reason; nothing is dropped and
nothing invented. A rerun on the same output skips the trajectories it already holds (and, with
``retry_failed=False``, those already recorded as failed), so ``hero reflect --append`` and the
loop's reflection resume alike; the reflector's reply cache makes calls that were in flight at
an interruption cost nothing the second time.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from hero_agents.phases import Progress, no_progress
from hero_agents.reflection.base import ReflectionSummary, Reflector
from hero_agents.storage import TrajectoryWriter, read_whole_lines
from hero_agents.trajectory import Trajectory


def read_failures(path: Path | None) -> dict[str, str]:
    """Trajectory id -> reason from a failures file; a torn last line (a killed writer's) and
    any line that is not a failure record are skipped."""
    if path is None or not path.is_file():
        return {}
    failures = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            failures[record["id"]] = str(record.get("error"))
    return failures


def _append_failure(path: Path, trajectory_id: str, error: str | None) -> None:
    line = (json.dumps({"id": trajectory_id, "error": error}) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # end a torn line first, so this record stays whole
        os.write(fd, line)
    finally:
        os.close(fd)


def reflect_trajectories(
    reflector: Reflector,
    trajectories: Iterable[Trajectory],
    out: Path,
    *,
    failures: Path | None = None,
    retry_failed: bool = True,
    total: int | None = None,
    progress: Progress = no_progress,
    phase: str = "reflect",
    fsync: bool = False,
    summary: ReflectionSummary | None = None,
) -> ReflectionSummary:
    """Diagnose the `trajectories` that `out` does not hold yet; returns what this call did
    (``skipped`` counts those found done).

    Failed trajectories are appended to `failures` (JSONL ``{"id", "error"}``) when given.
    `total` sizes the progress bar when `trajectories` is a lazy stream. Give a `summary` to
    see what was done so far if the reflector raises (a refused key, a server gone).
    """
    done = {t.id for t in read_whole_lines(out)}
    failed = {} if retry_failed else read_failures(failures)
    summary = summary if summary is not None else ReflectionSummary()
    items = trajectories if isinstance(trajectories, list) else None
    advance = progress(phase, total if total is not None else len(items or []))

    def todo() -> Iterator[Trajectory]:
        for trajectory in trajectories:
            if trajectory.id in done or trajectory.id in failed:
                summary.skipped += 1
                advance("already done")
            else:
                yield trajectory

    async def run(writer: TrajectoryWriter) -> None:
        async for result in reflector.astream(todo()):
            summary.add(result)
            if result.ok:
                writer.write(result.trajectory)
                advance("cached" if result.cached else f"{summary.usage.calls} calls")
            else:
                if failures is not None:
                    _append_failure(failures, result.trajectory.id, result.error)
                advance(f"not diagnosed: {result.trajectory.id}")

    with TrajectoryWriter(out, fsync=fsync) as writer:
        asyncio.run(run(writer))
    return summary


def diagnosed_in_order(out: Path, trajectories: Iterable[Trajectory]) -> list[Trajectory]:
    """The diagnosed versions of `trajectories` that `out` holds, in their order."""
    diagnosed = {t.id: t for t in read_whole_lines(out)}
    return [diagnosed[t.id] for t in trajectories if t.id in diagnosed]
