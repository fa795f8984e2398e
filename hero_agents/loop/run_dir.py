"""The layout of a training run's folder, and the atomic writes that make it resumable.

::

    RUN_DIR/
      config.yaml                 the settings the run was started with (a rerun must match)
      warmup.json                 which warm-started model the run starts from, and its summary
      log.txt                     the run's log
      metrics.jsonl               one line per finished iteration (0 = the warm start's eval)
      iterations/0003/
        rollouts.jsonl            training episodes, appended as each finishes
        diagnosed.jsonl           the same with diagnoses, appended as each is reflected
        reflect_failures.jsonl    trajectories the reflector could not diagnose, with the reason
        adapter/                  the policy after this iteration's training (renamed into place)
        eval.jsonl                held-out episodes, appended as each finishes
        metrics.json              the iteration's figures; written last, it marks it finished

Every JSONL file is appended one whole line at a time (a killed writer's torn line is cut by
the next writer); every other file is written to a temporary name and renamed. A rerun skips
what a file already holds, keyed by stable trajectory ids, so nothing is lost or done twice.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hero_agents.errors import ConfigError
from hero_agents.storage import TrajectoryWriter, iter_trajectories
from hero_agents.trajectory import Trajectory


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def recorded(path: Path) -> list[Trajectory]:
    """The whole trajectories in a JSONL file (a torn last line is cut first); [] if none."""
    if not path.exists():
        return []
    with TrajectoryWriter(path):  # cuts a torn tail left by a killed writer
        pass
    return list(iter_trajectories(path))


class RunDir:
    """Paths of one run's folder (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def warmup(self) -> Path:
        return self.root / "warmup.json"

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    def iteration(self, number: int) -> Path:
        return self.root / "iterations" / f"{number:04d}"

    def rollouts(self, number: int) -> Path:
        return self.iteration(number) / "rollouts.jsonl"

    def diagnosed(self, number: int) -> Path:
        return self.iteration(number) / "diagnosed.jsonl"

    def reflect_failures(self, number: int) -> Path:
        return self.iteration(number) / "reflect_failures.jsonl"

    def adapter(self, number: int) -> Path:
        return self.iteration(number) / "adapter"

    def eval(self, number: int) -> Path:
        return self.iteration(number) / "eval.jsonl"

    def iteration_metrics(self, number: int) -> Path:
        return self.iteration(number) / "metrics.json"

    def finished(self, number: int) -> bool:
        return self.iteration_metrics(number).is_file()

    def latest_adapter(self, before: int) -> tuple[int, Path] | None:
        """The newest saved adapter of an iteration before `before`, if any."""
        for number in range(before - 1, 0, -1):
            if self.adapter(number).is_dir():
                return number, self.adapter(number)
        return None

    def save_adapter(self, number: int, save: Any) -> Path:
        """Run ``save(folder)`` into a scratch folder, then rename it to the iteration's
        adapter: a killed save leaves no half-written adapter."""
        target = self.adapter(number)
        scratch = target.with_name("adapter.partial")
        shutil.rmtree(scratch, ignore_errors=True)
        save(scratch)
        os.replace(scratch, target)
        return target

    def write_metrics_file(self) -> list[dict[str, Any]]:
        """Rebuild metrics.jsonl from the finished iterations' metrics.json (atomically)."""
        rows = []
        folder = self.root / "iterations"
        for path in sorted(folder.glob("*/metrics.json")) if folder.is_dir() else []:
            rows.append(read_json(path))
        text = "".join(json.dumps(row, default=str) + "\n" for row in rows)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".metrics.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, self.metrics)
        return rows


def read_metrics(root: Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl (one per finished iteration)."""
    path = RunDir(root).metrics
    if not path.is_file():
        raise ConfigError(f"{root} is not a training run folder (no metrics.jsonl)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
