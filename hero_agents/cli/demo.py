"""``hero demo``: the whole method on the embedded default, on a CPU, in minutes.

SmolLM2-135M-Instruct in process on tau2-bench's mock domain: the warm start, held-out
evaluation (success with its 95% interval, and the reference log-likelihood as a low-variance
learning curve), a small budget of HERO iterations, evaluation again, a before/after table
with the paired comparison over tasks, and the plots. It is ``hero train`` with the settings
below; rerun it to resume, ``--overwrite`` to start over.

Its diagnoses come from the best reflector available offline: ``reference``, which knows the
benchmark's answers (privileged), whose notes the probe found to push the 135M policy toward
better actions most often (README, Results). The demo says so on screen, and shows the
command that uses a model reflector instead, as a user's own agent must.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hero_agents.cli.console import console, escape, fail, stdout
from hero_agents.errors import HeroError
from hero_agents.reflection.reference import reflector_label
from hero_agents.reflection.spec import ReflectorSpec

DEMO_SETTINGS: dict[str, Any] = {
    "env": "tau2:mock",
    "model": "default",
    "method": "hero",
    "reflector": "reference",
    "warmup": {"steps": 3, "batch_size": 4},
    "rollout": {
        "tasks": 4,
        "group_size": 4,
        "max_turns": 4,
        "max_new_tokens": 64,
        "concurrency": 8,
    },
    "train": {"batch_size": 4},  # one pass over the iteration's 16 rollouts: 4 steps
    # Before training and after each iteration, on 32 of the 64 held-out tasks, so that the
    # demo fits in 15 minutes on 2 cores from a fresh clone (8 steps took 15 min 57 s).
    "eval": {"every": 1, "max_turns": 4, "tasks": 32},
    "budget": {"iterations": 1},
}
"""The demo's training config (see `hero_agents.loop.config.TrainConfig`)."""


PRIVILEGED_NOTICE = (
    "The reference reflector reads the benchmark's answers: it shows what the method does "
    "with good hints (an upper bound), and no real agent has it. For your own agent, use a "
    "model reflector over what the trace proves, e.g.\n"
    "  scripts/demo.sh --reflector grounded+openai:gpt-4o-mini --overwrite   "
    "# key in $OPENAI_API_KEY"
)
"""Said whenever the demo's diagnoses come from the benchmark's answers."""


def reflector_description(spec: ReflectorSpec, model: str) -> str:
    """Who wrote the diagnoses, in words."""
    name = "SmolLM2-135M-Instruct" if model == "default" else model
    if spec.kind == "self":
        return f"self: the policy (warm-started {name}) diagnosing its own episodes"
    if spec.kind == "grounded":
        over = "" if spec.inner is None else f", over {reflector_description(spec.inner, model)}"
        return f"{spec}: what each trace proves (tool errors, malformed calls...){over}"
    if spec.privileged:
        return f"{reflector_label(str(spec))}: notes from the benchmark's answers"
    return str(spec)


def demo(
    reflector: Annotated[
        str,
        typer.Option(
            help="Who writes the diagnoses: 'reference' (the benchmark's answers, privileged: "
            "the best offline), or a reflector spec, e.g. grounded+openai:gpt-4o-mini (key in "
            "$OPENAI_API_KEY) or self (the policy)."
        ),
    ] = "reference",
    iterations: Annotated[int, typer.Option(min=1, help="Training iterations.")] = 1,
    model: Annotated[
        str, typer.Option(help="'default' (SmolLM2-135M-Instruct) or a model folder.")
    ] = "default",
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/demo"),
    overwrite: Annotated[bool, typer.Option(help="Start over (deletes --out).")] = False,
) -> None:
    """Warm-start, evaluate, train with HERO, evaluate again: the embedded default on a CPU."""
    from hero_agents.cli.train import before_after_table, train_in_folder
    from hero_agents.loop.config import parse_train_config
    from hero_agents.loop.report import plot_run, run_table

    settings = {
        **DEMO_SETTINGS,
        "model": model,
        "reflector": reflector,
        "budget": {**DEMO_SETTINGS["budget"], "iterations": iterations},
    }
    try:
        config = parse_train_config(settings, source="hero demo")
        console.print(
            f"diagnoses by: {escape(reflector_description(config.reflector, config.model))}"
        )
        if config.reflector.privileged:
            console.print(PRIVILEGED_NOTICE)
        rows = train_in_folder(config, out, overwrite=overwrite)
    except HeroError as error:
        raise fail(error) from None
    stdout.print(before_after_table(f"{config.env} · held-out tasks", rows))
    stdout.print(
        f"diagnoses written by: {escape(reflector_description(config.reflector, config.model))}"
    )
    if config.reflector.privileged:
        stdout.print(PRIVILEGED_NOTICE)
    reflected = sum((row.get("reflect") or {}).get("diagnosed", 0) for row in rows)
    failed = sum((row.get("reflect") or {}).get("failed", 0) for row in rows)
    stdout.print(f"trajectories diagnosed: {reflected}, not diagnosable: {failed}")
    report = out / "report"
    paths = plot_run(rows, report, label="hero demo")
    (report / "report.md").write_text(f"# hero demo\n\n{run_table(rows)}")
    total = sum(sum(row["seconds"].values()) for row in rows)
    console.print(f"{total:.0f} s of work · plots: {escape(', '.join(map(str, paths)))}")
