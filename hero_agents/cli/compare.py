"""``hero compare CONFIG.yaml``: every arm for every seed on the same tasks and budget."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from hero_agents.cli import wiring
from hero_agents.cli.console import console, escape, fail, phase_progress, stdout
from hero_agents.errors import HeroError
from hero_agents.loop.compare import BASELINE_ARM, ArmResult
from hero_agents.loop.config import CompareConfig
from hero_agents.loop.figures import cell, difference_cell, tally_cell
from hero_agents.stats import PairedComparison


def _paired_lines(comparison: PairedComparison | None) -> str:
    if comparison is None:
        return "–"
    return f"{difference_cell(comparison)}\n{tally_cell(comparison)}"


def compare_table(title: str, results: list[ArmResult], *, against_grpo: bool) -> Table:
    """The comparison in an 80-column terminal: per arm, final held-out success with its 95%
    interval, and its paired per-task difference with the warm start (and with grpo), in points
    with its interval above the tasks won, lost and tied; an arm whose runs did not all finish
    says how many its figures pool."""
    # No outer edge: the arm's name keeps the width of "hero[grounded+self]".
    table = Table(
        title=escape(title),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("method", overflow="fold")
    table.add_column("success", justify="right", no_wrap=True)
    table.add_column("vs warm start", justify="right", no_wrap=True)
    if against_grpo:
        table.add_column(f"vs {BASELINE_ARM}", justify="right", no_wrap=True)
    for result in results:
        name = escape(result.label)
        if result.runs and not result.complete:
            name += f"\n[bold]{result.counted} of {result.runs} runs[/]"
        if result.stopped:
            name += f"\n{result.stopped} stopped early"
        cells = [cell(result.success), _paired_lines(result.vs_warm_start)]
        if against_grpo:
            cells.append(_paired_lines(result.vs_grpo))
        table.add_row(name, *cells)
    table.caption = (
        "success = greedy pass@1, mean over seeds and tasks [95% crossed bootstrap over seeds "
        "× tasks]; vs: paired per-task difference in points [95% CI], W/L/T = tasks better / "
        "worse / the same; runs: finished (or stopped by the drift guard) of all; every figure: "
        "results.md"
    )
    return table


def compare(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG.yaml", help="Compare config.")],
    out: Annotated[
        Path | None, typer.Option(help="Comparison folder (default: runs/<config name>).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Start over (deletes what hero wrote in --out).")
    ] = False,
) -> None:
    """Train every arm for every seed on the same tasks and budget; print one table."""
    from hero_agents.cli.train import iteration_line
    from hero_agents.loop.compare import prepare_compare, run_compare
    from hero_agents.loop.config import load_compare_config
    from hero_agents.outputs import check_not_input

    root = out if out is not None else Path("runs") / config_path.stem
    try:
        config = load_compare_config(config_path)
        env = None
        for arm in config.methods:  # every arm's checks, before any work
            env = wiring.check_config(config.run_config(arm, config.seeds[0]))
        check_not_input(root, [config_path])
        prepare_compare(config, root, overwrite=overwrite)
        with phase_progress() as progress:
            session = wiring.open_session(config.train, env=env, progress=progress)
            backend = wiring.open_backend(config.train, session.warm_model, root / "warm-start")
            try:
                results = run_compare(
                    config,
                    root,
                    session=session,
                    backend=backend,
                    llm_reflector=wiring.llm_reflectors(backend),
                    progress=progress,
                    on_run=lambda arm, seed: console.rule(escape(f"{arm} · seed {seed}")),
                    on_iteration=lambda row: console.print(iteration_line(row)),
                )
            finally:
                backend.close()
    except HeroError as error:
        raise fail(error) from None
    print_comparison(root, config, results, config.seeds, written_to=root)


def print_comparison(
    folder: Path,
    config: CompareConfig,
    results: list[ArmResult],
    seeds: list[int],
    *,
    written_to: Path,
) -> None:
    """The comparison's table over `seeds`, and where its results.md and plots are."""
    listed = ", ".join(map(str, seeds))
    title = f"{folder} · {config.train.env} · final held-out figures, seeds {listed}"
    stdout.print(compare_table(title, results, against_grpo=BASELINE_ARM in config.methods))
    left = [seed for seed in config.seeds if seed not in seeds]
    if left:
        stdout.print(
            f"seed(s) {', '.join(map(str, left))}: not every arm has finished "
            "(rerun hero compare to go on)"
        )
    console.print(
        f"results: {escape(str(written_to / 'results.md'))} · plots: "
        f"{escape(str(written_to))}/compare-*.png"
    )
