"""``hero rollout``: roll a policy out on an environment's tasks and record every turn."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hero_agents.console import check_output, console, fail, progress_bar, stdout
from hero_agents.errors import HeroError


def rollout(
    env: Annotated[str, typer.Option(help="Environment name, e.g. tau2:mock.")] = "tau2:mock",
    policy: Annotated[
        str, typer.Option(help="Policy: 'default' (SmolLM2-135M in-process) or a model folder.")
    ] = "default",
    user_sim: Annotated[
        str | None,
        typer.Option(
            help="User simulator for tau2 environments (interactive mode): "
            "openai-compatible:URL#MODEL, openai:MODEL or local:POLICY."
        ),
    ] = None,
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
    from hero_agents.adapters.envs.user_sim import load_user_sim
    from hero_agents.adapters.policy import load_policy
    from hero_agents.rollout import EpisodeFailure, RolloutSummary, pick_tasks, run_rollouts
    from hero_agents.storage import TrajectoryWriter
    from hero_agents.trajectory import Trajectory

    resources = contextlib.ExitStack()
    try:
        simulator = None
        if user_sim is not None:
            simulator = resources.enter_context(load_user_sim(user_sim, seed=seed))
        environment = make_env(env, user_sim=simulator)
        tasks = pick_tasks(environment.task_ids(split), episodes)
        with console.status(f"loading policy {policy!r}"):
            chat_model = load_policy(
                policy, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
            )
        # Last: --overwrite deletes the old file only once everything else is valid.
        check_output(out, append=append, overwrite=overwrite)
    except HeroError as error:
        resources.close()
        raise fail(error) from None

    with resources, TrajectoryWriter(out) as writer, progress_bar() as progress:
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
    stdout.print(table)
    for failure in result.failures:
        console.print(f"[red]episode of task {failure.task_id} failed:[/] {failure.error}")
    if result.failures:
        raise typer.Exit(code=1)
