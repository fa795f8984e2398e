"""``hero rollout`` and ``hero eval``: one command with two sets of defaults.

Both run episodes of an environment's tasks with a policy and append each trajectory to --out
as it ends (`hero_agents.phases.rollout`). Episodes cycle through the split's tasks, so
``--episodes`` = k x tasks gives every task k trials, and every episode has a stable id
(``PREFIX-TASK-SAMPLE``): rerunning with ``--append`` runs only the episodes --out does not
hold yet. ``rollout`` samples on-policy training data from the train split; ``eval`` measures
a policy greedily on the test split and reports pass^k as tau2-bench does (for k up to the
fewest trials of any task, the mean over tasks of C(successes, k) / C(trials, k)).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from hero_agents.cli import wiring
from hero_agents.cli.console import console, escape, fail, phase_progress, stdout
from hero_agents.errors import HeroError
from hero_agents.outputs import check_output_file, start_output_file, write_mode
from hero_agents.phases.evaluate import evaluate as run_evaluation

USER_SIM_HELP = (
    "User simulator for tau2 environments (interactive mode): a chat model spec, e.g. "
    "openai-compatible:URL#MODEL, openai:MODEL, default or a model folder (in process, served "
    "on loopback). Without it, tau2 tasks run in ticket mode."
)


@dataclass(frozen=True)
class EpisodeOptions:
    """What ``hero rollout`` and ``hero eval`` share."""

    command: str
    env: str
    policy: str
    user_sim: str | None
    episodes: int
    split: str
    out: Path
    max_turns: int
    concurrency: int
    temperature: float
    max_new_tokens: int
    user_temperature: float
    seed: int | None
    device: str
    append: bool
    overwrite: bool


def run_episode_command(options: EpisodeOptions) -> None:
    """Build the environment and policy, check --out, run the episodes, print the table."""
    from hero_agents.adapters.envs.user_sim import load_user_sim
    from hero_agents.adapters.policy import load_policy
    from hero_agents.phases.rollout import cycling_slots

    with contextlib.ExitStack() as resources:
        try:
            mode = write_mode(append=options.append, overwrite=options.overwrite)
            check_output_file(options.out, mode=mode)
            simulator = None
            if options.user_sim is not None:
                with console.status(Text(f"starting user simulator {options.user_sim}")):
                    simulator = resources.enter_context(
                        load_user_sim(
                            options.user_sim,
                            temperature=options.user_temperature,
                            seed=options.seed,
                            device=options.device,
                        )
                    )
            env = wiring.environment(options.env, user_sim=simulator)
            slots = cycling_slots(options.command, env.task_ids(options.split), options.episodes)
            with console.status(Text(f"loading policy {options.policy}")):
                policy = load_policy(
                    options.policy,
                    temperature=options.temperature,
                    max_new_tokens=options.max_new_tokens,
                    seed=options.seed,
                    device=options.device,
                )
            # Last: --overwrite deletes the old file only once everything else is valid.
            start_output_file(options.out, mode=mode)
        except HeroError as error:
            raise fail(error) from None
        with phase_progress() as progress:
            evaluation = run_evaluation(
                env,
                policy,
                slots,
                out=options.out,
                max_turns=options.max_turns,
                concurrency=options.concurrency,
                progress=progress,
                phase=options.command,
            )
    _print_table(options, evaluation.figures, resumed=evaluation.batch.resumed)
    for failure in evaluation.batch.failures:
        console.print(
            f"[red]episode {escape(failure.slot.id)} failed:[/] {escape(failure.error)}",
            soft_wrap=True,
        )
    if evaluation.batch.failures:
        raise typer.Exit(code=1)


def _print_table(options: EpisodeOptions, figures: dict[str, Any], *, resumed: int) -> None:
    mode = f" · user-sim {options.user_sim}" if options.user_sim else ""
    title = f"{options.env}{mode} · policy {options.policy} · {options.split} split → {options.out}"
    table = Table(title=escape(title))
    hat = figures["pass_hat_k"] if options.command == "eval" else {}
    columns = ["episodes", "tasks", "success", *(f"pass^{k}" for k in hat)]
    columns += ["mean reward", "mean turns", "tool-error rate", "failed"]
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(
        str(figures["episodes"]),
        str(figures["tasks"]),
        f"{figures['success_rate']:.1%}",
        *(f"{value:.1%}" for value in hat.values()),
        f"{figures['mean_reward']:.3f}",
        f"{figures['mean_turns']:.2f}",
        f"{figures['tool_error_rate']:.1%}",
        str(figures["failed"]),
    )
    if resumed:
        table.caption = f"{resumed} episodes were already in --out and were not run again"
    stdout.print(table)


Env = Annotated[str, typer.Option(help="Environment: tau2:mock, tau2:retail, webshop-lite, ...")]
Policy = Annotated[
    str,
    typer.Option(help="Policy: 'default' (SmolLM2-135M in process), a model folder, or vllm:URL."),
]
UserSim = Annotated[str | None, typer.Option(help=USER_SIM_HELP)]
Episodes = Annotated[int, typer.Option(min=1, help="Number of episodes.")]
Split = Annotated[str, typer.Option(help="Task split: train, test or all.")]
Out = Annotated[Path, typer.Option(help="JSONL file the trajectories go to.")]
MaxTurns = Annotated[int, typer.Option(min=1, help="Policy calls per episode.")]
Concurrency = Annotated[int, typer.Option(min=1, help="Episodes in flight at once.")]
Temperature = Annotated[
    float, typer.Option(min=0.0, help="Sampling temperature (1 = on-policy; 0 = greedy).")
]
MaxNewTokens = Annotated[int, typer.Option(min=1, help="Token budget per action.")]
UserTemperature = Annotated[
    float, typer.Option(min=0.0, help="User simulator temperature (tau2's default: 0).")
]
Seed = Annotated[int | None, typer.Option(help="Sampling seed.")]
Device = Annotated[
    str,
    typer.Option(
        help="Where an in-process policy (and a local user simulator) runs: auto (a CUDA GPU "
        "when torch sees one, else the CPU), cpu, cuda or cuda:N."
    ),
]
Append = Annotated[
    bool, typer.Option(help="Add to an existing --out; episodes already in it are not rerun.")
]
Overwrite = Annotated[bool, typer.Option(help="Replace an existing --out.")]


def rollout(
    env: Env = "tau2:mock",
    policy: Policy = "default",
    user_sim: UserSim = None,
    episodes: Episodes = 3,
    out: Out = Path("traces.jsonl"),
    split: Split = "train",
    max_turns: MaxTurns = 8,
    concurrency: Concurrency = 1,
    temperature: Temperature = 1.0,
    max_new_tokens: MaxNewTokens = 256,
    user_temperature: UserTemperature = 0.0,
    seed: Seed = None,
    device: Device = "auto",
    append: Append = False,
    overwrite: Overwrite = False,
) -> None:
    """Roll the policy out on the environment's tasks and record every turn."""
    run_episode_command(EpisodeOptions("rollout", **_options(locals())))


def evaluate(
    env: Env = "tau2:mock",
    policy: Policy = "default",
    user_sim: UserSim = None,
    episodes: Episodes = 10,
    split: Split = "test",
    out: Out = Path("eval.jsonl"),
    max_turns: MaxTurns = 30,
    concurrency: Concurrency = 1,
    temperature: Annotated[
        float, typer.Option(min=0.0, help="Policy sampling temperature (0 = greedy, as tau2).")
    ] = 0.0,
    max_new_tokens: MaxNewTokens = 512,
    user_temperature: UserTemperature = 0.0,
    seed: Seed = None,
    device: Device = "auto",
    append: Append = False,
    overwrite: Overwrite = False,
) -> None:
    """Evaluate a policy: success, pass^k, mean turns and tool-error rate; writes trajectories."""
    run_episode_command(EpisodeOptions("eval", **_options(locals())))


def _options(arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        name: arguments[name] for name in EpisodeOptions.__dataclass_fields__ if name != "command"
    }
