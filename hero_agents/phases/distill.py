"""The distillation phase: train the policy on diagnosed (or rewarded) trajectories, save it.

`hero_config` is the one place that turns a command's or a loop's settings into a
`HeroConfig` (the device, precision and the loss defaults that go with each choice), and
`distill` trains and saves: the policy goes to a scratch folder that is renamed into place
with its figures inside (``hero_train.json``), so a killed training leaves nothing half
written and a rerun finds a finished one and returns its figures. ``hero distill`` and the
loop's training both go through them.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hero_agents.device import resolve_device
from hero_agents.errors import ConfigError
from hero_agents.phases import Advance, Progress, no_progress
from hero_agents.storage import read_json, write_json_atomic
from hero_agents.trajectory import Trajectory

logger = logging.getLogger(__name__)

TRAIN_FIGURES = "hero_train.json"
"""The training figures, saved inside the policy folder they describe."""


@dataclass(frozen=True)
class DistillSettings:
    """What a distillation run is asked to do (the choices a user makes)."""

    signal: str = "hero"
    loss: str = "sampled_token"
    teacher: str = "live"
    learning_rate: float | None = None
    """None: 1e-4 for a LoRA adapter, 1e-5 for full fine-tuning."""
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 1
    accumulation: int = 1
    lora_r: int | None = 16
    """None: full fine-tuning."""
    alpha: float | None = None
    """Generalized JSD alpha; None: 1 for sampled_token, 0.5 (SDFT's) for logit losses."""
    topk: int | None = None
    """Support of topk_logits; None: 100 (SDFT's)."""
    turns: str = "all"
    flagged_valid_share: float = 0.0
    seed: int = 0
    device: str = "auto"
    """Where to train: ``auto`` (a CUDA GPU when torch sees one), ``cpu``, ``cuda[:N]``."""
    report_to: Sequence[str] = ()
    options: dict[str, Any] = field(default_factory=dict)
    """Further `HeroConfig` fields, as they are."""


def hero_config(settings: DistillSettings, *, output_dir: Path) -> Any:
    """The `HeroConfig` for `settings` (on a CUDA device, bf16 where supported; on the CPU,
    fp32); a bad setting is a `ConfigError` naming it."""
    import torch

    from hero_agents.distill.config import HeroConfig

    on_gpu = resolve_device(settings.device).type == "cuda"
    options: dict[str, Any] = {
        "output_dir": str(output_dir),
        "signal": settings.signal,
        "distillation_mode": settings.loss,
        "teacher_model_kind": settings.teacher,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.accumulation,
        "use_peft": settings.lora_r is not None,
        "distill_turns": settings.turns,
        "flagged_valid_share": settings.flagged_valid_share,
        "seed": settings.seed,
        "use_cpu": not on_gpu,
        "bf16": on_gpu and torch.cuda.is_bf16_supported(),
        "gradient_checkpointing": False,
        "save_strategy": "no",
        "logging_steps": 1,
        "disable_tqdm": True,
        "report_to": list(settings.report_to) or "none",
    }
    if settings.lora_r is not None:
        options |= {"lora_r": settings.lora_r, "lora_alpha": 2 * settings.lora_r}
    default_rate = 1e-4 if settings.lora_r is not None else 1e-5
    rate = settings.learning_rate
    options["learning_rate"] = default_rate if rate is None else rate
    if settings.alpha is not None:
        options["distillation_alpha"] = settings.alpha
    elif settings.loss != "sampled_token":
        options["distillation_alpha"] = 0.5
    if settings.loss == "topk_logits":
        options["distillation_topk"] = settings.topk or 100
    options |= settings.options
    try:
        return HeroConfig(**options)
    except TypeError as error:  # an unknown field
        raise ConfigError(f"not a HeroConfig setting: {error}") from None
    except ValueError as error:
        raise ConfigError(str(error)) from None


def trainer_steps(trainer: Any) -> int:
    """Optimizer steps `trainer.train()` will take."""
    args = trainer.args
    if args.max_steps > 0:
        return args.max_steps
    per_epoch = math.ceil(len(trainer.train_dataset) / args.gradient_accumulation_steps)
    return math.ceil(per_epoch * args.num_train_epochs)


def report_steps(trainer: Any, advance: Advance) -> None:
    """Replace a trainer's printed logs with one progress tick per optimizer step."""
    from transformers import PrinterCallback, TrainerCallback

    class Ticks(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                advance(f"loss {logs['loss']:.4f}")

    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(Ticks())


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def training_figures(trainer: Any, result: Any) -> dict[str, Any]:
    """Loss, divergence and size of one training, from the trainer's log."""
    log = [row for row in trainer.state.log_history if "loss" in row]
    examples = trainer.train_dataset
    return {
        "steps": trainer.state.global_step,
        "trajectories": len(examples),
        "turns": sum(len(example.turns) for example in examples),
        "action_tokens": sum(len(t.completion_ids) for e in examples for t in e.turns),
        "captured_turns": sum(t.completion_source == "captured" for e in examples for t in e.turns),
        "token_drift_turns": sum(t.drift is not None for e in examples for t in e.turns),
        "teacher_action_turns": sum(
            t.completion_source == "teacher" for e in examples for t in e.turns
        ),
        "loss": _mean([row["loss"] for row in log]),
        "first_loss": log[0]["loss"] if log else None,
        "last_loss": log[-1]["loss"] if log else None,
        "divergence": _mean([row["hero/divergence"] for row in log if "hero/divergence" in row]),
        "grpo_loss": _mean([row["hero/grpo_loss"] for row in log if "hero/grpo_loss" in row]),
        "seconds": result.metrics.get("train_runtime"),
        "learning_rates": [row["learning_rate"] for row in log if "learning_rate" in row],
        **result.metrics,  # the trainer's own summary: train_runtime, train_loss, ...
    }


@dataclass
class Distilled:
    """A finished distillation: its figures, and the trainer (None when it was found done)."""

    figures: dict[str, Any]
    trainer: Any = None


def finished_figures(folder: Path) -> dict[str, Any] | None:
    """The figures of a policy folder that a finished `distill` saved, else None."""
    saved = folder / TRAIN_FIGURES
    return read_json(saved) if saved.is_file() else None


def distill(
    model: Any,
    trajectories: Sequence[Trajectory],
    config: Any,
    out: Path,
    *,
    progress: Progress = no_progress,
    phase: str = "train",
    callbacks: Sequence[Any] = (),
    prepare: Callable[[Any], None] | None = None,
    on_save: Callable[[Path], None] | None = None,
) -> Distilled:
    """Train `model` (a path, or a model carried from an earlier training) on `trajectories`
    with `config`, and save the policy (LoRA adapter or full model) to `out`.

    When `out` already holds a finished training, nothing is trained and its figures are
    returned. Raises `NothingToTrain` when the data select no turn (e.g. targeted training
    with nothing flagged), and `DistillationError` for unusable input, naming it.

    `prepare(trainer)` runs before training (e.g. to hand it a run's optimizer), and
    `on_save(folder)` writes more files into the policy folder before it is renamed into place.
    """
    done = finished_figures(out)
    if done is not None:
        return Distilled(done)
    from hero_agents.distill.trainer import HeroTrainer

    trainer = HeroTrainer(
        model,
        args=config,
        train_dataset=list(trajectories),
        callbacks=list(callbacks) or None,
    )
    if prepare is not None:
        prepare(trainer)
    report_steps(trainer, progress(phase, trainer_steps(trainer)))
    result = trainer.train()
    figures = training_figures(trainer, result)

    scratch = out.with_name(out.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)  # a killed save's leftovers
    trainer.save_policy(scratch)
    if trainer.accelerator.is_main_process:
        if on_save is not None:
            on_save(scratch)
        write_json_atomic(scratch / TRAIN_FIGURES, figures)
        os.replace(scratch, out)
    trainer.accelerator.wait_for_everyone()
    logger.info("saved the trained policy to %s", out)
    return Distilled(figures, trainer)
