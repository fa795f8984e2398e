"""Confidence intervals and paired comparisons over tasks: can a held-out figure see an effect?

The unit of independence is the task. Episodes of one task (k samples, or one greedy pass) share
its difficulty, so they are averaged into the task's value and never resampled on their own:
a bootstrap sample draws tasks with replacement, each with all of its episodes. Every task weighs
the same, so a success rate here is tau-bench's pass^1 (`hero_agents.metrics.pass_hat_k` with
k = 1), which is the share of successful episodes when every task has the same number of them.

Intervals are percentile bootstrap intervals (Efron & Tibshirani 1993, "An Introduction to the
Bootstrap", ch. 13), seeded so a report prints the same figures every time. When every task has
the same value (all successes, all failures) the interval is that single point: the bootstrap
cannot see variation the data does not show; `Interval.n` says how many tasks it rests on.

Two arms evaluated on the same tasks are compared task by task (`paired_comparison`): the
difference of their values on each task, averaged, with its bootstrap interval. Pairing removes
the tasks' own spread in difficulty, which is what makes the unpaired intervals of two arms
overlap even when one arm is better on every task it changes.

scipy's `stats.bootstrap` resamples the observations of 1-D samples; it cannot draw the crossed
seed × task grid of `pooled_paired_comparison`, so one numpy implementation serves every form.
Where only each seed's value and interval survive (not its per-task values), `pooled_estimate`
combines them with the normal approximation of that design's variance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from statistics import NormalDist, fmean, variance

import numpy as np

from hero_agents.errors import ConfigError

LEVEL = 0.95
"""Confidence level of every interval."""

RESAMPLES = 10_000
"""Bootstrap samples per interval."""

SEED = 0
"""Seed of the bootstrap draws (fixed: the same data always gives the same interval)."""

TIE_TOLERANCE = 1e-9
"""Per-task differences closer to zero than this count as ties."""

PerTask = Mapping[str, float | Sequence[float]]
"""A value per task id: a number, or its episodes' values (booleans count as 0 and 1), which
are averaged into the task's value."""


@dataclass(frozen=True)
class Interval:
    """A figure over tasks and its bootstrap confidence interval."""

    value: float
    """The point estimate: the mean over tasks of each task's value."""
    low: float
    high: float
    n: int
    """Tasks the figure rests on (the units that were resampled)."""
    percent: bool = False
    """The value is a share, shown as a percentage."""

    def format(self, *, signed: bool = False, unit: str | None = None) -> str:
        """E.g. ``33.3% [21.9, 45.8]`` for a share, ``-0.121 [-0.140, -0.102]`` otherwise;
        `unit` replaces the share's ``%`` (``""`` for a difference in points)."""
        return _render(
            self, signed=signed, unit=("%" if self.percent else "") if unit is None else unit
        )


@dataclass(frozen=True)
class PairedComparison:
    """An arm minus a baseline on the same tasks: the mean per-task difference with its
    interval, and on how many tasks the arm did better, worse or the same."""

    difference: Interval
    """Arm minus baseline, averaged over tasks (and seeds); in points when `percent`."""
    wins: int
    """Tasks where the arm's value is higher (over seeds, its mean difference is positive)."""
    losses: int
    ties: int
    seeds: int = 1

    def format(self) -> str:
        """E.g. ``+8.3 points [-2.1, 18.8]; 5 wins, 3 losses, 16 ties of 24 tasks``."""
        unit = " points" if self.difference.percent else ""
        seeds = f", {self.seeds} seeds" if self.seeds > 1 else ""
        return (
            f"{_render(self.difference, signed=True, unit=unit)}; {self.wins} wins, "
            f"{self.losses} losses, {self.ties} ties of {self.difference.n} tasks{seeds}"
        )


def success_interval(
    outcomes: Mapping[str, Sequence[bool]],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Success rate over tasks (each task's share of successful episodes, averaged) with its
    bootstrap interval; `outcomes` as `hero_agents.metrics.successes_by_task` gives them."""
    return mean_interval(outcomes, level=level, resamples=resamples, seed=seed, percent=True)


def mean_interval(
    values: PerTask,
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    percent: bool = False,
) -> Interval:
    """The mean over tasks of a per-task value (e.g. reference log-prob per token) with its
    bootstrap interval, resampling tasks."""
    return pooled_mean_interval(
        [values], level=level, resamples=resamples, seed=seed, percent=percent
    )


def pooled_mean_interval(
    seeds: Sequence[PerTask],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    percent: bool = False,
) -> Interval:
    """`mean_interval` pooled over training seeds: ``seeds[s]`` is seed s's per-task value (e.g.
    its held-out success per task), every seed on the same tasks. The figure is the mean over
    seeds and tasks; its interval is the crossed bootstrap of `pooled_paired_comparison`
    (tasks and seeds resampled independently). With one seed this is `mean_interval`."""
    if not seeds:
        raise ConfigError("no seeds to pool")
    tasks = sorted(seeds[0])
    grid = np.array(  # (seeds, tasks)
        [
            _values_of(values, tasks, where=f"seed {s}: " if len(seeds) > 1 else "", name="values")
            for s, values in enumerate(seeds)
        ]
    )
    return _crossed_bootstrap(grid, level=level, resamples=resamples, seed=seed, percent=percent)


def pooled_estimate(estimates: Sequence[Interval], *, level: float = LEVEL) -> Interval:
    """The mean of several seeds' estimates of one figure on the same tasks, when only each
    seed's value and `level` interval are at hand, not its per-task values.

    A normal approximation of the crossed design's variance: the seeds' spread divided by their
    number, plus the mean of each seed's own variance over tasks (read from its interval's
    half-width). Slightly conservative, since noise within a task counts in both terms. One
    estimate is returned as it is.
    """
    if not estimates:
        raise ConfigError("no estimates to pool")
    if len(estimates) == 1:
        return estimates[0]
    z = NormalDist().inv_cdf(0.5 + level / 2)
    values = [e.value for e in estimates]
    within = fmean(((e.high - e.low) / (2 * z)) ** 2 for e in estimates)
    half = z * (variance(values) / len(values) + within) ** 0.5
    mean = fmean(values)
    first = estimates[0]
    return Interval(mean, mean - half, mean + half, first.n, first.percent)


def paired_comparison(
    arm: PerTask,
    baseline: PerTask,
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    percent: bool = True,
) -> PairedComparison:
    """`arm` minus `baseline`, both evaluated on the same tasks: each task's difference,
    averaged, with a bootstrap interval that resamples tasks, and wins / losses / ties per task.

    Values are success outcomes by default (`percent`: the difference is in points); pass
    ``percent=False`` for another per-task figure.
    """
    return pooled_paired_comparison(
        [arm], [baseline], level=level, resamples=resamples, seed=seed, percent=percent
    )


def pooled_paired_comparison(
    arms: Sequence[PerTask],
    baselines: Sequence[PerTask],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    percent: bool = True,
) -> PairedComparison:
    """`paired_comparison` pooled over training seeds: ``arms[s]`` and ``baselines[s]`` are
    seed s's evaluations (pass the same baseline for every seed when it has only one, e.g. the
    warm start), each of the same tasks.

    Each seed gives a difference per task, d[s, t]; the figure is their mean over seeds and
    tasks. Seeds and tasks are crossed (every seed evaluates every task), so a bootstrap sample
    draws the tasks with replacement and, independently, the seeds with replacement, and
    averages d over every drawn (seed, task) pair: the two-way bootstrap of a crossed design
    (McCullagh 2000, "Resampling and exchangeable arrays", Bernoulli 6(2)). Resampling tasks
    carries the spread between tasks, resampling seeds the run-to-run spread of training; with
    few seeds the latter is coarse and somewhat underestimated (by (S - 1) / S in variance).
    With one seed this is `paired_comparison`. Wins, losses and ties count tasks by their
    difference averaged over seeds.
    """
    if len(arms) != len(baselines):
        raise ConfigError(
            f"{len(arms)} seeds of the arm but {len(baselines)} of the baseline: pair them"
        )
    if not arms:
        raise ConfigError("no seeds to compare")
    tasks = sorted(arms[0])
    # (seeds, tasks): arm minus baseline
    differences = np.array(
        [
            _paired_differences(arm, baseline, tasks, s if len(arms) > 1 else None)
            for s, (arm, baseline) in enumerate(zip(arms, baselines, strict=True))
        ]
    )
    by_task = differences.mean(axis=0)
    return PairedComparison(
        difference=_crossed_bootstrap(
            differences, level=level, resamples=resamples, seed=seed, percent=percent
        ),
        wins=int((by_task > TIE_TOLERANCE).sum()),
        losses=int((by_task < -TIE_TOLERANCE).sum()),
        ties=int((np.abs(by_task) <= TIE_TOLERANCE).sum()),
        seeds=len(arms),
    )


def _paired_differences(
    arm: PerTask, baseline: PerTask, tasks: Sequence[str], seed: int | None
) -> list[float]:
    """Arm minus baseline per task, in the order of `tasks` (seed 0's arm's tasks)."""
    where, reference = (f"seed {seed}: ", "seed 0's arm") if seed is not None else ("", "the arm")
    arm_values = _values_of(arm, tasks, where=where, name="arm", reference=reference)
    baseline_values = _values_of(baseline, tasks, where=where, name="baseline", reference=reference)
    return [a - b for a, b in zip(arm_values, baseline_values, strict=True)]


def _values_of(
    values: PerTask, tasks: Sequence[str], *, where: str, name: str, reference: str = "seed 0"
) -> list[float]:
    """`values` per task, in the order of `tasks`, which must be exactly its tasks."""
    if set(values) != set(tasks):
        missing = sorted(set(tasks) - set(values))
        extra = sorted(set(values) - set(tasks))
        raise ConfigError(
            f"{where}the {name} was not evaluated on the same tasks as {reference} "
            f"(missing {missing[:5]}, extra {extra[:5]}); figures are compared and pooled over "
            "the same tasks only"
        )
    return [_task_value(values, task, name) for task in tasks]


def _task_value(values: PerTask, task: str, name: str) -> float:
    value = values[task]
    if isinstance(value, Real):
        return float(value)
    if len(value) == 0:
        raise ConfigError(f"task {task!r} of the {name} has no episodes")
    return float(np.mean(np.asarray(value, dtype=float)))


def _crossed_bootstrap(
    grid: np.ndarray, *, level: float, resamples: int, seed: int, percent: bool
) -> Interval:
    """Mean of `grid` (seeds, tasks) with a percentile interval from resampling tasks and,
    independently, seeds (one row: tasks only)."""
    if not 0.0 < level < 1.0:
        raise ConfigError(f"confidence level must be between 0 and 1, got {level}")
    if resamples < 1:
        raise ConfigError(f"resamples must be at least 1, got {resamples}")
    seeds, tasks = grid.shape
    if tasks == 0:
        raise ConfigError("no tasks: an interval needs at least one task's value")
    rng = np.random.default_rng(seed)
    # How many times each task (seed) is drawn in each bootstrap sample: a multinomial count is
    # the same draw as picking indices with replacement. Tasks are drawn first, so one seed's
    # figures do not depend on how many seeds could have been drawn.
    task_counts = rng.multinomial(tasks, np.full(tasks, 1 / tasks), size=resamples)
    seed_counts = rng.multinomial(seeds, np.full(seeds, 1 / seeds), size=resamples)
    # (resamples,): the mean of grid over every drawn (seed, task) pair
    means = np.einsum("bs,st,bt->b", seed_counts, grid, task_counts) / (seeds * tasks)
    tail = (1.0 - level) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(grid.mean()), float(low), float(high), tasks, percent)


def _render(interval: Interval, *, signed: bool, unit: str) -> str:
    scale, digits = (100.0, 1) if interval.percent else (1.0, 3)
    sign = "+" if signed else ""
    value = f"{interval.value * scale:{sign}.{digits}f}"
    return f"{value}{unit} [{interval.low * scale:.{digits}f}, {interval.high * scale:.{digits}f}]"
