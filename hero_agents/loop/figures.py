"""An evaluation's figures read back for tables and plots: each success figure with its 95%
interval, the sampled pass, held-out reference log-likelihood, the drift guard, and all of them
pooled over seeds.

An evaluation's figures (a metrics row's ``eval``) are `hero_agents.metrics.episode_figures`,
with, when the run measured them, ``sampled`` (the same figures for k episodes per task at
temperature > 0, beside the greedy pass that the top level describes) and ``reference_logprob``
(``{"value", "ci", "turns"}``: mean log-prob per token of the environment's reference actions on
held-out tasks). A row may carry ``guard`` (``{"reference_logprob", "baseline", "stopped"}``: the
train-split drift guard). Rows written before a key existed lack it: its reader returns None, or
the bare value where the interval is what is missing.

Over seeds, success and pass^k pool each seed's per-task values with the crossed bootstrap of
`hero_agents.stats` (tasks and seeds resampled independently); reference log-likelihood, whose
rows keep only a value and an interval per seed, pools them with `stats.pooled_estimate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from statistics import fmean
from typing import Any

from hero_agents.metrics import task_pass_hat_k
from hero_agents.stats import (
    Interval,
    PairedComparison,
    pooled_estimate,
    pooled_mean_interval,
    pooled_paired_comparison,
)

Figures = Mapping[str, Any]
"""An evaluation's figures (a metrics row's ``eval``, or its ``sampled`` part)."""

Figure = Interval | float
"""A figure with its 95% interval, or its bare value when the row has no interval for it."""


def success(figures: Figures | None) -> Figure | None:
    """Success (pass^1) with its interval over tasks."""
    if not figures or figures.get("success_rate") is None:
        return None
    rate, ci = float(figures["success_rate"]), figures.get("success_ci")
    if not ci:
        return rate
    return Interval(rate, ci[0], ci[1], figures.get("tasks") or 0, percent=True)


def sampled(figures: Figures | None) -> Figures | None:
    """The sampled pass's figures (k episodes per task at temperature > 0), if measured."""
    return (figures or {}).get("sampled") or None


def top_k(figures: Figures | None) -> int | None:
    """The largest k above 1 of the figures' pass^k (at k = 1 it is the success rate)."""
    ks = [
        int(k)
        for k, value in ((figures or {}).get("pass_hat_k") or {}).items()
        if value is not None
    ]
    return max(ks) if ks and max(ks) > 1 else None


def _task_pass_hat(figures: Figures, k: int) -> dict[str, float] | None:
    """Each task's pass^k, where each task's share of successes is known and every task ran
    the same number of episodes."""
    shares, episodes = figures.get("task_success"), figures.get("episodes")
    if not shares or not episodes or episodes % len(shares) or episodes // len(shares) < k:
        return None
    return task_pass_hat_k(shares, episodes // len(shares), k)


def pass_hat_k(figures: Figures | None) -> tuple[int, Figure] | None:
    """pass^k at the largest measured k above 1, with its interval over tasks."""
    return pooled_pass_hat_k([figures] if figures else [])


def reference_logprob(figures: Figures | None) -> Figure | None:
    """Held-out reference log-prob per token, with its interval."""
    entry = (figures or {}).get("reference_logprob")
    if not entry or entry.get("value") is None:
        return None
    value, ci = float(entry["value"]), entry.get("ci")
    if not ci:
        return value
    return Interval(value, ci[0], ci[1], entry.get("turns") or 0)


@dataclass(frozen=True)
class Guard:
    """The train-split drift guard of one iteration."""

    reference_logprob: float | None
    """Train-split reference log-prob per token after the iteration."""
    baseline: float | None
    """The value it is compared with (the run's start)."""
    stopped: bool
    """The guard stopped the run here."""


def guard(row: Mapping[str, Any]) -> Guard | None:
    """The row's drift guard, if the run has one."""
    entry = row.get("guard")
    if not entry:
        return None
    return Guard(
        _scalar(entry.get("reference_logprob")),
        _scalar(entry.get("baseline")),
        bool(entry.get("stopped")),
    )


def _scalar(value: Any) -> float | None:
    """A number, or the ``value`` of a ``{"value", "ci"}`` entry."""
    if isinstance(value, Mapping):
        value = value.get("value")
    return float(value) if isinstance(value, Real) else None


def pooled_success(seeds: Sequence[Figures]) -> Figure | None:
    """Success over seeds and tasks (crossed bootstrap); the bare mean over seeds when a seed
    lacks its per-task successes."""
    if len(seeds) == 1:
        return success(seeds[0])
    shares = [figures.get("task_success") for figures in seeds]
    if seeds and all(shares):
        return pooled_mean_interval(shares, percent=True)
    return _mean([figures.get("success_rate") for figures in seeds])


def pooled_pass_hat_k(seeds: Sequence[Figures]) -> tuple[int, Figure] | None:
    """pass^k over seeds and tasks at the first seed's largest k above 1 (crossed bootstrap);
    the bare mean when a seed's per-task pass^k cannot be recovered."""
    k = top_k(seeds[0]) if seeds else None
    if k is None:
        return None
    per_task = [_task_pass_hat(figures, k) for figures in seeds]
    if all(per_task):
        return k, pooled_mean_interval(per_task, percent=True)
    mean = _mean([(figures.get("pass_hat_k") or {}).get(str(k)) for figures in seeds])
    return (k, mean) if mean is not None else None


def pooled_reference_logprob(seeds: Sequence[Figures]) -> Figure | None:
    """Reference log-prob per token over seeds (`stats.pooled_estimate` of their intervals)."""
    figures = [reference_logprob(f) for f in seeds]
    if figures and all(isinstance(f, Interval) for f in figures):
        return pooled_estimate(figures)
    return _mean([f.value if isinstance(f, Interval) else f for f in figures])


def paired(arm: Sequence[Figures], baseline: Sequence[Figures]) -> PairedComparison | None:
    """Arm minus baseline on each task's success, averaged over tasks and seeds (``arm[s]``
    paired with ``baseline[s]``), with its crossed-bootstrap interval; None when a side lacks
    per-task successes."""
    arms = [figures.get("task_success") for figures in arm]
    baselines = [figures.get("task_success") for figures in baseline]
    if not arms or not all(arms) or not all(baselines):
        return None
    return pooled_paired_comparison(arms, baselines)


def _mean(values: Sequence[float | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return fmean(present) if present and len(present) == len(values) else None


def cell(figure: Figure | None, *, percent: bool = True) -> str:
    """A table cell: ``33.3% [21.9, 45.8]``, ``-0.121 [-0.140, -0.102]``, a bare value, or –."""
    if figure is None:
        return "–"
    if isinstance(figure, Interval):
        return figure.format()
    return f"{figure:.1%}" if percent else f"{figure:.3f}"


def pass_hat_cell(entry: tuple[int, Figure] | None, k: int | None = None) -> str:
    """pass^k's cell; its k is named unless it is the column's `k`."""
    if entry is None:
        return "–"
    own, figure = entry
    return cell(figure) + ("" if own == k else f" (k={own})")


def difference_cell(comparison: PairedComparison | None) -> str:
    """A paired difference in points with its interval: ``+8.3 [-2.1, 18.8]``."""
    return "–" if comparison is None else comparison.difference.format(signed=True, unit="")


def tally_cell(comparison: PairedComparison | None) -> str:
    """Tasks better / worse / the same: ``5W 3L 16T``."""
    if comparison is None:
        return "–"
    return f"{comparison.wins}W {comparison.losses}L {comparison.ties}T"
