"""``hero report RUN_DIR``: a training run's plots and markdown table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hero_agents.cli.console import console, escape, fail, stdout
from hero_agents.errors import HeroError


def report(
    run_dir: Annotated[Path, typer.Argument(help="A hero train run folder.")],
    out: Annotated[
        Path | None, typer.Option(help="Where the plots and table go (default: RUN_DIR/report).")
    ] = None,
) -> None:
    """Plot a training run and write its table (report.md)."""
    from hero_agents.loop.report import plot_run, run_table
    from hero_agents.loop.run_dir import read_metrics

    target = out if out is not None else run_dir / "report"
    try:
        rows = read_metrics(run_dir)
    except HeroError as error:
        raise fail(error) from None
    table = run_table(rows)
    paths = plot_run(rows, target, label=run_dir.name)
    (target / "report.md").write_text(
        f"# {run_dir}\n\n{table}\n" + "".join(f"![{p.stem}]({p.name})\n" for p in paths)
    )
    stdout.out(table)
    console.print(
        f"plots: {escape(', '.join(str(p) for p in paths))} · table: "
        f"{escape(str(target / 'report.md'))}"
    )
