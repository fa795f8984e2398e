"""Bootstrap intervals and paired comparisons over tasks, on cases whose answer is known."""

from __future__ import annotations

import math

import pytest

from hero_agents.errors import ConfigError
from hero_agents.metrics import pass_hat_k
from hero_agents.stats import (
    Interval,
    PairedComparison,
    mean_interval,
    paired_comparison,
    pooled_estimate,
    pooled_mean_interval,
    pooled_paired_comparison,
    success_interval,
)


def outcomes(successes: int, tasks: int, episodes: int = 1) -> dict[str, list[bool]]:
    """`tasks` tasks, the first `successes` of which succeed in every episode."""
    return {f"t{i:03d}": [i < successes] * episodes for i in range(tasks)}


def test_all_successes_and_all_failures_give_a_point_interval() -> None:
    assert success_interval(outcomes(24, 24)) == Interval(1.0, 1.0, 1.0, 24, percent=True)
    assert success_interval(outcomes(0, 24)) == Interval(0.0, 0.0, 0.0, 24, percent=True)
    assert success_interval(outcomes(24, 24)).format() == "100.0% [100.0, 100.0]"


def test_a_fixed_seed_gives_a_reproducible_interval() -> None:
    eight_of_24 = outcomes(8, 24)
    assert success_interval(eight_of_24) == success_interval(eight_of_24)
    assert success_interval(eight_of_24).format() == "33.3% [16.7, 54.2]"
    # a continuous figure shows the draws themselves: pinned to numpy's PCG64 stream, seed 0
    figure = {f"t{i}": (i * 7 % 24) / 24 for i in range(24)}
    interval = mean_interval(figure)
    assert interval == mean_interval(figure)
    assert interval.format() == "0.479 [0.365, 0.594]"
    other = mean_interval(figure, seed=1)
    assert other.value == interval.value and other.high != interval.high


def test_the_interval_matches_the_normal_approximation_on_many_tasks() -> None:
    interval = success_interval(outcomes(120, 400))  # p = 0.3
    half_width = 1.96 * math.sqrt(0.3 * 0.7 / 400)
    assert interval.value == pytest.approx(0.3)
    assert interval.low == pytest.approx(0.3 - half_width, abs=0.006)
    assert interval.high == pytest.approx(0.3 + half_width, abs=0.006)
    wider = success_interval(outcomes(120, 400), level=0.99)
    assert wider.low < interval.low and wider.high > interval.high


def test_tasks_are_resampled_not_episodes() -> None:
    # Five identical episodes per task are one task's worth of evidence, not five.
    once, five_times = success_interval(outcomes(8, 24)), success_interval(outcomes(8, 24, 5))
    assert (five_times.low, five_times.high) == (once.low, once.high)
    # Every task weighs the same, whatever its number of episodes: pass^1.
    uneven = {"a": [True], "b": [False, False, False]}
    assert success_interval(uneven).value == 0.5 == pass_hat_k(uneven, 1)


def test_mean_interval_of_a_per_task_figure() -> None:
    log_probs = {f"t{i}": -0.1 - 0.01 * (i % 5) for i in range(30)}
    interval = mean_interval(log_probs)
    assert interval.value == pytest.approx(-0.12) and interval.n == 30
    assert interval.low < -0.12 < interval.high
    assert interval.format().startswith("-0.120 [-0.12")
    # several values of a task are averaged into it first
    assert mean_interval({"a": [1.0, 3.0], "b": 0.0}).value == 1.0


def test_a_paired_comparison_has_the_known_sign() -> None:
    baseline = outcomes(8, 24)
    arm = {task: [True] if i < 14 else won for i, (task, won) in enumerate(baseline.items())}
    better = paired_comparison(arm, baseline)
    assert (better.wins, better.losses, better.ties) == (6, 0, 18)
    assert better.difference.value == pytest.approx(0.25) and better.difference.low > 0
    assert better.format() == (
        f"+25.0 points [{better.difference.low * 100:.1f}, {better.difference.high * 100:.1f}]; "
        "6 wins, 0 losses, 18 ties of 24 tasks"
    )
    worse = paired_comparison(baseline, arm)
    assert (worse.wins, worse.losses) == (0, 6) and worse.difference.high < 0


def test_pairing_sees_an_effect_that_unpaired_intervals_hide() -> None:
    # Tasks differ widely in difficulty; the arm is 5 points better on every one of them.
    baseline = {f"t{i}": 0.05 + 0.9 * i / 23 for i in range(24)}
    arm = {task: value + 0.05 for task, value in baseline.items()}
    alone, other = mean_interval(arm), mean_interval(baseline)
    assert alone.low < other.high  # the arms' own intervals overlap
    paired = paired_comparison(arm, baseline, percent=False)
    assert paired.difference.low == pytest.approx(0.05) and paired.wins == 24


def test_pooling_over_seeds_resamples_seeds_as_well_as_tasks() -> None:
    baseline = outcomes(8, 24)
    arm = {task: [True] if i < 14 else won for i, (task, won) in enumerate(baseline.items())}
    single = paired_comparison(arm, baseline)
    same_every_seed = pooled_paired_comparison([arm] * 3, [baseline] * 3)
    assert same_every_seed.difference.value == pytest.approx(single.difference.value)
    assert (same_every_seed.difference.low, same_every_seed.difference.high) == pytest.approx(
        (single.difference.low, single.difference.high)
    )
    assert same_every_seed.seeds == 3 and same_every_seed.format().endswith("24 tasks, 3 seeds")
    # Seeds that disagree: +30, -10 and +10 points on every task. Averaged over seeds each task
    # moves +10 points, so resampling tasks alone would give a point; the seeds' spread shows.
    tasks = [f"t{i}" for i in range(24)]
    zero = dict.fromkeys(tasks, 0.0)
    seeds = [dict.fromkeys(tasks, shift) for shift in (0.3, -0.1, 0.1)]
    pooled = pooled_paired_comparison(seeds, [zero] * 3)
    assert pooled.difference.value == pytest.approx(0.1) and pooled.wins == 24
    assert pooled.difference.low == pytest.approx(-0.1) and pooled.difference.high == (
        pytest.approx(0.3)
    )


def test_a_pooled_mean_resamples_seeds_as_well_as_tasks() -> None:
    eight_of_24 = {task: sum(o) / len(o) for task, o in outcomes(8, 24).items()}
    assert pooled_mean_interval([eight_of_24], percent=True) == success_interval(outcomes(8, 24))
    same = pooled_mean_interval([eight_of_24] * 3, percent=True)
    alone = success_interval(outcomes(8, 24))
    assert (same.value, same.low, same.high) == pytest.approx((alone.value, alone.low, alone.high))
    assert same.format() == alone.format() == "33.3% [16.7, 54.2]"
    # Seeds at 0.3, -0.1 and 0.1 on every task: only the seeds' spread is left to show.
    tasks = [f"t{i}" for i in range(24)]
    seeds = [dict.fromkeys(tasks, shift) for shift in (0.3, -0.1, 0.1)]
    pooled = pooled_mean_interval(seeds)
    assert pooled.value == pytest.approx(0.1) and pooled.n == 24
    assert (pooled.low, pooled.high) == pytest.approx((-0.1, 0.3))
    with pytest.raises(ConfigError, match=r"seed 1: the values .* same tasks"):
        pooled_mean_interval([outcomes(3, 24), outcomes(3, 23)])
    with pytest.raises(ConfigError, match="no seeds"):
        pooled_mean_interval([])


def test_pooled_estimates_add_the_seeds_spread_to_their_own_intervals() -> None:
    one = Interval(-0.12, -0.14, -0.10, 30)
    assert pooled_estimate([one]) is one
    # Seeds that agree: the interval of each (its task spread) is the pooled one.
    agree = pooled_estimate([one, one, one])
    assert (agree.value, agree.low, agree.high) == pytest.approx((-0.12, -0.14, -0.10))
    # Seeds that disagree: their variance over their number adds to the tasks' variance.
    spread = pooled_estimate([Interval(v, v - 0.02, v + 0.02, 30) for v in (-0.10, -0.12, -0.14)])
    se_tasks, se_seeds = 0.02 / 1.959964, math.sqrt(0.0004 / 3)
    half = 1.959964 * math.sqrt(se_tasks**2 + se_seeds**2)
    assert spread.value == pytest.approx(-0.12)
    assert (spread.low, spread.high) == pytest.approx((-0.12 - half, -0.12 + half))
    assert spread.high - spread.low > one.high - one.low
    with pytest.raises(ConfigError, match="no estimates"):
        pooled_estimate([])


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="no tasks"):
        success_interval({})
    with pytest.raises(ConfigError, match="no episodes"):
        success_interval({"a": []})
    with pytest.raises(ConfigError, match=r"baseline .* same tasks .*missing \['t023'\]"):
        paired_comparison(outcomes(3, 24), dict(list(outcomes(3, 24).items())[:23]))
    with pytest.raises(ConfigError, match=r"seed 1: the arm .* seed 0's arm"):
        pooled_paired_comparison([outcomes(3, 24), outcomes(3, 23)], [outcomes(3, 24)] * 2)
    with pytest.raises(ConfigError, match="2 seeds of the arm but 1"):
        pooled_paired_comparison([outcomes(3, 24)] * 2, [outcomes(3, 24)])
    with pytest.raises(ConfigError, match="level"):
        success_interval(outcomes(3, 24), level=95)


def test_results_are_typed_values() -> None:
    comparison = paired_comparison(outcomes(3, 4), outcomes(3, 4))
    assert isinstance(comparison, PairedComparison) and isinstance(comparison.difference, Interval)
    assert comparison.format() == "+0.0 points [0.0, 0.0]; 0 wins, 0 losses, 4 ties of 4 tasks"
    # a difference in points, without the share's unit
    assert comparison.difference.format(signed=True, unit="") == "+0.0 [0.0, 0.0]"
