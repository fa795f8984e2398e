"""The loop's figures in TensorBoard or Weights & Biases, as ``report_to`` names them.

Each finished iteration's row (the line it adds to metrics.jsonl) is flattened to scalars
(``eval/success_rate``, ``rollout/tokens_per_second``, ``seconds/train``...) and logged at
step = the iteration number. TensorBoard files go to ``RUN_DIR/tensorboard``; a W&B run is
named after the run folder. The trainer's own step logs go to the same places through
``report_to`` of its `HeroConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of an iteration's row, keyed ``section/name`` (pass^k as ``pass_hat_k``)."""
    flat: dict[str, float] = {"rollout_turns_total": float(row.get("rollout_turns_total", 0))}
    for section in ("rollout", "reflect", "train", "eval", "seconds"):
        figures = row.get(section) or {}
        for name, value in figures.items():
            if isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                flat[f"{section}/{name}"] = float(value)
            elif name == "pass_hat_k" and isinstance(value, dict):
                for k, share in value.items():
                    flat[f"{section}/pass_hat_{k}"] = float(share)
    return flat


class MetricsTracker:
    """Sends iteration rows to the ``report_to`` targets (none: does nothing)."""

    def __init__(self, report_to: Sequence[str], run_dir: Path, config: dict[str, Any]) -> None:
        self._writer = None
        self._wandb = None
        if "tensorboard" in report_to:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        if "wandb" in report_to:
            import wandb

            self._wandb = wandb.init(
                project="hero-agents", name=run_dir.name, dir=str(run_dir), config=config
            )

    def log(self, row: dict[str, Any]) -> None:
        step = int(row["iteration"])
        values = scalars(row)
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(name, value, step)
            self._writer.flush()
        if self._wandb is not None:
            self._wandb.log(values, step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._wandb is not None:
            self._wandb.finish()
