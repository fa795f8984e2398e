"""The method's phases, each written once: rollout, reflect, distill and evaluate.

Each phase is a resumable function over files: its inputs, an output path, options, a progress
callback, and a summary it returns. The ``hero`` commands (`hero_agents.cli`) and the training
loop (`hero_agents.loop.runner`) both call them, so a phase resumes the same way wherever it
runs: records carry stable ids, files are appended a whole line at a time (a torn last line is
cut by the next writer) or renamed into place, and a rerun skips what its output already holds.
"""

from __future__ import annotations

from collections.abc import Callable

Advance = Callable[[str], None]
"""Called once per finished item, with a short status for the progress bar."""

Progress = Callable[[str, int], Advance]
"""``progress(phase, total)`` starts a progress display and returns its `Advance`."""


def no_progress(phase: str, total: int) -> Advance:
    """A `Progress` that shows nothing."""
    return lambda status: None
