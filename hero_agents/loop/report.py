"""The tables and plots of a training run (``hero report``) and of a comparison.

One run: per iteration, held-out success with its 95% interval over tasks, the sampled pass^k
and held-out reference log-likelihood where the run measured them, the drift guard, turns per
episode and the unnecessary-turn rate, against the rollout turns spent. A comparison
(``hero compare``'s folder): one line per method, the mean over seeds with a band of its 95%
interval (success: crossed bootstrap over seeds and tasks; reference log-likelihood:
`stats.pooled_estimate`); turns and unnecessary turns, of which no per-task values are kept,
show each seed's value as a dot beside the mean; and each arm's final success paired, task by
task, with the warm start's and the baseline arm's. How each figure is read: `loop.figures`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hero_agents.loop.figures import (
    Figure,
    Figures,
    cell,
    guard,
    pass_hat_cell,
    pass_hat_k,
    pooled_reference_logprob,
    pooled_success,
    reference_logprob,
    sampled,
    success,
    top_k,
)
from hero_agents.stats import RESAMPLES, Interval, PairedComparison

Row = dict[str, Any]
"""One iteration's metrics (a line of a run's metrics.jsonl)."""


def _plain(value: Any, kind: str = "number") -> str:
    if value is None:
        return "–"
    if kind == "percent":
        return f"{value:.1%}"
    if kind == "int":
        return str(int(value))
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def guard_cell(row: Row) -> str:
    """The drift guard's train-split reference log-prob, its start, and whether it stopped."""
    entry = guard(row)
    if entry is None:
        return "–"
    text = "–" if entry.reference_logprob is None else f"{entry.reference_logprob:.3f}"
    if entry.baseline is not None:
        text += f" (start {entry.baseline:.3f})"
    return text + (" · stopped" if entry.stopped else "")


Column = tuple[str, Callable[[Row], str]]


def _eval_of(row: Row) -> Figures | None:
    return row.get("eval")


def figure_columns(rows: Sequence[Row]) -> list[Column]:
    """The held-out success figures of the rows' evaluations, as (name, cell of a row):
    ``success`` always; ``pass^K``, ``sampled pass^1``, ``sampled pass^K`` and ``reference
    log-prob/token`` when some row has them. Each cell carries its 95% interval."""
    evals = [_eval_of(row) for row in rows]
    columns: list[Column] = [("success", lambda row: cell(success(_eval_of(row))))]
    k = next((top_k(e) for e in evals if top_k(e)), None)
    if k is not None:
        columns.append((f"pass^{k}", lambda row: pass_hat_cell(pass_hat_k(_eval_of(row)), k)))
    if any(sampled(e) for e in evals):
        columns.append(("sampled pass^1", lambda row: cell(success(sampled(_eval_of(row))))))
        sk = next((top_k(sampled(e)) for e in evals if top_k(sampled(e))), None)
        if sk is not None:
            columns.append(
                (
                    f"sampled pass^{sk}",
                    lambda row: pass_hat_cell(pass_hat_k(sampled(_eval_of(row))), sk),
                )
            )
    if any(reference_logprob(e) is not None for e in evals):
        columns.append(
            (
                "reference log-prob/token",
                lambda row: cell(reference_logprob(_eval_of(row)), percent=False),
            )
        )
    return columns


CAPTION = (
    f"Success figures: greedy held-out pass@1 (and pass^k as tau2-bench), with 95% percentile "
    f"bootstrap intervals over tasks ({RESAMPLES:,} draws); sampled: k episodes per task at "
    "temperature > 0. Reference log-prob: mean log-prob per token of the environment's reference "
    "actions on held-out tasks. Guard: the same on train-split tasks, with its value at the "
    "start. Unnecessary: turns beyond the gold solution's length; invalid: turns with a "
    "malformed tool call or a tool error."
)


def run_table(rows: Sequence[Row]) -> str:
    """A markdown table of a run, one line per iteration, and what its figures mean."""
    columns: list[Column] = [
        ("iteration", lambda row: str(row["iteration"])),
        ("rollout turns spent", lambda row: _plain(row.get("rollout_turns_total", 0), "int")),
        (
            "rollout success",
            lambda row: _plain((row.get("rollout") or {}).get("success_rate"), "percent"),
        ),
        *((f"held-out {name} [95% CI]", render) for name, render in figure_columns(rows)),
    ]
    if any(guard(row) for row in rows):
        columns.append(("train-split reference log-prob (guard)", guard_cell))
    for header, key, kind in (
        ("held-out turns", "mean_turns", "number"),
        ("unnecessary turns", "unnecessary_turn_rate", "percent"),
        ("invalid actions", "invalid_action_rate", "percent"),
    ):
        columns.append(
            (header, lambda row, key=key, kind=kind: _plain((_eval_of(row) or {}).get(key), kind))
        )
    for header, key in (("loss", "loss"), ("divergence", "divergence")):
        columns.append((header, lambda row, key=key: _plain((row.get("train") or {}).get(key))))
    columns.append(("seconds", lambda row: _plain(sum((row.get("seconds") or {}).values()), "int")))
    lines = [
        "| " + " | ".join(header for header, _ in columns) + " |",
        "|" + " --- |" * len(columns),
        *("| " + " | ".join(render(row) for _, render in columns) + " |" for row in rows),
    ]
    return "\n".join(lines) + f"\n\n{CAPTION}\n"


PLOTS = (
    ("turns", "turns per episode", "mean_turns", False),
    ("unnecessary", "unnecessary-turn rate", "unnecessary_turn_rate", True),
)
"""(file stem, title, eval key, is a share) of the plots of a figure without per-task values."""


def share_top(values: Sequence[float]) -> float:
    """The top of a share's axis: a little above the data, and at least 10% (so that a flat
    line at 0 is not drawn on a magnified scale)."""
    return max(0.1, *values, 0.0) * 1.15


def _axes(title: str, share: bool) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    figure, axes = plt.subplots(figsize=(6, 4), dpi=120)
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("rollout turns spent in training")
    axes.grid(alpha=0.3)
    if share:
        axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    return figure, axes


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _bounds(figure: Figure) -> tuple[float, float, float]:
    """(value, low, high); a bare value is its own bounds."""
    if isinstance(figure, Interval):
        return figure.value, figure.low, figure.high
    return figure, figure, figure


def _error_bars(
    axes: Any, rows: Sequence[Row], read: Callable[[Row], Figure | None], **style: Any
) -> list[float]:
    """A line with each point's 95% interval as an error bar; returns the bounds drawn."""
    points = [(row.get("rollout_turns_total", 0), read(row)) for row in rows]
    points = [(x, _bounds(figure)) for x, figure in points if figure is not None]
    if not points:
        return []
    xs = [x for x, _ in points]
    values, lows, highs = np.array([bounds for _, bounds in points]).T
    axes.errorbar(xs, values, yerr=[values - lows, highs - values], capsize=3, **style)
    return [*lows, *highs]


def plot_run(rows: Sequence[Row], out: Path, *, label: str = "") -> list[Path]:
    """The plots of one run, as PNG files in `out`: success (with its 95% intervals), turns,
    the unnecessary-turn rate, and held-out reference log-likelihood when measured."""
    out.mkdir(parents=True, exist_ok=True)
    suffix = f" · {label}" if label else ""
    figure, axes = _axes(f"success, 95% CI over tasks{suffix}", True)
    drawn = _error_bars(
        axes, rows, lambda row: success(_eval_of(row)), marker="o", label="held-out, greedy pass@1"
    )
    drawn += _error_bars(
        axes,
        rows,
        lambda row: success(sampled(_eval_of(row))),
        marker="s",
        linestyle="-.",
        label="held-out, sampled pass@1",
    )
    rx, ry = _series(rows, "rollout", "success_rate")
    if ry:
        axes.plot(rx, ry, marker=".", linestyle="--", alpha=0.7, label="training rollouts")
    # From 0: a small change is not drawn as a steep one.
    axes.set_ylim(0, share_top([*drawn, *ry]))
    axes.legend()
    paths = [_save(figure, out / "success.png")]
    if any(reference_logprob(_eval_of(row)) is not None for row in rows):
        paths.append(_plot_reference_logprob(rows, out / "reference-logprob.png", suffix))
    for stem, title, key, share in PLOTS:
        figure, axes = _axes(title + suffix, share)
        xs, ys = _series(rows, "eval", key)
        axes.plot(xs, ys, marker="o", label="held-out (eval)")
        rx, ry = _series(rows, "rollout", key)
        if ry:
            axes.plot(rx, ry, marker=".", linestyle="--", alpha=0.7, label="training rollouts")
        axes.set_ylim(0, share_top([*ys, *ry]) if share else max([1.0, *ys, *ry]) * 1.15)
        axes.legend()
        paths.append(_save(figure, out / f"{stem}.png"))
    return paths


def _plot_reference_logprob(rows: Sequence[Row], path: Path, suffix: str) -> Path:
    """Held-out reference log-prob per token with its intervals, and the drift guard's
    train-split value and start where the run has one."""
    figure, axes = _axes(f"reference log-prob per token, 95% CI{suffix}", False)
    _error_bars(
        axes,
        rows,
        lambda row: reference_logprob(_eval_of(row)),
        marker="o",
        label="held-out tasks",
    )
    guards = [(row.get("rollout_turns_total", 0), guard(row)) for row in rows]
    guards = [(x, g) for x, g in guards if g is not None and g.reference_logprob is not None]
    if guards:
        axes.plot(
            [x for x, _ in guards],
            [g.reference_logprob for _, g in guards],
            marker=".",
            linestyle="--",
            label="train-split guard",
        )
        start = next((g.baseline for _, g in guards if g.baseline is not None), None)
        if start is not None:
            axes.axhline(start, linestyle=":", color="grey", label="guard's start")
    axes.legend()
    return _save(figure, path)


def _series(rows: Sequence[Row], section: str, key: str) -> tuple[list, list]:
    xs, ys = [], []
    for row in rows:
        figures = row.get(section)
        if figures and figures.get(key) is not None:
            xs.append(row.get("rollout_turns_total", 0))
            ys.append(figures[key])
    return xs, ys


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


MARKERS = ("o", "s", "^", "D", "v", "P")
DASHES = ("-", "--", "-.", ":")

Runs = dict[str, list[list[Row]]]
"""Each arm's runs, one list of metrics rows per seed."""


def _by_iteration(seeds: list[list[Row]]) -> list[tuple[float, list[Figures]]]:
    """Each evaluated iteration's mean rollout turns spent and its seeds' evaluations."""
    iterations = sorted({r["iteration"] for rows in seeds for r in rows if r.get("eval")})
    points = []
    for number in iterations:
        evaluated = [
            r for rows in seeds for r in rows if r["iteration"] == number and r.get("eval")
        ]
        turns = sum(r.get("rollout_turns_total", 0) for r in evaluated) / len(evaluated)
        points.append((turns, [r["eval"] for r in evaluated]))
    return points


def _style(position: int) -> dict[str, Any]:
    # Methods often land on the same point: a marker, size and dash of their own keep every
    # one visible.
    return {
        "marker": MARKERS[position % len(MARKERS)],
        "markersize": max(4.0, 10.0 - 1.5 * position),
        "linestyle": DASHES[position % len(DASHES)],
    }


def _plot_pooled(
    runs: Runs,
    path: Path,
    title: str,
    pool: Callable[[Sequence[Figures]], Figure | None],
    *,
    share: bool,
) -> Path:
    """Per method, the pooled figure over seeds at each evaluated iteration, with its band."""
    figure, axes = _axes(title, share)
    drawn: list[float] = []
    for position, (method, seeds) in enumerate(runs.items()):
        points = [(x, pool(evals)) for x, evals in _by_iteration(seeds)]
        points = [(x, _bounds(f)) for x, f in points if f is not None]
        if not points:
            continue
        xs = [x for x, _ in points]
        values, lows, highs = (list(v) for v in zip(*(b for _, b in points), strict=True))
        (line,) = axes.plot(xs, values, label=method, **_style(position))
        axes.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.15)
        drawn += [*lows, *highs]
    if share:
        axes.set_ylim(0, share_top(drawn))
    axes.legend()
    return _save(figure, path)


def plot_compare(runs: Runs, out: Path) -> list[Path]:
    """The plots of a comparison, per method (named by `runs`' keys, as the legends show them)
    at each evaluated iteration: success and (when
    measured) reference log-likelihood as the mean over seeds with a 95% band; turns and the
    unnecessary-turn rate as the mean over seeds with each seed's value."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        _plot_pooled(
            runs,
            out / "compare-success.png",
            "held-out success · mean over seeds, 95% CI (seeds × tasks)",
            pooled_success,
            share=True,
        )
    ]
    measured = any(
        reference_logprob(r.get("eval")) is not None
        for seeds in runs.values()
        for rows in seeds
        for r in rows
    )
    if measured:
        paths.append(
            _plot_pooled(
                runs,
                out / "compare-reference-logprob.png",
                "held-out reference log-prob per token · mean over seeds, 95% CI",
                pooled_reference_logprob,
                share=False,
            )
        )
    for stem, title, key, share in PLOTS:
        figure, axes = _axes(f"held-out {title} · mean over seeds (line), each seed (dots)", share)
        tops: list[float] = []
        for position, (method, seeds) in enumerate(runs.items()):
            xs, means = [], []
            for x, evals in _by_iteration(seeds):
                values = [e[key] for e in evals if e.get(key) is not None]
                if not values:
                    continue
                xs.append(x)
                means.append(sum(values) / len(values))
                axes.scatter([x] * len(values), values, s=12, alpha=0.4, color=f"C{position}")
                tops += values
            axes.plot(xs, means, label=method, color=f"C{position}", **_style(position))
        axes.set_ylim(0, share_top(tops) if share else max([1.0, *tops]) * 1.15)
        axes.legend()
        paths.append(_save(figure, out / f"compare-{stem}.png"))
    return paths


Paired = tuple[str, PairedComparison | None, PairedComparison | None]
"""A comparison's line for `plot_paired`: the arm's name, and its paired per-task difference in
success with the warm start and with the baseline arm (None where there is none)."""


def plot_paired(lines: Sequence[Paired], path: Path, *, baseline: str) -> Path:
    """Each arm's final held-out success minus the warm start's and minus `baseline`'s, task
    by task, in points with its 95% interval, one bar per arm beside a line at zero: the figure
    that says which arm learned, where the success plot's bands (between-task spread) overlap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("the warm start", 1)]
    if any(line[2] is not None for line in lines):
        panels.append((baseline, 2))
    figure, axes_row = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 0.45 * len(lines) + 1.6), dpi=120, squeeze=False
    )
    for axes, (against, index) in zip(axes_row[0], panels, strict=True):
        for y, line in enumerate(reversed(lines)):
            comparison = line[index]
            if comparison is None:
                if line[0] == against:
                    axes.annotate("(the baseline)", (0, y), ha="center", va="center", fontsize=8)
                continue
            d = comparison.difference
            value, low, high = 100 * d.value, 100 * d.low, 100 * d.high
            colour = "C2" if low > 0 else "C3" if high < 0 else "C0"
            axes.errorbar(
                value, y, xerr=[[value - low], [high - value]], fmt="o", capsize=3, color=colour
            )
            axes.annotate(
                f"{comparison.wins}W {comparison.losses}L",
                (high, y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        axes.axvline(0, color="grey", linestyle=":")
        axes.set_yticks(range(len(lines)), [line[0] for line in reversed(lines)], fontsize=8)
        axes.set_ylim(-0.6, len(lines) - 0.4)
        axes.set_title(f"held-out success minus {against}, 95% CI", fontsize=10)
        axes.set_xlabel("points (paired over tasks and seeds)")
        axes.grid(alpha=0.3, axis="x")
    return _save(figure, path)
