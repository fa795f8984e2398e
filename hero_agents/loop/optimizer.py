"""One optimizer and one learning-rate schedule for a whole run, across iterations and resumes.

A trainer built afresh each iteration would restart its schedule every time (decaying to almost
nothing within each iteration) and forget its AdamW moments. `RunOptimizer` keeps one AdamW
over the adapter's parameters and one schedule over the run's global optimizer steps; it is
handed to each iteration's trainer, and saved beside each iteration's adapter (``optimizer.pt``,
``schedule.json``), so a resumed run continues at the same rate at the same global step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hero_agents.storage import write_json_atomic

OPTIMIZER_FILE = "optimizer.pt"
SCHEDULE_FILE = "schedule.json"


@dataclass(frozen=True)
class LearningRateSchedule:
    """The learning rate at each global optimizer step of a run: a linear warm-up to `peak`
    over `warmup_steps`, then `peak` (``constant``) or a cosine decay to ``floor x peak`` at
    `total_steps` (``cosine``)."""

    peak: float
    total_steps: int
    warmup_steps: int = 0
    shape: Literal["constant", "cosine"] = "constant"
    floor: float = 0.1

    def factor(self, step: int) -> float:
        """The rate at `step` (0-based) as a share of `peak`."""
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.shape == "constant":
            return 1.0
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))

    def rate(self, step: int) -> float:
        return self.peak * self.factor(step)


class RunOptimizer:
    """The run's AdamW and schedule (see the module docstring)."""

    def __init__(self, schedule: LearningRateSchedule, *, weight_decay: float = 0.0) -> None:
        self.schedule = schedule
        self.weight_decay = weight_decay
        self.optimizer: Any = None
        self.scheduler: Any = None
        self._parameters: list[Any] = []

    @property
    def step(self) -> int:
        """Global optimizer steps taken so far."""
        return 0 if self.scheduler is None else int(self.scheduler.last_epoch)

    def attach(self, trainer: Any, *, resume_from: Path | None = None) -> None:
        """Give `trainer` this run's optimizer and schedule (built for its model's trainable
        parameters the first time, and restored from `resume_from` when it holds a saved
        state)."""
        import torch

        parameters = [p for p in trainer.model.parameters() if p.requires_grad]
        same = len(parameters) == len(self._parameters) and all(
            a is b for a, b in zip(parameters, self._parameters, strict=True)
        )
        if self.optimizer is None or not same:
            self._parameters = parameters
            self.optimizer = torch.optim.AdamW(
                parameters, lr=self.schedule.peak, weight_decay=self.weight_decay
            )
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.schedule.factor)
            if resume_from is not None and (resume_from / OPTIMIZER_FILE).is_file():
                self._load(resume_from)
        trainer.optimizer = self.optimizer
        trainer.lr_scheduler = self.scheduler

    def _load(self, folder: Path) -> None:
        import torch

        state = torch.load(folder / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])  # its step, and the rate it set

    def save(self, folder: Path) -> None:
        """Write the optimizer's state and the global step into `folder` (an adapter's)."""
        import torch

        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        torch.save(state, folder / OPTIMIZER_FILE)
        write_json_atomic(
            folder / SCHEDULE_FILE,
            {"step": self.step, "rate": self.schedule.rate(self.step), **vars(self.schedule)},
        )
