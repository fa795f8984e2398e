"""The tables and plots of a training run (``hero report``) and of a comparison.

One run: held-out success against the rollout turns spent, turns per episode, and the
unnecessary-turn rate, per iteration. A comparison (``hero compare``'s folder): the same
three, one line per method, the mean over seeds with a band of one standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _cell(value: Any, kind: str = "number") -> str:
    if value is None:
        return "–"
    if kind == "percent":
        return f"{value:.1%}"
    if kind == "int":
        return str(int(value))
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _hat(figures: dict[str, Any] | None) -> str:
    hat = (figures or {}).get("pass_hat_k") or {}
    if not hat:
        return "–"
    top = max(hat, key=int)
    return f"{hat[top]:.1%} (k={top})"


def run_table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of a run, one line per iteration."""
    header = (
        "| iteration | rollout turns spent | rollout success | held-out success | held-out pass^k "
        "| held-out turns | unnecessary turns | invalid actions | loss | divergence | seconds |"
    )
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    for row in rows:
        rollout, evaluation, train = row.get("rollout") or {}, row.get("eval"), row.get("train")
        train = train or {}
        lines.append(
            "| "
            + " | ".join(
                [
                    str(row["iteration"]),
                    _cell(row.get("rollout_turns_total", 0), "int"),
                    _cell(rollout.get("success_rate"), "percent"),
                    _cell((evaluation or {}).get("success_rate"), "percent"),
                    _hat(evaluation),
                    _cell((evaluation or {}).get("mean_turns")),
                    _cell((evaluation or {}).get("unnecessary_turn_rate"), "percent"),
                    _cell((evaluation or {}).get("invalid_action_rate"), "percent"),
                    _cell(train.get("loss")),
                    _cell(train.get("divergence")),
                    _cell(sum((row.get("seconds") or {}).values()), "int"),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def _series(rows: Sequence[dict[str, Any]], section: str, key: str) -> tuple[list, list]:
    xs, ys = [], []
    for row in rows:
        figures = row.get(section)
        if figures and figures.get(key) is not None:
            xs.append(row.get("rollout_turns_total", 0))
            ys.append(figures[key])
    return xs, ys


PLOTS = (
    ("success", "success (pass@1)", "success_rate", True),
    ("turns", "turns per episode", "mean_turns", False),
    ("unnecessary", "unnecessary-turn rate", "unnecessary_turn_rate", True),
)
"""(file stem, title, eval key, is a share) of the three plots."""


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
    axes.set_title(title)
    axes.set_xlabel("rollout turns spent in training")
    axes.grid(alpha=0.3)
    if share:
        axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    return figure, axes


def plot_run(rows: Sequence[dict[str, Any]], out: Path, *, label: str = "") -> list[Path]:
    """The three plots of one run, as PNG files in `out`."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, title, key, share in PLOTS:
        figure, axes = _axes(title + (f" · {label}" if label else ""), share)
        xs, ys = _series(rows, "eval", key)
        axes.plot(xs, ys, marker="o", label="held-out (eval)")
        rx, ry = _series(rows, "rollout", key)
        if ry:
            axes.plot(rx, ry, marker=".", linestyle="--", alpha=0.7, label="training rollouts")
        # From 0: a small change is not drawn as a steep one.
        axes.set_ylim(0, share_top([*ys, *ry]) if share else max([1.0, *ys, *ry]) * 1.15)
        axes.legend()
        figure.tight_layout()
        path = out / f"{stem}.png"
        figure.savefig(path)
        plt.close(figure)
        paths.append(path)
    return paths


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


MARKERS = ("o", "s", "^", "D", "v", "P")
DASHES = ("-", "--", "-.", ":")


def plot_compare(runs: dict[str, list[list[dict[str, Any]]]], out: Path) -> list[Path]:
    """The three plots of a comparison: per method, the mean over seeds (line) and one
    standard deviation (band), at each evaluated iteration."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, title, key, share in PLOTS:
        figure, axes = _axes(f"held-out {title} · mean ± sd over seeds", share)
        tops: list[float] = []
        for position, (method, seeds) in enumerate(runs.items()):
            iterations = sorted({r["iteration"] for rows in seeds for r in rows if r.get("eval")})
            xs, means, sds = [], [], []
            for number in iterations:
                points = [
                    (r["rollout_turns_total"], r["eval"][key])
                    for rows in seeds
                    for r in rows
                    if r["iteration"] == number and r.get("eval") and r["eval"].get(key) is not None
                ]
                if not points:
                    continue
                xs.append(sum(p[0] for p in points) / len(points))
                mean, sd = mean_std([p[1] for p in points])
                means.append(mean)
                sds.append(sd)
            tops += [m + s for m, s in zip(means, sds, strict=True)]
            # Methods often land on the same point: a marker, size and dash of their own keep
            # every one visible.
            (line,) = axes.plot(
                xs,
                means,
                marker=MARKERS[position % len(MARKERS)],
                markersize=max(4.0, 10.0 - 1.5 * position),
                linestyle=DASHES[position % len(DASHES)],
                label=method,
            )
            axes.fill_between(
                xs,
                [m - s for m, s in zip(means, sds, strict=True)],
                [m + s for m, s in zip(means, sds, strict=True)],
                color=line.get_color(),
                alpha=0.15,
            )
        axes.set_ylim(0, share_top(tops) if share else max([1.0, *tops]) * 1.15)
        axes.legend()
        figure.tight_layout()
        path = out / f"compare-{stem}.png"
        figure.savefig(path)
        plt.close(figure)
        paths.append(path)
    return paths
