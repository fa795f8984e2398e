"""``hero report RUN_DIR``: a training run's plots, its markdown table, and a summary that fits
the terminal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hero_agents.cli.console import console, escape, fail, stdout
from hero_agents.errors import HeroError
from hero_agents.loop.figures import (
    Figures,
    cell,
    guard,
    pass_hat_cell,
    pass_hat_k,
    reference_logprob,
    sampled,
    success,
    top_k,
)


def run_summary_table(title: str, rows: Sequence[dict[str, Any]]) -> Table:
    """Held-out figures per evaluated iteration, each with its 95% interval (fits an 80-column
    terminal): success, pass^k (of the sampled pass where measured) and reference log-prob."""
    evaluated = [row for row in rows if row.get("eval")]
    evals = [row["eval"] for row in evaluated]
    table = Table(title=escape(title))
    table.add_column("iteration", justify="right")
    table.add_column("success", justify="right", no_wrap=True)
    columns: list[tuple[str, Callable[[Figures], str]]] = []
    if any(sampled(e) for e in evals):
        k = next((top_k(sampled(e)) for e in evals if top_k(sampled(e))), None)
        if k is not None:
            columns.append(
                (f"sampled pass^{k}", lambda e: pass_hat_cell(pass_hat_k(sampled(e)), k))
            )
        else:
            columns.append(("sampled pass^1", lambda e: cell(success(sampled(e)))))
    elif (k := next((top_k(e) for e in evals if top_k(e)), None)) is not None:
        columns.append((f"pass^{k}", lambda e: pass_hat_cell(pass_hat_k(e), k)))
    if any(reference_logprob(e) is not None for e in evals):
        columns.append(("ref. log-prob/token", lambda e: cell(reference_logprob(e), percent=False)))
    for name, _ in columns:
        table.add_column(name, justify="right", no_wrap=True)
    for row in evaluated:
        figures = row["eval"]
        table.add_row(
            str(row["iteration"]),
            cell(success(figures)),
            *(render(figures) for _, render in columns),
        )
    table.caption = (
        "held-out tasks; success = greedy pass@1; [95% bootstrap interval over tasks]; "
        "sampled: k episodes per task at temperature > 0; every figure: report.md"
    )
    return table


def guard_line(rows: Sequence[dict[str, Any]]) -> str | None:
    """Where the drift guard stopped the run, if it did."""
    stops = [(row, entry) for row in rows if (entry := guard(row)) and entry.stopped]
    if not stops:
        return None
    stop, entry = stops[0]
    start = "" if entry.baseline is None else f" against {entry.baseline:.3f} at the start"
    value = "" if entry.reference_logprob is None else f" ({entry.reference_logprob:.3f}{start})"
    return (
        f"the drift guard stopped the run at iteration {stop['iteration']}: train-split "
        f"reference log-prob per token fell past its threshold{value}"
    )


def report(
    run_dir: Annotated[
        Path, typer.Argument(help="A hero train run folder, or a hero compare folder.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where the plots and table go (default: RUN_DIR/report; a comparison's own "
            "folder)."
        ),
    ] = None,
) -> None:
    """Plot a training run and write its table (report.md); of a comparison, the table and
    plots of the seeds every arm has finished so far (results.md)."""
    from hero_agents.loop.run_dir import COMPARE_FOLDER, read_metrics

    if (run_dir / COMPARE_FOLDER.marker).is_file():
        _report_comparison(run_dir, out if out is not None else run_dir)
        return
    from hero_agents.loop.report import plot_run, run_table

    target = out if out is not None else run_dir / "report"
    try:
        rows = read_metrics(run_dir)
    except HeroError as error:
        raise fail(error) from None
    paths = plot_run(rows, target, label=run_dir.name)
    (target / "report.md").write_text(
        f"# {run_dir}\n\n{run_table(rows)}\n" + "".join(f"![{p.stem}]({p.name})\n" for p in paths)
    )
    stdout.print(run_summary_table(f"{run_dir} · held-out tasks", rows))
    stopped = guard_line(rows)
    if stopped is not None:
        stdout.print(stopped)
    console.print(
        f"table: {escape(str(target / 'report.md'))} · plots: "
        f"{escape(', '.join(str(p) for p in paths))}"
    )


def _report_comparison(folder: Path, target: Path) -> None:
    from hero_agents.cli.compare import print_comparison
    from hero_agents.loop.compare import whole_seeds, write_results

    try:
        config, seeds, runs = whole_seeds(folder)
    except HeroError as error:
        raise fail(error) from None
    target.mkdir(parents=True, exist_ok=True)
    results = write_results(config, folder, runs, seeds, target=target)
    print_comparison(folder, config, results, seeds, written_to=target)
