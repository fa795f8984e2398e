"""The summary table of `benchmarks/gpu_check.sh`: each step's outcome and the figures against
the GPU path's targets, read from the check's folder. Exit status: 0 when every step passed and
every target was met, 1 when a step failed or left no figures, 2 when a target was missed.

    .venv/bin/python benchmarks/gpu_check_summary.py OUT

OUT holds ``steps.txt`` (one ``NAME RC SECONDS`` line per step), the steps' logs, the
``hero train`` run folder ``train/`` and the benchmarks' ``sampler.json`` and ``lora-step.json``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

CPU_ITERATION_S = {"rollout": 40.0, "reflect": 95.0, "train": 90.0}
"""One HERO iteration of ``hero demo`` (the settings gpu_check.sh trains with) on 2 CPU cores,
in process, as the README reports it (a fresh clone, per iteration: about 40 s of rollouts,
95 s of self-reflection and 90 s of training)."""

LOOP_SPEEDUP_TARGET = 10.0
"""A loop iteration on the GPU at least this many times faster than on 2 CPU cores."""

SAMPLER_RATIO_TARGET = 8.0
"""16 episodes in flight at least this many times the tokens/s of one episode."""

PHASES = ("rollout", "reflect", "train", "sync", "eval")

POLICY_LOADED = re.compile(r"policy .+ loaded on (\S+) \((\S+)\)")
"""The in-process policy's log line (`TransformersChatModel.from_pretrained`)."""


def read_text(path: Path) -> str:
    """The file's text, or "" if it is not there."""
    return path.read_text(errors="replace") if path.is_file() else ""


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def last_line(path: Path) -> str:
    lines = read_text(path).strip().splitlines()
    return lines[-1].strip("= ") if lines else "no output"


class Table:
    """Rows of (check, measured, target, result); remembers failures and missed targets."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self.failed = False
        self.missed = False

    def add(self, check: str, measured: str, target: str = "", result: str = "") -> None:
        self.failed |= result == "FAIL"
        self.missed |= result == "MISS"
        self.rows.append((check, measured, target, result))

    def target(self, check: str, measured: str, value: float, target: float) -> None:
        self.add(check, measured, f">= {target:g}x", "PASS" if value >= target else "MISS")

    def print(self) -> None:
        header = ("check", "measured", "target", "result")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(4)]
        for row in [header, tuple("-" * w for w in widths), *self.rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def steps(out: Path) -> dict[str, tuple[int, int]]:
    """Each step's (return code, seconds), from ``steps.txt``."""
    result = {}
    for line in (out / "steps.txt").read_text().splitlines():
        name, code, seconds = line.split()
        result[name] = (int(code), int(seconds))
    return result


def outcome(table: Table, out: Path, ran: dict[str, tuple[int, int]], name: str, what: str) -> bool:
    if name not in ran:
        table.add(what, "not run", "runs", "FAIL")
        return False
    code, seconds = ran[name]
    summary = last_line(out / f"{name}.log") if code else f"{seconds} s"
    table.add(what, f"rc {code}, {summary}"[:90], "rc 0", "PASS" if code == 0 else "FAIL")
    return code == 0


def training(table: Table, out: Path) -> None:
    run = out / "train"
    match = POLICY_LOADED.search(read_text(run / "log.txt"))
    device = f"{match.group(1)} ({match.group(2)})" if match else "no policy line in log.txt"
    on_cuda = bool(match) and match.group(1).startswith("cuda")
    table.add("policy device (train/log.txt)", device, "cuda", "PASS" if on_cuda else "FAIL")
    metrics = run / "metrics.jsonl"
    rows = [json.loads(line) for line in read_text(metrics).splitlines()]
    iterations = [row for row in rows if row["iteration"] >= 1]
    if not iterations:
        table.add("loop iterations (metrics.jsonl)", "none recorded", "2", "FAIL")
        return
    for row in iterations:
        seconds = row["seconds"]
        phases = " / ".join(f"{seconds[p]:.1f}" if p in seconds else "-" for p in PHASES)
        rate = (row.get("rollout") or {}).get("tokens_per_second")
        table.add(
            f"iteration {row['iteration']}: s per {'/'.join(PHASES)}",
            f"{phases}; rollout {rate:.0f} tokens/s" if rate else phases,
        )
    loop = [sum(row["seconds"].get(p, 0.0) for p in PHASES if p != "eval") for row in iterations]
    gpu_s = sum(loop) / len(loop)
    cpu_s = sum(CPU_ITERATION_S.values())
    table.target(
        "loop iteration (eval aside) vs 2 CPU cores",
        f"{gpu_s:.1f} s vs {cpu_s:.0f} s (README): {cpu_s / gpu_s:.1f}x",
        cpu_s / gpu_s,
        LOOP_SPEEDUP_TARGET,
    )


def sampler(table: Table, figures: dict[str, Any] | None) -> None:
    if figures is None:
        table.add("in-process sampler, 16 vs 1 in flight", "no sampler.json", "", "FAIL")
        return
    one, many = figures["runs"]
    table.target(
        f"in-process sampler, {many['in_flight']} vs 1 in flight",
        f"{one['tokens_per_second']:.0f} -> {many['tokens_per_second']:.0f} tokens/s: "
        f"{figures['ratio']:.1f}x",
        figures["ratio"],
        SAMPLER_RATIO_TARGET,
    )


def lora_step(table: Table, figures: dict[str, Any] | None) -> None:
    if figures is None:
        table.add("LoRA step, default model", "no lora-step.json", "", "FAIL")
        return
    share = figures.get("peak_share")
    peak = figures.get("peak_tflops")
    measured = f"{figures['median_step_s']:.2f} s/step, {figures['tflops']:.1f} TFLOP/s" + (
        f" = {share:.1%} of {peak:.0f} (dense bf16 peak)" if share is not None else ""
    )
    table.add(f"LoRA step, default model, {figures['dtype']}", measured, "reported", "-")


def main() -> None:
    out = Path(sys.argv[1])
    ran = steps(out)
    table = Table()
    outcome(table, out, ran, "gpu-tests", "pytest -m gpu")
    outcome(table, out, ran, "train", "hero train, default model, 2 iterations")
    training(table, out)
    if outcome(table, out, ran, "sampler", "benchmarks/inprocess_batching.py"):
        sampler(table, read_json(out / "sampler.json"))
    if outcome(table, out, ran, "lora-step", "benchmarks/distill_lora_step.py"):
        lora_step(table, read_json(out / "lora-step.json"))
    table.print()
    total = sum(seconds for _, seconds in ran.values())
    print(f"\n{total} s in all; logs and figures in {out}")
    if table.failed:
        print("gpu_check: FAILED (a step failed or left no figures; see its log)")
        sys.exit(1)
    if table.missed:
        print("gpu_check: every step ran, but a target was missed")
        sys.exit(2)
    print("gpu_check: every step passed and every target was met")


if __name__ == "__main__":
    main()
