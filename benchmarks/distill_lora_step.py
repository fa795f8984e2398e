"""Step time and peak memory of one HERO LoRA training step on CPU.

Trains the default policy (SmolLM2-135M-Instruct, fp32) with `HeroTrainer` defaults (mode hero,
sampled-token reverse KL, EMA teacher adapter, LoRA r=16 on every linear layer, one trajectory
per step) on seeded synthetic 8-turn tau2-like tool conversations (the ones of
`distill_packing.py`), and prints the median optimizer-step time over `--steps` steps after one
warm-up step, the tokens each step feeds the student and the teacher, and the process's peak
resident memory (``ru_maxrss``) after loading and after training.

    .venv/bin/python benchmarks/distill_lora_step.py [--model default|tiny|PATH] [--steps 3]
        [--turns 8] [--no-pack] [--threads N]

Run once per setting (peak memory is per process).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import statistics
import tempfile
import time
from typing import Any

import torch
from distill_packing import conversation, resolve
from transformers import TrainerCallback

from hero_agents.distill import HeroConfig, HeroTrainer


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step (forward, backward and optimizer update)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.times.append(time.perf_counter() - self._start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="default, tiny or a model folder")
    parser.add_argument("--steps", type=int, default=3, help="measured steps (after one warm-up)")
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--no-pack", action="store_true", help="score the student per turn")
    parser.add_argument("--threads", type=int, default=None)
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)

    path = resolve(options.model)
    rng = random.Random(0)
    trajectories = [conversation(i, options.turns, rng) for i in range(options.steps + 1)]
    args = HeroConfig(
        output_dir=tempfile.mkdtemp(prefix="hero-bench-step-"),
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        max_steps=options.steps + 1,
        pack_turns=not options.no_pack,
        seed=0,
    )
    timer = StepTimer()
    trainer = HeroTrainer(path, args=args, train_dataset=trajectories, callbacks=[timer])
    loaded = peak_rss_mib()
    trainer.train()
    trained = peak_rss_mib()

    logs = [row for row in trainer.state.log_history if "hero/student_forward_tokens" in row]
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    print(
        f"model {options.model} ({path}), LoRA {trainable / 1e6:.2f}M trainable, "
        f"{'packed' if args.pack_turns else 'per-turn'} student, {options.turns}-turn trajectory "
        f"per step, {logs[-1]['hero/action_tokens']:.0f} action tokens; CPU "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"step time: median {statistics.median(timer.times[1:]):.2f} s over {options.steps} "
        f"steps (warm-up step {timer.times[0]:.2f} s)"
    )
    print(
        f"tokens per step: student {logs[-1]['hero/student_forward_tokens']:.0f}, "
        f"teacher {logs[-1]['hero/teacher_forward_tokens']:.0f}"
    )
    print(
        f"peak RSS: {loaded:.0f} MiB after loading, {trained:.0f} MiB after training "
        f"(+{trained - loaded:.0f} MiB for the steps)"
    )


if __name__ == "__main__":
    main()
