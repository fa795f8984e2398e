"""``hero warmup`` and ``hero train``: the warm start, and the closed training loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hero_agents.console import console, fail, stdout
from hero_agents.errors import HeroError
from hero_agents.loop.config import TrainConfig
from hero_agents.loop.session import Session


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
        parts.append(f"reflect {diagnosed} ok / {failed} failed ({reflect['reflector']})")
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
    table = Table(title=f"{title} · {'/'.join(map(str, sorted(episodes)))} episodes")
    table.add_column("policy", no_wrap=True)
    for column in ("success", "pass^k", "turns", "unnecessary", "invalid"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, figures in rows:
        hat = figures.get("pass_hat_k") or {}
        top = max(hat, key=int) if hat else None
        table.add_row(
            name,
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


def warmup(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG.yaml", help="Training config.")],
    out: Annotated[
        Path, typer.Option(help="Folder for the held-out episodes and the summary.")
    ] = Path("runs/warmup"),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Warm-start the policy on train-split demonstrations and measure it on held-out tasks."""
    from hero_agents.loop.config import load_train_config
    from hero_agents.loop.runner import evaluate_policy
    from hero_agents.loop.session import open_backend, open_session, phase_progress

    try:
        config = load_train_config(config_path)
        if out.exists() and any(out.iterdir()) and not overwrite:
            raise HeroError(f"{out} exists: pass --overwrite to replace it")
        session = open_session(config)
        backend = open_backend(config, session.warm_model, out)
    except HeroError as error:
        raise fail(error) from None
    summary = session.warm_start.get("summary") or {}
    try:
        with phase_progress() as progress:
            figures = evaluate_policy(
                config, session.env, backend, out, progress=progress, overwrite=overwrite
            )
    except HeroError as error:
        raise fail(error) from None
    finally:
        backend.close()
    console.print(
        f"warm start: {summary.get('steps', 0)} SFT steps on {summary.get('demonstrations', 0)} "
        f"train demonstrations (loss {_number(summary.get('first_loss'), 3)} → "
        f"{_number(summary.get('last_loss'), 3)}) → {session.warm_model}"
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
        bool, typer.Option(help="Start over in an existing run folder (deletes it).")
    ] = False,
) -> None:
    """Run the training loop; rerun the same command to resume a run that was stopped."""
    from hero_agents.loop.config import load_train_config

    root = out if out is not None else Path("runs") / config_path.stem
    try:
        rows = run_training(load_train_config(config_path), root, overwrite=overwrite)
    except HeroError as error:
        raise fail(error) from None
    first, last = rows[0], rows[-1]
    stdout.print(
        eval_table(
            f"{root} · held-out tasks before and after training",
            [
                ("before (warm start)", first["eval"]),
                (f"after {last['iteration']} iterations", last["eval"]),
            ],
        )
    )
    console.print(f"metrics: {root / 'metrics.jsonl'} · plots: hero report {root}")


def run_training(
    config: TrainConfig,
    root: Path,
    *,
    overwrite: bool = False,
    session: Session | None = None,
    backend: Any = None,
) -> list[dict[str, Any]]:
    """Set up (or resume) the run in `root` and carry it to the end of its budget.

    A `session` and `backend` may be shared between runs (``hero compare``); the backend is
    then reset to the warm start first and left open.
    """
    from hero_agents.loop.run_dir import RunDir, write_json_atomic
    from hero_agents.loop.runner import TrainingRun, prepare_run
    from hero_agents.loop.session import open_backend, open_session, phase_progress, run_log
    from hero_agents.loop.tracking import MetricsTracker

    prepare_run(config, root, overwrite=overwrite)
    with run_log(RunDir(root).log):
        session = session if session is not None else open_session(config)
        write_json_atomic(RunDir(root).warmup, session.warm_start)
        owned = backend is None
        backend = open_backend(config, session.warm_model, root) if owned else backend
        if not owned:
            backend.reset()
        tracker = MetricsTracker(config.report_to, root, config.model_dump(mode="json"))

        def finished(row: dict[str, Any]) -> None:
            console.print(iteration_line(row))
            tracker.log(row)

        try:
            with phase_progress() as progress:
                run = TrainingRun(
                    config,
                    root,
                    env=session.env,
                    backend=backend,
                    warm_model=session.warm_model,
                    progress=progress,
                    on_iteration=finished,
                )
                return run.run()
        finally:
            tracker.close()
            if owned:
                backend.close()
