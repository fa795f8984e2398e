"""The warm start: a short supervised stage on demonstrations of train-split tasks.

HERO is for the regime where successful rollouts are rare but not absent. An off-the-shelf
small instruct model may never call a tool at all (SmolLM2-135M on tau2's mock domain), which
gives every method nothing to learn from. The warm start fine-tunes it with TRL's `SFTTrainer`
on a few steps of correct episodes of *train* tasks (the environment's `demonstrations`), so
that it calls tools in the right syntax and sometimes succeeds. Held-out tasks are never used.

Each demonstration is tokenized exactly as the policy sees its turns at inference (the same
chat template and per-turn rendering the distillation trainer uses), packed into one sequence
per episode, and trained on the policy's own actions only (labels -100 elsewhere: the system
prompt, the task, tool results, and any earlier exchange the task starts from).
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hero_agents.cache import build_once, hero_cache_dir
from hero_agents.device import resolve_device
from hero_agents.environment import DemonstrationSource, Environment
from hero_agents.errors import ConfigError
from hero_agents.phases import Progress, no_progress
from hero_agents.phases.distill import report_steps
from hero_agents.trajectory import Trajectory

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
"""Label of tokens that carry no loss (as in transformers)."""


@dataclass(frozen=True)
class WarmupSummary:
    """What a warm start trained on and how its loss went."""

    demonstrations: int
    action_tokens: int
    tokens: int
    steps: int
    first_loss: float | None
    last_loss: float | None
    seconds: float


def sft_rows(trajectories: Sequence[Trajectory], tokenizer: Any) -> list[dict[str, list[int]]]:
    """One packed row per demonstration: ``input_ids`` and ``labels`` (actions only)."""
    from hero_agents.distill.examples import student_examples, student_sequences

    examples = student_examples(trajectories, tokenizer)
    rows = []
    for example in examples:
        for sequence in student_sequences(example, pack=True):
            labels = [IGNORE_INDEX] * len(sequence.input_ids)
            for start, length in sequence.spans:
                labels[start : start + length] = sequence.input_ids[start : start + length]
            rows.append({"input_ids": list(sequence.input_ids), "labels": labels})
    return rows


def warm_start(
    model: str | Path,
    demonstrations: Sequence[Trajectory],
    out: Path,
    *,
    steps: int,
    learning_rate: float = 5e-5,
    batch_size: int = 1,
    seed: int = 0,
    device: str = "auto",
    progress: Progress = no_progress,
) -> WarmupSummary:
    """Fully fine-tune `model` for `steps` optimizer steps on `demonstrations`; save the result
    (weights and tokenizer) to `out` and return a summary (also written to
    ``out/warmup.json``)."""
    import time

    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    if steps < 1:
        raise ConfigError(f"warmup steps must be at least 1, got {steps}")
    if not demonstrations:
        raise ConfigError("the warm start has no demonstrations to train on")
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model)
    rows = sft_rows(demonstrations, tokenizer)
    random.Random(seed).shuffle(rows)
    on_gpu = resolve_device(device).type == "cuda"
    scratch = Path(tempfile.mkdtemp(prefix="hero-warmup-"))  # the trainer's own output
    config = SFTConfig(
        output_dir=str(scratch),
        max_steps=steps,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        per_device_train_batch_size=batch_size,
        max_length=None,  # rows are whole episodes; never cut one
        use_cpu=not on_gpu,
        bf16=on_gpu and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=False,
        save_strategy="no",
        report_to="none",
        logging_steps=1,
        disable_tqdm=True,
        seed=seed,
        dataset_num_proc=None,
    )
    trainer = SFTTrainer(
        # fp32 on a CPU; on a GPU the checkpoint's dtype, trained in bf16 where supported.
        model=AutoModelForCausalLM.from_pretrained(
            model, dtype="auto" if on_gpu else torch.float32
        ),
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    report_steps(trainer, progress("warm start (SFT)", steps))
    trainer.train()
    shutil.rmtree(scratch, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    summary = WarmupSummary(
        demonstrations=len(demonstrations),
        action_tokens=sum(sum(t != IGNORE_INDEX for t in row["labels"]) for row in rows),
        tokens=sum(len(row["input_ids"]) for row in rows),
        steps=steps,
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        seconds=time.perf_counter() - started,
    )
    (out / "warmup.json").write_text(json.dumps(asdict(summary), indent=2))
    return summary


WARMUP_VERSION = "1"
"""Bumped whenever `warm_start` trains differently; part of the cache key."""


def warm_start_folder(
    base: Path,
    identity: str,
    env: Environment,
    *,
    steps: int,
    learning_rate: float,
    batch_size: int,
    demonstrations: int | None,
    seed: int,
    device: str = "auto",
    progress: Progress = no_progress,
) -> tuple[Path, dict[str, Any]]:
    """The warm-started model of the model folder `base` on `env`'s train demonstrations,
    trained once and cached under ``$HERO_CACHE/warmups`` (every run with the same settings
    shares it). `identity` names the base model in the cache key (a name and version, or a
    folder's path and weights' sizes and dates).

    Returns the model folder and a description (demonstrations, summary, cache folder).
    """
    import hashlib

    if steps == 0:
        return base, {"model": str(base), "warm_start": "none (warmup.steps is 0)"}
    if not isinstance(env, DemonstrationSource):
        raise ConfigError(
            f"{env.name} offers no demonstrations for a warm start: set warmup.steps: 0, or "
            "warmup.model to a model folder warm-started elsewhere"
        )
    train = env.task_ids("train")
    if demonstrations is not None:
        if demonstrations > len(train):
            raise ConfigError(
                f"warmup.demonstrations={demonstrations} but {env.name} has only "
                f"{len(train)} train tasks"
            )
        train = train[:demonstrations]
    settings = {
        "version": WARMUP_VERSION,
        "model": identity,
        "env": env.name,
        "tasks": train,
        "steps": steps,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "seed": seed,
    }
    if resolve_device(device).type != "cpu":  # trained in another precision (CPU keys unchanged)
        settings["device"] = resolve_device(device).type
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    target = hero_cache_dir() / "warmups" / f"{env.name.replace(':', '-')}-{key}"
    info: dict[str, Any] = {"model": str(target), "base_model": str(base), "settings": settings}

    def build(folder: Path) -> None:
        demos = env.demonstrations(train)
        if demos.left_out:
            logger.info("warm start: %d train tasks have no demonstration", len(demos.left_out))
        summary = warm_start(
            base,
            demos.trajectories,
            folder,
            steps=steps,
            learning_rate=learning_rate,
            batch_size=batch_size,
            seed=seed,
            device=device,
            progress=progress,
        )
        (folder / "demonstrations.json").write_text(
            json.dumps(
                {
                    "used": [t.task_id for t in demos.trajectories],
                    "left_out": demos.left_out,
                },
                indent=2,
            )
        )
        logger.info("warm start trained in %.0f s", summary.seconds)

    cached = target.is_dir()
    build_once(target, build)
    info["cached"] = cached
    info["summary"] = json.loads((target / "warmup.json").read_text())
    return target, info
