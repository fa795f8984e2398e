"""The layout of a training run's folder, and the atomic writes that make it resumable.

::

    RUN_DIR/
      config.yaml                 the settings the run was started with (a rerun must match)
      run.json                    the run's id (keys its reflection cache) and when it started
      warmup.json                 which warm-started model the run starts from, and its summary
      log.txt                     the run's log
      metrics.jsonl               one line per finished iteration (0 = the warm start's eval)
      iterations/0003/
        rollouts.jsonl            training episodes, appended as each finishes
        diagnosed.jsonl           the same with diagnoses, appended as each is reflected
        reflect_failures.jsonl    trajectories the reflector could not diagnose, with the reason
        adapter/                  the policy after this iteration's training (renamed into place)
        eval.jsonl                held-out episodes, appended as each finishes
        seconds.json              seconds spent per phase so far, over every process
        metrics.json              the iteration's figures; written last, it marks it finished

Every JSONL file is appended one whole line at a time (a killed writer's torn line is cut by
the next writer); every other file is written to a temporary name and renamed. A rerun skips
what a file already holds, keyed by stable trajectory ids, so nothing is lost or done twice.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from hero_agents.errors import ConfigError
from hero_agents.outputs import FolderKind
from hero_agents.storage import read_json, write_json_atomic

RUN_FOLDER = FolderKind(
    "run folder",
    marker="config.yaml",
    owned=(
        "run.json",
        "warmup.json",
        "log.txt",
        "metrics.jsonl",
        ".metrics.*.tmp",
        "iterations",
        "report",
        "tensorboard",
        "wandb",
        "vllm-server.log",
        "eval.jsonl",
        "eval.json",
    ),
)
"""What a run folder holds (``hero warmup`` writes its evaluation into one too)."""

COMPARE_FOLDER = FolderKind(
    "comparison folder",
    marker="compare.yaml",
    owned=("log.txt", "warm-start", "results.md", "compare-*.png"),
)
"""A ``hero compare`` folder: one run folder per arm and seed beside these."""


class RunDir:
    """Paths of one run's folder (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def run_info(self) -> Path:
        return self.root / "run.json"

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

    def seconds(self, number: int) -> Path:
        return self.iteration(number) / "seconds.json"

    def iteration_metrics(self, number: int) -> Path:
        return self.iteration(number) / "metrics.json"

    def finished(self, number: int) -> bool:
        return self.iteration_metrics(number).is_file()

    def run_id(self) -> str:
        """The run's id, made when the folder was set up (a new one after ``--overwrite``)."""
        if not self.run_info.is_file():
            write_json_atomic(
                self.run_info, {"id": os.urandom(8).hex(), "started": time.strftime("%FT%T%z")}
            )
        return str(read_json(self.run_info)["id"])

    def record(self, **facts: Any) -> None:
        """Add facts about this process to run.json (where the policy runs, ...)."""
        self.run_id()
        write_json_atomic(self.run_info, {**read_json(self.run_info), **facts})

    def latest_adapter(self, before: int) -> tuple[int, Path] | None:
        """The newest saved adapter of an iteration before `before`, if any."""
        for number in range(before - 1, 0, -1):
            if self.adapter(number).is_dir():
                return number, self.adapter(number)
        return None

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


class PhaseClock:
    """Seconds spent per phase of one iteration, kept in ``seconds.json`` across processes:
    each `tick` adds the time since the last one, so a killed process loses at most the time
    since its last finished item."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.totals: dict[str, float] = read_json(path) if path.is_file() else {}
        self._phase: str | None = None
        self._since = 0.0

    def start(self, phase: str) -> None:
        self._phase, self._since = phase, time.perf_counter()
        self.totals.setdefault(phase, 0.0)

    def tick(self) -> None:
        if self._phase is None:
            return
        now = time.perf_counter()
        self.totals[self._phase] += now - self._since
        self._since = now
        write_json_atomic(self.path, self.totals)

    def stop(self) -> float:
        """End the phase; returns its total over every process."""
        self.tick()
        phase, self._phase = self._phase, None
        return self.totals.get(phase or "", 0.0)


def read_metrics(root: Path) -> list[dict[str, Any]]:
    """The rows of a run's metrics.jsonl (one per finished iteration)."""
    path = RunDir(root).metrics
    if not path.is_file():
        raise ConfigError(f"{root} is not a training run folder (no metrics.jsonl)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
