"""Step time, FLOP rate and peak memory of one HERO LoRA training step, on the CPU or a GPU.

Trains the default policy (SmolLM2-135M-Instruct) with `HeroTrainer` defaults (mode hero,
sampled-token reverse KL, EMA teacher adapter, LoRA r=16 on every linear layer, one trajectory
per step) on seeded synthetic 8-turn tau2-like tool conversations (the ones of
`distill_packing.py`): fp32 on the CPU, bf16 mixed precision on a GPU that supports it. It
prints the median optimizer-step time over `--steps` steps after one warm-up step, the tokens
each step feeds the student and the teacher, the process's peak resident memory
(``ru_maxrss``) after loading and after training, and on a GPU the peak GPU memory and the
FLOP rate as a share of the GPU's dense bf16 peak.

FLOPs are counted as is usual for transformers (attention left out): 6 x N x tokens for the
student (forward and backward) plus 2 x N x tokens for the teacher (forward only), N being the
policy's parameters. With LoRA most weight gradients are skipped, so the work really done is
nearer 4 x N a student token: the share printed is an upper bound of the usual kind (MFU).

    .venv/bin/python benchmarks/distill_lora_step.py [--model default|tiny|PATH] [--steps 3]
        [--turns 8] [--no-pack] [--threads N] [--device auto|cpu|cuda] [--peak-tflops X]
        [--json FILE]

Run once per setting (peak memory is per process).
"""

from __future__ import annotations

import argparse
import json
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

from hero_agents.device import resolve_device
from hero_agents.distill import HeroConfig, HeroTrainer

BF16_DENSE_PEAK_TFLOPS = (
    ("h200 nvl", 835.0),
    ("h200", 989.0),  # H200 SXM (and GH200): the H100 SXM's tensor cores
    ("h100 nvl", 835.0),
    ("h100 pcie", 756.0),
    ("h100", 989.0),  # H100 SXM
    ("a100", 312.0),
)
"""Dense (no sparsity) bf16 tensor-core peak per GPU, TFLOP/s, from NVIDIA's data sheets; the
first entry whose key is in the lower-cased device name applies."""


def bf16_peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of the GPU called `device_name`, if it is in the table."""
    name = device_name.lower()
    return next((peak for key, peak in BF16_DENSE_PEAK_TFLOPS if key in name), None)


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
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # GPU work is asynchronous: wait for the step's kernels
        self.times.append(time.perf_counter() - self._start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="default, tiny or a model folder")
    parser.add_argument("--steps", type=int, default=3, help="measured steps (after one warm-up)")
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--no-pack", action="store_true", help="score the student per turn")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak, if unlisted"
    )
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    device = resolve_device(options.device)
    on_gpu = device.type == "cuda"

    path = resolve(options.model)
    rng = random.Random(0)
    trajectories = [conversation(i, options.turns, rng) for i in range(options.steps + 1)]
    args = HeroConfig(
        output_dir=tempfile.mkdtemp(prefix="hero-bench-step-"),
        use_cpu=not on_gpu,
        bf16=on_gpu and torch.cuda.is_bf16_supported(),
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
    # The policy: base weights and its own adapter (not the EMA teacher's copy of it).
    policy = sum(p.numel() for n, p in trainer.model.named_parameters() if ".teacher." not in n)
    where = (
        f"GPU {torch.cuda.get_device_name(device)}, {'bf16' if args.bf16 else 'fp32'}"
        if on_gpu
        else f"CPU {platform.processor() or platform.machine()}, fp32, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"model {options.model} ({path}), {policy / 1e6:.1f}M parameters, LoRA "
        f"{trainable / 1e6:.2f}M trainable, {'packed' if args.pack_turns else 'per-turn'} "
        f"student, {options.turns}-turn trajectory per step, "
        f"{logs[-1]['hero/action_tokens']:.0f} action tokens; {where}"
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
    # The measured steps (after the warm-up): 6N per student token, 2N per teacher token.
    measured = logs[1 : len(timer.times)]
    flops = sum(
        6 * policy * row["hero/student_forward_tokens"]
        + 2 * policy * row.get("hero/teacher_forward_tokens", 0)
        for row in measured
    )
    tflops = flops / sum(timer.times[1:]) / 1e12
    figures: dict[str, Any] = {
        "model": options.model,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if on_gpu else where,
        "dtype": "bf16" if args.bf16 else "fp32",
        "parameters": policy,
        "median_step_s": statistics.median(timer.times[1:]),
        "tflops": tflops,
    }
    print(f"FLOP rate: {tflops:.3g} TFLOP/s (6N per student token + 2N per teacher token)")
    if on_gpu:
        figures["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        peak = options.peak_tflops or bf16_peak_tflops(figures["device_name"])
        figures["peak_tflops"] = peak
        figures["peak_share"] = tflops / peak if peak else None
        print(f"peak GPU memory: {figures['peak_gpu_mib']:.0f} MiB")
        if peak:
            print(f"share of the dense bf16 peak ({peak:.0f} TFLOP/s): {tflops / peak:.2%}")
        else:
            print("dense bf16 peak of this GPU unknown: pass --peak-tflops")
    if options.json:
        with open(options.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
