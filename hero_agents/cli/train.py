"""``hero warmup`` and ``hero train``: the warm start, and the closed training loop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from hero_agents.cli import wiring
from hero_agents.cli.console import console, escape, fail, phase_progress, stdout
from hero_agents.errors import HeroError
from hero_agents.loop.config import TrainConfig
from hero_agents.loop.figures import cell, paired, sampled, success
from hero_agents.loop.report import figure_columns
from hero_agents.outputs import check_not_input, claim_folder
from hero_agents.storage import write_json_atomic


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def iteration_line(row: dict[str, Any]) -> str:
    """One finished iteration, in a line."""
    parts = [f"[bold]iteration {row['iteration']}[/]"]
    rollout = row.get("rollout")
    if rollout:
        parts.append(
            f"rollout success {_percent(rollout['success_rate'])} over {rollout['episodes']} "
            f"episodes, {_number(rollout['mean_turns'])} turns"
        )
    reflect = row.get("reflect")
    if reflect and reflect.get("reflector"):
        diagnosed, failed = reflect["diagnosed"], reflect["failed"]
        parts.append(f"reflect {diagnosed} ok / {failed} failed ({escape(reflect['reflector'])})")
    train = row.get("train")
    if train:
        parts.append(
            f"train: {train['skipped']}"
            if "skipped" in train
            else f"train loss {_number(train['loss'], 4)} over {train['steps']} steps"
        )
    evaluation = row.get("eval")
    if evaluation:
        parts.append(
            f"held-out success {cell(success(evaluation))}, "
            f"{_number(evaluation['mean_turns'])} turns"
        )
    parts.append(f"{sum(row.get('seconds', {}).values()):.0f} s")
    return " · ".join(parts)


def eval_table(title: str, rows: list[tuple[str, dict[str, Any]]]) -> Table:
    """Held-out figures of some policies, one column each and one figure a line (two policies
    fit an 80-column terminal): success with its 95% interval over tasks, pass^k, the sampled
    pass and reference log-likelihood when measured, turns, unnecessary and invalid turns."""
    episodes = {figures["episodes"] for _, figures in rows}
    table = Table(title=escape(f"{title} · {'/'.join(map(str, sorted(episodes)))} episodes"))
    table.add_column("held-out")
    for name, _ in rows:
        table.add_column(escape(name), justify="right", no_wrap=True)
    evaluated = [{"eval": figures} for _, figures in rows]
    for name, render in figure_columns(evaluated):
        table.add_row(name, *map(render, evaluated))
    for name, key, show in (
        ("turns / episode", "mean_turns", _number),
        ("unnecessary turns", "unnecessary_turn_rate", _percent),
        ("invalid actions", "invalid_action_rate", _percent),
    ):
        table.add_row(name, *(show(figures.get(key)) for _, figures in rows))
    table.caption = (
        "success = greedy pass@1 [95% bootstrap interval over tasks]; sampled: k episodes per "
        "task at temperature > 0; unnecessary = turns beyond the gold solution's length; "
        "invalid = turns with a malformed tool call or a tool error"
    )
    return table


DeviceOption = Annotated[
    str | None,
    typer.Option(
        help="Where the policy, the self reflector, the warm start and the trainer run: auto, "
        "cpu, cuda or cuda:N (default: the config's device)."
    ),
]


def with_device(config: TrainConfig, device: str | None) -> TrainConfig:
    """`config` with ``--device`` applied (validated like the config's own key)."""
    if device is None:
        return config
    from hero_agents.loop.config import parse_train_config

    return parse_train_config(
        {**config.model_dump(mode="json"), "device": device}, source="--device"
    )


def before_after_table(title: str, rows: list[dict[str, Any]]) -> Group:
    """The held-out figures of a run's warm start and of its last evaluation, and under them
    the paired per-task comparison of the two (greedy, and sampled when measured)."""
    first = rows[0]
    last = next(row for row in reversed(rows) if row.get("eval"))
    if last is first:
        return Group(eval_table(title, [("before (warm start)", first["eval"])]))
    after = f"after {last['iteration']} iteration{'s' if last['iteration'] != 1 else ''}"
    lines = [eval_table(title, [("before (warm start)", first["eval"]), (after, last["eval"])])]
    for name, read in (("", lambda figures: figures), ("sampled, ", sampled)):
        comparison = paired([read(last["eval"]) or {}], [read(first["eval"]) or {}])
        if comparison is not None:
            lines.append(Text(f"{name}after − before, paired over tasks: {comparison.format()}"))
    return Group(*lines)


def warmup(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG.yaml", help="Training config.")],
    out: Annotated[
        Path, typer.Option(help="Folder for the held-out episodes and the summary.")
    ] = Path("runs/warmup"),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
    device: DeviceOption = None,
) -> None:
    """Warm-start the policy on train-split demonstrations and measure it on held-out tasks."""
    from hero_agents.loop.config import dump_config, load_train_config
    from hero_agents.loop.run_dir import RUN_FOLDER
    from hero_agents.loop.runner import ReferenceChecks, evaluate_policy

    try:
        config = with_device(load_train_config(config_path), device)
        env = wiring.check_config(config)
        claim_folder(out, RUN_FOLDER, overwrite=overwrite, inputs=[config_path])
        dump_config(config, out / RUN_FOLDER.marker)
        with phase_progress() as progress:
            session = wiring.open_session(config, env=env, progress=progress)
        backend = wiring.open_backend(config, session.warm_model, out)
    except HeroError as error:
        raise fail(error) from None
    summary = session.warm_start.get("summary") or {}
    try:
        with phase_progress() as progress:
            checks = ReferenceChecks(config, session.env, session.warm_model)
            figures = evaluate_policy(
                config,
                session.env,
                backend,
                out / "eval.jsonl",
                progress=progress,
                reference=lambda: checks.held_out(None),
            )
        write_json_atomic(out / "eval.json", figures)
    except HeroError as error:
        raise fail(error) from None
    finally:
        backend.close()
    console.print(
        f"warm start: {summary.get('steps', 0)} SFT steps on {summary.get('demonstrations', 0)} "
        f"train demonstrations (loss {_number(summary.get('first_loss'), 3)} → "
        f"{_number(summary.get('last_loss'), 3)}) → {escape(str(session.warm_model))}"
    )
    stdout.print(eval_table(f"{config.env} held-out tasks · {out}", [("warm start", figures)]))
    stdout.print(
        f"episodes with a tool call: {_percent(figures['episodes_with_tool_calls'])}; "
        f"tool calls that failed: {_percent(figures['tool_error_rate'])}"
    )


def train(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG.yaml", help="Training config.")],
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default: runs/<config name>).")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(help="Start over in an existing run folder (deletes what hero wrote there)."),
    ] = False,
    device: DeviceOption = None,
) -> None:
    """Run the training loop; rerun the same command to resume a run that was stopped (raise
    budget.iterations in the config to extend a finished one)."""
    from hero_agents.loop.config import load_train_config

    root = out if out is not None else Path("runs") / config_path.stem
    try:
        config = with_device(load_train_config(config_path), device)
        rows = train_in_folder(config, root, overwrite=overwrite, inputs=[config_path])
    except HeroError as error:
        raise fail(error) from None
    stdout.print(before_after_table(f"{root} · held-out tasks before and after training", rows))
    console.print(
        f"metrics: {escape(str(root / 'metrics.jsonl'))} · plots: hero report {escape(str(root))}"
    )


def train_in_folder(
    config: TrainConfig,
    root: Path,
    *,
    overwrite: bool = False,
    inputs: Sequence[Path] = (),
) -> list[dict[str, Any]]:
    """Check everything, set up (or resume) the run in `root`, and carry it to the end of its
    budget with a progress display; returns the metrics rows. Used by ``train`` and ``demo``."""
    from hero_agents.loop.training import prepare_run, run_training

    env = wiring.check_config(config)
    check_not_input(root, inputs)
    prepare_run(config, root, overwrite=overwrite)
    with phase_progress() as progress:
        session = wiring.open_session(config, env=env, progress=progress)
        backend = wiring.open_backend(config, session.warm_model, root)
        try:
            return run_training(
                config,
                root,
                session=session,
                backend=backend,
                llm_reflector=wiring.llm_reflectors(backend),
                progress=progress,
                on_iteration=lambda row: console.print(iteration_line(row)),
            )
        finally:
            backend.close()
