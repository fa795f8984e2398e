"""Shared helpers of the importer tests: run an import into memory."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hero_agents.adapters.importers import ImportReport, ImportSettings, import_traces
from hero_agents.trajectory import Trajectory

# The sample logs of the production-traces example (not part of the installed package).
sys.path.insert(0, str(Path(__file__).parents[2] / "examples" / "production_traces"))

Result = tuple[dict[str, Trajectory], ImportReport]
Importer = Callable[..., Result]


@pytest.fixture
def run_import() -> Importer:
    """``run_import(format, *paths, **settings)`` → (trajectories by id, report)."""

    def run(
        format_name: str, *paths: Path, **settings: Any
    ) -> tuple[dict[str, Trajectory], ImportReport]:
        trajectories: list[Trajectory] = []
        report = import_traces(
            format_name, list(paths), trajectories.append, ImportSettings(**settings)
        )
        by_id = {trajectory.id: trajectory for trajectory in trajectories}
        assert len(by_id) == len(trajectories), "trajectory ids must be unique"
        return by_id, report

    return run
