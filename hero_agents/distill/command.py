"""``hero distill``: train the policy on diagnosed trajectories; save adapter, config and metrics.

Output folder layout::

    OUT/adapter/         the trained LoRA adapter and tokenizer (OUT/model/ with --full-finetune)
    OUT/hero_config.json every HeroConfig field of the run
    OUT/metrics.json     input summary, final training metrics and the per-step log

Works under ``accelerate launch`` (one process per device, DeepSpeed or FSDP from the accelerate
config): only the main process writes the folder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from hero_agents.console import console, fail
from hero_agents.distill.examples import MODES
from hero_agents.errors import ConfigError, DistillationError, HeroError

logger = logging.getLogger(__name__)


def input_summary(examples: list[Any]) -> dict[str, int]:
    """Counts that describe what a run trained on (trajectories, turns, tokens, drift)."""
    turns = [turn for example in examples for turn in example.turns]
    return {
        "trajectories": len(examples),
        "turns": len(turns),
        "action_tokens": sum(len(t.completion_ids) for t in turns),
        "captured_turns": sum(t.completion_source == "captured" for t in turns),
        "token_drift_turns": sum(t.drift is not None for t in turns),
    }


def run_distill(
    diagnosed: Path,
    *,
    model: str = "default",
    mode: str = "hero",
    out: Path,
    overwrite: bool = False,
    progress: bool = True,
    **config: Any,
) -> dict[str, Any]:
    """Train on the trajectories of `diagnosed` and write `out`; returns the metrics written.

    `config` holds further `HeroConfig` fields (``learning_rate``, ``distillation_mode``...).
    Raises `HeroError` subclasses for bad input, naming the trajectory and turn.
    """
    import torch
    from trl.trainer.callbacks import RichProgressCallback

    from hero_agents.adapters.policy.registry import model_folder
    from hero_agents.distill.config import HeroConfig
    from hero_agents.distill.trainer import HeroTrainer
    from hero_agents.storage import read_trajectories

    if mode not in MODES:
        raise ConfigError(f"--mode {mode!r} is not one of: {', '.join(MODES)}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty: pass --overwrite to replace its files")
    trajectories = read_trajectories(diagnosed)
    if not trajectories:
        raise DistillationError(f"{diagnosed}: no trajectories")
    model_path = str(model_folder(model))

    on_gpu = torch.cuda.is_available()
    defaults: dict[str, Any] = {
        "output_dir": str(out / "checkpoints"),
        "use_cpu": not on_gpu,
        "bf16": on_gpu and torch.cuda.is_bf16_supported(),
        "gradient_checkpointing": False,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
    }
    try:
        args = HeroConfig(**{**defaults, **config, "mode": mode})
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    trainer = HeroTrainer(
        model_path,
        args=args,
        train_dataset=trajectories,
        callbacks=[RichProgressCallback()] if progress else None,
    )
    result = trainer.train()

    metrics = {
        "input": {"file": str(diagnosed), "model": model_path, "mode": mode}
        | input_summary(trainer.train_dataset),
        "train": result.metrics,
        "log_history": trainer.state.log_history,
    }
    saved = trainer.save_policy(out / ("adapter" if args.use_peft else "model"))
    if trainer.accelerator.is_main_process:
        (out / "hero_config.json").write_text(args.to_json_string())
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
        logger.info("saved the trained policy to %s", saved)
    return metrics


def distill(
    diagnosed: Annotated[
        Path, typer.Argument(help="JSONL of diagnosed trajectories (the output of hero reflect).")
    ],
    model: Annotated[
        str, typer.Option(help="Policy to train: 'default' (SmolLM2-135M) or a model folder.")
    ] = "default",
    mode: Annotated[str, typer.Option(help=f"Training signal: {', '.join(MODES)}.")] = "hero",
    out: Annotated[
        Path, typer.Option(help="Output folder (adapter/ or model/, hero_config.json, metrics).")
    ] = Path("distill-out"),
    loss: Annotated[
        str, typer.Option(help="Distillation loss: sampled_token, topk_logits or full_logits.")
    ] = "sampled_token",
    alpha: Annotated[
        float | None, typer.Option(help="Generalized JSD alpha (0 forward KL, 1 reverse KL).")
    ] = None,
    topk: Annotated[int | None, typer.Option(help="Support size for topk_logits.")] = None,
    teacher: Annotated[str, typer.Option(help="Teacher: ema, live or base.")] = "ema",
    full_finetune: Annotated[
        bool, typer.Option(help="Train every weight instead of a LoRA adapter.")
    ] = False,
    epochs: Annotated[float, typer.Option(help="Passes over the trajectories.")] = 1.0,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps (-1: epochs).")] = -1,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Trajectories per device per micro-step.")
    ] = 1,
    accumulation: Annotated[
        int, typer.Option(min=1, help="Micro-steps per optimizer step (gradient accumulation).")
    ] = 1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    overwrite: Annotated[bool, typer.Option(help="Replace files in an existing --out.")] = False,
) -> None:
    """Distill per-turn hindsight teachers into the policy; save the adapter, config, metrics."""
    config: dict[str, Any] = {
        "distillation_mode": loss,
        "teacher_model_kind": teacher,
        "use_peft": not full_finetune,
        "num_train_epochs": epochs,
        "max_steps": max_steps,
        "per_device_train_batch_size": batch_size,
        "gradient_accumulation_steps": accumulation,
        "seed": seed,
    }
    if alpha is not None:
        config["distillation_alpha"] = alpha
    elif loss != "sampled_token":
        config["distillation_alpha"] = 0.5  # SDFT's default for logit distillation
    if topk is not None:
        config["distillation_topk"] = topk
    elif loss == "topk_logits":
        config["distillation_topk"] = 100  # SDFT's default
    if learning_rate is not None:
        config["learning_rate"] = learning_rate
    elif full_finetune:
        config["learning_rate"] = 1e-5
    try:
        metrics = run_distill(
            diagnosed, model=model, mode=mode, out=out, overwrite=overwrite, **config
        )
    except HeroError as error:
        raise fail(error) from None
    summary = metrics["input"]
    console.print(
        f"trained {mode} on {summary['trajectories']} trajectories, {summary['turns']} turns "
        f"({summary['action_tokens']} action tokens) → {out}"
    )
