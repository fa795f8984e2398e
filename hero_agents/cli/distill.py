"""``hero distill``: train the policy on diagnosed trajectories; save adapter, config and metrics.

Output folder layout::

    OUT/hero_config.json every HeroConfig field of the run (written first: it marks the folder)
    OUT/adapter/         the trained LoRA adapter and tokenizer (OUT/model/ with --full-finetune),
                         renamed into place with its figures (hero_train.json)
    OUT/metrics.json     input summary, final training metrics and the per-step log

Rerunning the same command resumes as the loop does (`hero_agents.phases.distill`): a finished
training is found and kept, a cut one starts over; other settings are refused, naming them.

Works under ``accelerate launch`` (one process per device, DeepSpeed or FSDP from the accelerate
config): only the main process writes the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hero_agents.cli import wiring
from hero_agents.cli.console import console, escape, fail, phase_progress
from hero_agents.distill.examples import SIGNALS
from hero_agents.errors import ConfigError, DistillationError, HeroError, TraceFormatError
from hero_agents.loop.training import changed_settings
from hero_agents.outputs import FolderKind, claim_folder
from hero_agents.phases import Progress, no_progress
from hero_agents.phases.distill import DistillSettings, hero_config
from hero_agents.storage import read_json, read_trajectories, write_json_atomic

DISTILL_FOLDER = FolderKind(
    "distillation folder",
    marker="hero_config.json",
    owned=("adapter", "adapter.partial", "model", "model.partial", "metrics.json", "checkpoints"),
)


def run_distill(
    diagnosed: Path,
    *,
    model: str = "default",
    settings: DistillSettings,
    out: Path,
    overwrite: bool = False,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Train on the trajectories of `diagnosed` and write `out`; returns the metrics written.

    A rerun with the same settings finds a finished training and trains nothing; a training
    that was cut starts over. Raises `HeroError` subclasses for bad input, naming the
    trajectory and turn.
    """
    from hero_agents.phases.distill import distill as train

    if not diagnosed.is_file():
        raise TraceFormatError(f"{diagnosed}: no such trace file")
    model_path = wiring.model_folder(model)
    config = hero_config(settings, output_dir=out / "checkpoints")
    resumed = claim_folder(out, DISTILL_FOLDER, overwrite=overwrite, inputs=[diagnosed])
    saved = json.loads(config.to_json_string())
    if resumed:
        started = read_json(out / DISTILL_FOLDER.marker)
        changed = changed_settings(started, saved)
        changed.pop("output_dir", None)
        if changed:
            lines = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changed.items())
            raise ConfigError(
                f"{out} holds a training with other settings ({lines}): pass --overwrite to "
                "start over, or choose another --out"
            )
    write_json_atomic(out / DISTILL_FOLDER.marker, saved)
    trajectories = read_trajectories(diagnosed)
    if not trajectories:
        raise DistillationError(f"{diagnosed}: no trajectories")
    folder = out / ("adapter" if config.use_peft else "model")
    result = train(str(model_path), trajectories, config, folder, progress=progress)
    if result.trainer is None and (out / "metrics.json").is_file():
        return read_json(out / "metrics.json")  # finished earlier: nothing was trained now
    metrics = {
        "input": {"file": str(diagnosed), "model": str(model_path), "signal": settings.signal}
        | {k: v for k, v in result.figures.items() if k in _INPUT_FIGURES},
        "train": result.figures,
        "log_history": result.trainer.state.log_history if result.trainer else None,
    }
    if result.trainer is None or result.trainer.accelerator.is_main_process:
        write_json_atomic(out / "metrics.json", metrics)
    return metrics


_INPUT_FIGURES = (
    "trajectories",
    "turns",
    "action_tokens",
    "captured_turns",
    "token_drift_turns",
    "teacher_action_turns",
)


def distill(
    diagnosed: Annotated[
        Path, typer.Argument(help="JSONL of diagnosed trajectories (the output of hero reflect).")
    ],
    model: Annotated[
        str, typer.Option(help="Policy to train: 'default' (SmolLM2-135M) or a model folder.")
    ] = "default",
    signal: Annotated[
        str, typer.Option("--signal", "--mode", help=f"Training signal: {', '.join(SIGNALS)}.")
    ] = "hero",
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
    seq_kd: Annotated[
        bool,
        typer.Option(
            help="Distill on the teacher's own greedy action under each note instead of the "
            "sampled action (sequence-level KD; not with a GRPO term)."
        ),
    ] = False,
    full_finetune: Annotated[
        bool, typer.Option(help="Train every weight instead of a LoRA adapter.")
    ] = False,
    epochs: Annotated[float, typer.Option(min=0.0, help="Passes over the trajectories.")] = 1.0,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps (-1: epochs).")] = -1,
    learning_rate: Annotated[
        float | None,
        typer.Option(help="Peak learning rate (default 1e-4 for LoRA, 1e-5 with --full-finetune)."),
    ] = None,
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
    settings = DistillSettings(
        signal=signal,
        loss=loss,
        teacher=teacher,
        learning_rate=learning_rate,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        accumulation=accumulation,
        lora_r=None if full_finetune else 16,
        alpha=alpha,
        topk=topk,
        seed=seed,
        options={"seq_kd": True} if seq_kd else {},
    )
    try:
        if signal not in SIGNALS:
            raise ConfigError(f"--signal {signal!r} is not one of: {', '.join(SIGNALS)}")
        with phase_progress() as progress:
            metrics = run_distill(
                diagnosed,
                model=model,
                settings=settings,
                out=out,
                overwrite=overwrite,
                progress=progress,
            )
    except HeroError as error:
        raise fail(error) from None
    summary = metrics["input"]
    console.print(
        f"trained {signal} on {summary['trajectories']} trajectories, {summary['turns']} turns "
        f"({summary['action_tokens']} action tokens) → {escape(str(out))}"
    )
