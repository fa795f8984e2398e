"""The `hero` command line: rollout, reflect, distill, serve."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hero_agents.errors import HeroError

app = typer.Typer(
    name="hero",
    help="Train tool-using LangGraph agents with HERO (hindsight-enhanced self-distillation).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO level.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def progress_bar() -> Progress:
    """The progress bar every long command shows (on stderr)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
    )


def fail(error: HeroError) -> typer.Exit:
    """Print a user-facing error and return the exit to raise (code 2)."""
    console.print(f"[bold red]error:[/] {error}")
    return typer.Exit(code=2)


def check_output(path: Path, *, append: bool, overwrite: bool) -> None:
    """Refuse to silently clobber an existing output file."""
    if append and overwrite:
        raise HeroError("pass at most one of --append and --overwrite")
    if path.exists() and not (append or overwrite):
        raise HeroError(f"{path} exists: pass --append to add to it or --overwrite to replace it")
    if overwrite:
        path.unlink(missing_ok=True)


@app.command()
def rollout(
    env: Annotated[str, typer.Option(help="Environment name, e.g. tau2:mock.")] = "tau2:mock",
    policy: Annotated[
        str, typer.Option(help="Policy: 'default' (SmolLM2-135M in-process) or a model folder.")
    ] = "default",
    episodes: Annotated[int, typer.Option(min=1, help="Number of episodes.")] = 3,
    out: Annotated[Path, typer.Option(help="JSONL file the trajectories go to.")] = Path(
        "traces.jsonl"
    ),
    split: Annotated[str, typer.Option(help="Task split: train, test or all.")] = "train",
    max_turns: Annotated[int, typer.Option(min=1, help="Policy calls per episode.")] = 8,
    concurrency: Annotated[int, typer.Option(min=1, help="Episodes in flight at once.")] = 1,
    temperature: Annotated[
        float, typer.Option(min=0.0, help="Sampling temperature (1 = on-policy; 0 = greedy).")
    ] = 1.0,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Token budget per action.")] = 256,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    append: Annotated[bool, typer.Option(help="Append to an existing --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Roll the policy out on the environment's tasks and record every turn."""
    from hero_agents.adapters.envs import make_env
    from hero_agents.adapters.policy import load_policy
    from hero_agents.rollout import EpisodeFailure, RolloutSummary, pick_tasks, run_rollouts
    from hero_agents.storage import TrajectoryWriter
    from hero_agents.trajectory import Trajectory

    try:
        check_output(out, append=append, overwrite=overwrite)
        environment = make_env(env)
        tasks = pick_tasks(environment.task_ids(split), episodes)
        with console.status(f"loading policy {policy!r}"):
            chat_model = load_policy(
                policy, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
            )
    except HeroError as error:
        raise fail(error) from None

    with TrajectoryWriter(out) as writer, progress_bar() as progress:
        bar = progress.add_task("rollout", total=len(tasks), status="")

        def finished(trajectory: Trajectory) -> None:
            writer.write(trajectory)
            progress.update(bar, advance=1, status=f"last reward {trajectory.reward}")

        def failed(failure: EpisodeFailure) -> None:
            progress.update(bar, advance=1, status=f"[red]failed {failure.task_id}")

        result = run_rollouts(
            environment,
            chat_model,
            tasks,
            max_turns=max_turns,
            concurrency=concurrency,
            on_trajectory=finished,
            on_failure=failed,
        )

    summary = RolloutSummary.of(result)
    table = Table(title=f"{env} · policy {policy} · {summary.episodes} episodes → {out}")
    for column in ("success rate", "mean reward", "mean turns", "tool-error rate", "failed"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{summary.success_rate:.1%}",
        f"{summary.mean_reward:.3f}",
        f"{summary.mean_turns:.2f}",
        f"{summary.tool_error_rate:.1%}",
        str(summary.failures),
    )
    Console().print(table)
    for failure in result.failures:
        console.print(f"[red]episode of task {failure.task_id} failed:[/] {failure.error}")
    if result.failures:
        raise typer.Exit(code=1)


def _register_commands() -> None:
    """The other stages' commands live beside their code; their modules import lightly."""
    from hero_agents.adapters.policy.serve_command import serve
    from hero_agents.distill.command import distill
    from hero_agents.reflection.command import reflect

    app.command()(reflect)
    app.command()(distill)
    app.command()(serve)


_register_commands()
