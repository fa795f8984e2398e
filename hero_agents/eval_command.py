"""``hero eval``: a policy's success, pass^k, turns and tool errors on an environment's tasks.

Episodes cycle through the split's tasks in order, so ``--episodes`` = k × tasks gives every
task k trials. pass^k is reported as tau2-bench reports it: for k up to the fewest trials any
task got, the mean over all tasks of C(successes, k) / C(trials, k).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hero_agents.console import check_output, console, fail, progress_bar, stdout
from hero_agents.errors import HeroError
from hero_agents.metrics import EpisodeStats, successes_by_task


def tau2_pass_hat_k(stats: EpisodeStats, trials: dict[str, list[bool]]) -> dict[int, float]:
    """pass^k for the k every task reached (tau2 caps k at the fewest trials of any task)."""
    fewest = min((len(outcomes) for outcomes in trials.values()), default=0)
    return {k: value for k, value in stats.pass_hat_k.items() if k <= fewest}


def evaluate(
    env: Annotated[
        str, typer.Option(help="Environment: tau2:retail, tau2:airline, webshop-lite, ...")
    ] = "tau2:mock",
    policy: Annotated[
        str, typer.Option(help="Policy: 'default', a model folder, or vllm:URL (a vLLM server).")
    ] = "default",
    user_sim: Annotated[
        str | None,
        typer.Option(
            help="User simulator for tau2 environments (interactive mode): "
            "openai-compatible:URL#MODEL, openai:MODEL or local:POLICY. Without it, tau2 tasks "
            "run in ticket mode."
        ),
    ] = None,
    episodes: Annotated[int, typer.Option(min=1, help="Number of episodes.")] = 10,
    split: Annotated[str, typer.Option(help="Task split: train, test or all.")] = "test",
    out: Annotated[Path, typer.Option(help="JSONL file the trajectories go to.")] = Path(
        "eval.jsonl"
    ),
    max_turns: Annotated[int, typer.Option(min=1, help="Policy calls per episode.")] = 30,
    concurrency: Annotated[int, typer.Option(min=1, help="Episodes in flight at once.")] = 1,
    temperature: Annotated[
        float, typer.Option(min=0.0, help="Policy sampling temperature (0 = greedy, as tau2).")
    ] = 0.0,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Token budget per action.")] = 512,
    user_temperature: Annotated[
        float, typer.Option(min=0.0, help="User simulator temperature (tau2's default: 0).")
    ] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    append: Annotated[bool, typer.Option(help="Append to an existing --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Evaluate a policy: success, pass^k, mean turns and tool-error rate; writes trajectories."""
    from hero_agents.adapters.envs import make_env
    from hero_agents.adapters.envs.user_sim import load_user_sim
    from hero_agents.adapters.policy import load_policy
    from hero_agents.rollout import EpisodeFailure, pick_tasks, run_rollouts
    from hero_agents.storage import TrajectoryWriter
    from hero_agents.trajectory import Trajectory

    with contextlib.ExitStack() as resources:
        try:
            simulator = None
            if user_sim is not None:
                with console.status(f"starting user simulator {user_sim!r}"):
                    simulator = resources.enter_context(
                        load_user_sim(user_sim, temperature=user_temperature, seed=seed)
                    )
            environment = make_env(env, user_sim=simulator)
            tasks = pick_tasks(environment.task_ids(split), episodes)
            with console.status(f"loading policy {policy!r}"):
                chat_model = load_policy(
                    policy, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
                )
            # Last: --overwrite deletes the old file only once everything else is valid.
            check_output(out, append=append, overwrite=overwrite)
        except HeroError as error:
            raise fail(error) from None

        with TrajectoryWriter(out) as writer, progress_bar() as progress:
            bar = progress.add_task("eval", total=len(tasks), status="")

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

    trajectories = result.trajectories
    stats = EpisodeStats.of(trajectories)
    hat = tau2_pass_hat_k(stats, successes_by_task(trajectories))
    mode = f" · user-sim {user_sim}" if user_sim else ""
    table = Table(title=f"{env}{mode} · policy {policy} · {split} split → {out}")
    columns = ["episodes", "tasks", "success", *(f"pass^{k}" for k in hat)]
    columns += ["mean reward", "mean turns", "tool-error rate", "failed"]
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(
        str(stats.episodes),
        str(stats.tasks),
        f"{stats.success_rate:.1%}",
        *(f"{value:.1%}" for value in hat.values()),
        f"{stats.mean_reward:.3f}",
        f"{stats.mean_turns:.2f}",
        f"{stats.tool_error_rate:.1%}",
        str(len(result.failures)),
    )
    stdout.print(table)
    for failure in result.failures:
        console.print(f"[red]episode of task {failure.task_id} failed:[/] {failure.error}")
    if result.failures:
        raise typer.Exit(code=1)
