"""``hero warmup`` and ``hero train``: the warm start, and the closed training loop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hero_agents.cli import wiring
from hero_agents.cli.console import console, escape, fail, phase_progress, stdout
from hero_agents.errors import HeroError
from hero_agents.loop.config import TrainConfig
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
            f"held-out success {_percent(evaluation['success_rate'])}, "
            f"{_number(evaluation['mean_turns'])} turns"
        )
    parts.append(f"{sum(row.get('seconds', {}).values()):.0f} s")
    return " · ".join(parts)


def eval_table(title: str, rows: list[tuple[str, dict[str, Any]]]) -> Table:
    """Held-out figures of some policies, one row each (fits an 80-column terminal)."""
    episodes = {figures["episodes"] for _, figures in rows}
    table = Table(title=escape(f"{title} · {'/'.join(map(str, sorted(episodes)))} episodes"))
    table.add_column("policy", no_wrap=True)
    for column in ("success", "pass^k", "turns", "unnecessary", "invalid"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, figures in rows:
        hat = figures.get("pass_hat_k") or {}
        top = max(hat, key=int) if hat else None
        table.add_row(
            escape(name),
            _percent(figures["success_rate"]),
            f"{_percent(hat[top])} (k={top})" if top else "-",
            _number(figures["mean_turns"]),
            _percent(figures.get("unnecessary_turn_rate")),
            _percent(figures.get("invalid_action_rate")),
        )
    table.caption = (
        "success = pass@1; turns per episode; unnecessary = turns beyond the gold solution's "
        "length; invalid = turns with a malformed tool call or a tool error"
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


def before_after_table(title: str, rows: list[dict[str, Any]]) -> Table:
    """The held-out figures of a run's warm start and of its last iteration."""
    first, last = rows[0], rows[-1]
    return eval_table(
        title,
        [
            ("before (warm start)", first["eval"]),
            (f"after {last['iteration']} iterations", last["eval"]),
        ],
    )


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
    from hero_agents.loop.runner import evaluate_policy

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
            figures = evaluate_policy(
                config, session.env, backend, out / "eval.jsonl", progress=progress
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
