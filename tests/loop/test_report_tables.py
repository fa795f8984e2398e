"""The tables and plots of reports on constructed evaluations: success figures with known
intervals, paired comparisons with known signs, rows that lack a key, tables in 80 columns.

Each evaluation is `hero_agents.metrics.episode_figures` of constructed episodes on
webshop-lite's held-out tasks (what the runner writes), with the ``sampled`` and
``reference_logprob`` keys and a row's ``guard`` added as the runner will write them."""

from __future__ import annotations

import io
import re
from math import comb
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from rich.console import Console, RenderableType

from hero_agents.adapters.envs import make_env
from hero_agents.cli.compare import compare_table
from hero_agents.cli.report import guard_line, run_summary_table
from hero_agents.cli.train import before_after_table, eval_table
from hero_agents.environment import Environment
from hero_agents.loop.compare import arm_results, results_table
from hero_agents.loop.figures import (
    cell,
    guard,
    pass_hat_k,
    pooled_reference_logprob,
    reference_logprob,
    success,
)
from hero_agents.loop.report import plot_compare, plot_paired, plot_run, run_table
from hero_agents.metrics import episode_figures
from hero_agents.stats import Interval, mean_interval, success_interval
from hero_agents.trajectory import Trajectory, Turn

Outcomes = dict[str, list[bool]]


@pytest.fixture(scope="module")
def env() -> Environment:
    return make_env("webshop-lite")


@pytest.fixture(scope="module")
def tasks(env: Environment) -> list[str]:
    return list(env.task_ids("test"))[:24]


def outcomes(tasks: list[str], won: set[int], episodes: int = 1) -> Outcomes:
    """Tasks whose position is in `won` succeed in every episode; the others fail."""
    return {task: [i in won] * episodes for i, task in enumerate(tasks)}


def evaluation(env: Environment, trials: Outcomes, **extra: Any) -> dict[str, Any]:
    """An evaluation's figures, as the runner writes them, of one-turn episodes."""
    done = {"role": "assistant", "content": "done"}
    episodes = [
        Trajectory(
            id=f"{task}-{i}",
            task_id=task,
            turns=[Turn(index=0, messages=[], action=done)],
            reward=float(ok),
        )
        for task, results in trials.items()
        for i, ok in enumerate(results)
    ]
    return {**episode_figures(episodes, env), **extra}


def logprob(value: float, half: float = 0.02) -> dict[str, Any]:
    return {"value": value, "ci": [value - half, value + half], "turns": 40}


def render(renderable: RenderableType) -> list[str]:
    """What an 80-column terminal shows."""
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text().splitlines()


EIGHT = set(range(8))
FOURTEEN = set(range(14))


def test_figures_read_success_pass_hat_k_and_log_likelihood_with_their_intervals(
    env: Environment, tasks: list[str]
) -> None:
    figures = evaluation(env, outcomes(tasks, EIGHT), reference_logprob=logprob(-0.12))
    assert success(figures) == success_interval(outcomes(tasks, EIGHT))
    assert cell(success(figures)) == "33.3% [16.7, 54.2]"
    assert pass_hat_k(figures) is None  # one episode a task: pass^1 is the success rate
    assert cell(reference_logprob(figures), percent=False) == "-0.120 [-0.140, -0.100]"
    # Four episodes a task, two of every third task succeeding: pass^4 per task is 1, 0 or 0.
    four = {
        task: [i % 3 == 0] * 4 if i % 3 != 1 else [True, True, False, False]
        for i, task in enumerate(tasks)
    }
    sampled = evaluation(env, four)
    k, figure = pass_hat_k(sampled)
    per_task = {task: comb(sum(o), 4) / comb(4, 4) for task, o in four.items()}
    assert k == 4 and figure == mean_interval(per_task, percent=True)
    assert figure.value == pytest.approx(sampled["pass_hat_k"]["4"]) == pytest.approx(8 / 24)


def test_rows_written_before_a_key_existed_read_as_none_or_bare_values() -> None:
    assert success(None) is None and success({}) is None
    assert success({"success_rate": 0.5}) == 0.5 and cell(0.5) == "50.0%"
    assert cell(None) == "–" and reference_logprob({"reference_logprob": None}) is None
    assert reference_logprob({"reference_logprob": {"value": -0.2}}) == -0.2
    # pass^k without per-task successes keeps its value, without an interval
    assert pass_hat_k({"pass_hat_k": {"1": 0.5, "2": 0.25}}) == (2, 0.25)
    assert guard({}) is None
    entry = guard({"guard": {"reference_logprob": logprob(-0.3), "baseline": -0.2, "stopped": 1}})
    assert entry is not None and (entry.reference_logprob, entry.baseline, entry.stopped) == (
        -0.3,
        -0.2,
        True,
    )


def run_rows(env: Environment, tasks: list[str]) -> list[dict[str, Any]]:
    """A run of two iterations, evaluated before and after, with every key the runner writes."""
    before = evaluation(
        env,
        outcomes(tasks, EIGHT),
        sampled=evaluation(env, outcomes(tasks, EIGHT, episodes=4)),
        reference_logprob=logprob(-0.12),
    )
    after = evaluation(
        env,
        outcomes(tasks, FOURTEEN),
        sampled=evaluation(env, outcomes(tasks, FOURTEEN, episodes=4)),
        reference_logprob=logprob(-0.09),
    )
    seconds = {"rollout": 2.0, "train": 3.0}
    return [
        {"iteration": 0, "eval": before, "rollout_turns_total": 0, "seconds": {"eval": 1.0}},
        {
            "iteration": 1,
            "eval": None,
            "rollout": {"success_rate": 0.25, "turns": 40},
            "train": {"loss": 0.5},
            "rollout_turns_total": 40,
            "seconds": seconds,
            "guard": {"reference_logprob": -0.101, "baseline": -0.1, "stopped": False},
        },
        {
            "iteration": 2,
            "eval": after,
            "rollout": {"success_rate": 0.5, "turns": 40},
            "train": {"loss": 0.25},
            "rollout_turns_total": 80,
            "seconds": seconds,
            "guard": {"reference_logprob": -0.2, "baseline": -0.1, "stopped": True},
        },
    ]


def test_the_run_table_shows_every_success_figure_with_its_interval(
    env: Environment, tasks: list[str]
) -> None:
    table = run_table(run_rows(env, tasks))
    lines = table.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[3:9] == [
        "held-out success [95% CI]",
        "held-out sampled pass^1 [95% CI]",
        "held-out sampled pass^4 [95% CI]",
        "held-out reference log-prob/token [95% CI]",
        "train-split reference log-prob (guard)",
        "held-out turns",
    ]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:5]]
    eight, fourteen = (
        success_interval(outcomes(tasks, EIGHT)),
        success_interval(outcomes(tasks, FOURTEEN)),
    )
    # Four identical episodes a task are one task's worth of evidence: the same interval.
    assert rows[0][3:7] == [
        eight.format(),
        eight.format(),
        eight.format(),
        "-0.120 [-0.140, -0.100]",
    ]
    assert rows[1][3:8] == ["–", "–", "–", "–", "-0.101 (start -0.100)"]
    assert rows[2][3] == fourteen.format() and rows[2][7] == "-0.200 (start -0.100) · stopped"
    assert "95% percentile bootstrap intervals over tasks" in table
    # A run without the new keys has none of their columns.
    plain = [{"iteration": 0, "eval": {"success_rate": 0.25, "mean_turns": 2.0}, "seconds": {}}]
    assert "sampled" not in run_table(plain).splitlines()[0]
    assert run_table(plain).splitlines()[2].split("|")[4].strip() == "25.0%"


def test_before_after_prints_the_paired_comparison_under_the_table(
    env: Environment, tasks: list[str]
) -> None:
    shown = render(before_after_table("webshop-lite · held-out tasks", run_rows(env, tasks)))
    assert max(map(len, shown)) <= 80
    header = next(line for line in shown if "┃" in line)
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "held-out",
        "before (warm start)",
        "after 2 iterations",
    ]
    eight, fourteen = (
        success_interval(outcomes(tasks, EIGHT)),
        success_interval(outcomes(tasks, FOURTEEN)),
    )
    row = next(line for line in shown if line.startswith("│ success "))
    assert eight.format() in row and fourteen.format() in row
    assert "-0.090 [-0.110, -0.070]" in next(line for line in shown if "reference" in line)
    text = " ".join(" ".join(shown).split())
    paired = re.search(
        r"(sampled, )?after − before, paired over tasks: \+25\.0 points \[(\S+),", text
    )
    assert paired and float(paired.group(2)) > 0
    assert "; 6 wins, 0 losses, 18 ties of 24 tasks" in text
    assert "sampled, after − before, paired over tasks: +25.0 points" in text


def test_before_after_without_per_task_figures_or_a_second_evaluation(
    env: Environment, tasks: list[str]
) -> None:
    old = {"episodes": 24, "success_rate": 0.25, "mean_turns": 2.0}  # before intervals existed
    shown = " ".join(
        render(
            before_after_table("t", [{"iteration": 0, "eval": old}, {"iteration": 1, "eval": old}])
        )
    )
    assert "25.0%" in shown and "paired" not in shown
    only_before = render(before_after_table("t", run_rows(env, tasks)[:2]))
    assert "after" not in " ".join(only_before) and "before (warm start)" in " ".join(only_before)
    # One policy's table (hero warmup) has no comparison at all.
    assert "paired" not in " ".join(render(eval_table("t", [("warm start", old)])))


def test_the_terminal_summary_of_a_run_fits_80_columns(env: Environment, tasks: list[str]) -> None:
    rows = run_rows(env, tasks)
    shown = render(run_summary_table("runs/a-long-run-name · held-out tasks", rows))
    assert max(map(len, shown)) <= 80
    body = [line for line in shown if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in body] == ["0", "2"]  # evaluated iterations
    assert "sampled pass^4" in " ".join(shown) and "-0.120 [-0.140, -0.100]" in body[0]
    assert guard_line(rows).startswith("the drift guard stopped the run at iteration 2")
    assert guard_line(rows[:2]) is None


def compare_runs(
    env: Environment, tasks: list[str], arms: dict[str, list[set[int] | None]], **extra: Any
) -> dict[str, list[list[dict[str, Any]]]]:
    """Runs of 2 iterations per arm and seed: the shared warm start (8 of 24 tasks), then the
    final evaluation winning the given tasks (None: a run that stopped after iteration 0)."""
    warm = evaluation(env, outcomes(tasks, EIGHT), **extra)
    runs: dict[str, list[list[dict[str, Any]]]] = {}
    for arm, finals in arms.items():
        for seed, won in enumerate(finals):
            rows = [{"iteration": 0, "eval": warm, "seed": seed, "seconds": {"eval": 1.0}}]
            if won is not None:
                for number in (1, 2):
                    rows.append(
                        {
                            "iteration": number,
                            "eval": evaluation(env, outcomes(tasks, won), **extra)
                            if number == 2
                            else None,
                            "seed": seed,
                            "rollout_turns_total": 40 * number,
                            "seconds": {"train": 5.0},
                        }
                    )
            runs.setdefault(arm, []).append(rows)
    return runs


def cells(table: str, method: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {method} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def test_results_pool_seeds_and_pair_each_arm_with_the_warm_start_and_grpo(
    env: Environment, tasks: list[str]
) -> None:
    runs = compare_runs(
        env,
        tasks,
        {
            "grpo": [EIGHT | {8, 9}, EIGHT],
            "hero": [FOURTEEN, FOURTEEN],
            "env-feedback": [EIGHT - {0}, EIGHT - {0}],
        },
    )
    warm = runs["grpo"][0][0]["eval"]
    table = results_table(runs, warm, iterations=2)
    header = [c.strip() for c in table.splitlines()[0].strip("|").split(" | ")]
    assert header[:4] == [
        "method",
        "held-out success [95% CI]",
        "vs warm start: points [95% CI] · W L T",
        "vs grpo: points [95% CI] · W L T",
    ]
    assert cells(table, "warm start (before training)")[1:4] == [
        success_interval(outcomes(tasks, EIGHT)).format(),
        "–",
        "–",
    ]
    # Two identical seeds: the pooled interval is the one seed's.
    hero = cells(table, "hero")
    assert hero[1] == success_interval(outcomes(tasks, FOURTEEN)).format()
    assert re.fullmatch(r"\+25\.0 \[\d+\.\d, \d+\.\d\] · 6W 0L 18T", hero[2])
    assert float(hero[2].split("[")[1].split(",")[0]) > 0
    # Against grpo seed by seed: +6 and +4 tasks, so +20.8 points; 6 tasks better on average.
    assert re.fullmatch(r"\+20\.8 \[\d+\.\d, \d+\.\d\] · 6W 0L 18T", hero[3])
    worse = cells(table, "env-feedback")
    assert re.fullmatch(r"-4\.2 \[-\d+\.\d, -?\d+\.\d\] · 0W 1L 23T", worse[2])
    assert cells(table, "grpo")[3] == "–"
    assert hero[-1] == "2" and hero[-3] == "80.00 ± 0.00"  # runs; rollout turns spent
    assert "crossed percentile bootstrap" in table


def test_unfinished_stopped_and_privileged_arms_are_shown_as_such(
    env: Environment, tasks: list[str]
) -> None:
    runs = compare_runs(
        env, tasks, {"hero-reference": [FOURTEEN, None], "demo": [FOURTEEN, FOURTEEN]}
    )
    # The drift guard stopped demo's seed 1 after iteration 1, which it evaluated.
    start, first = runs["demo"][1][:2]
    guarded = {"reference_logprob": -0.5, "baseline": -0.1, "stopped": True}
    runs["demo"][1] = [start, {**first, "eval": runs["demo"][0][2]["eval"], "guard": guarded}]
    warm = runs["demo"][0][0]["eval"]
    table = results_table(runs, warm, iterations=2)
    assert "vs grpo" not in table
    reference = cells(table, "hero-reference (privileged)")
    assert reference[1] == success_interval(outcomes(tasks, FOURTEEN)).format()  # seed 0 only
    assert reference[-1] == "1 of 2 (1 unfinished)"
    assert cells(table, "demo")[-1] == "2 (1 stopped by the drift guard)"
    results = arm_results(runs, warm, iterations=2)
    shown = render(compare_table("runs/compare · webshop-lite", results, against_grpo=False))
    assert max(map(len, shown)) <= 80
    text = " ".join(shown)
    assert "hero-reference (privileged)" in " ".join(text.split()) and "1 of 2 runs" in text
    assert "1 stopped early" in text and "vs grpo" not in text


def test_results_without_per_task_figures_or_with_the_sampled_pass_and_log_likelihood(
    env: Environment, tasks: list[str]
) -> None:
    old = {"iteration": 2, "eval": {"success_rate": 0.5, "mean_turns": 2.0}, "seconds": {}}
    baseline = {"success_rate": 0.25, "mean_turns": 2.0}
    table = results_table(
        {"hero": [[{"iteration": 0, "eval": baseline, "seconds": {}}, old]] * 2},
        baseline,
        iterations=2,
    )
    assert cells(table, "hero")[1:3] == ["50.0%", "–"]
    assert cells(table, "warm start (before training)")[1] == "25.0%"
    measured = compare_runs(
        env,
        tasks,
        {"grpo": [EIGHT, EIGHT], "hero[grounded+self]": [FOURTEEN, FOURTEEN]},
        sampled=evaluation(env, outcomes(tasks, EIGHT, episodes=4)),
        reference_logprob=logprob(-0.12),
    )
    warm = measured["grpo"][0][0]["eval"]
    table = results_table(measured, warm, iterations=2)
    header = table.splitlines()[0]
    for column in ("sampled pass^1 [95% CI]", "sampled pass^4 [95% CI]", "log-prob/token [95% CI]"):
        assert column in header
    assert "| -0.120 [-0.140, -0.100] |" in table
    results = arm_results(measured, warm, iterations=2)
    shown = render(compare_table("runs/compare · webshop-lite", results, against_grpo=True))
    assert max(map(len, shown)) <= 80
    assert "hero[grounded+self]" in " ".join(shown)  # an arm's name is never read as markup
    pooled = pooled_reference_logprob([warm, warm])
    assert isinstance(pooled, Interval)
    assert (pooled.value, pooled.low, pooled.high) == pytest.approx((-0.12, -0.14, -0.10))


def assert_png(path: Path) -> None:
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_reference_log_likelihood_is_plotted_when_measured(
    env: Environment, tasks: list[str], tmp_path: Path
) -> None:
    rows = run_rows(env, tasks)
    paths = plot_run(rows, tmp_path / "run")
    assert [p.name for p in paths[:2]] == ["success.png", "reference-logprob.png"]
    for path in paths:
        assert_png(path)
    unmeasured = [
        {**row, "eval": row["eval"] and {**row["eval"], "reference_logprob": None}} for row in rows
    ]
    assert "reference-logprob.png" not in [p.name for p in plot_run(unmeasured, tmp_path / "u")]
    runs = compare_runs(env, tasks, {"hero": [FOURTEEN, EIGHT]}, reference_logprob=logprob(-0.1))
    names = [p.name for p in plot_compare(runs, tmp_path / "compare")]
    assert names[:2] == ["compare-success.png", "compare-reference-logprob.png"]


def test_the_paired_plot_draws_each_arms_difference_with_the_warm_start_and_grpo(
    env: Environment, tasks: list[str], tmp_path: Path
) -> None:
    runs = compare_runs(env, tasks, {"grpo": [EIGHT | {8, 9}], "hero": [FOURTEEN]})
    results = arm_results(runs, runs["grpo"][0][0]["eval"], iterations=2)
    lines = [(r.label, r.vs_warm_start, r.vs_grpo) for r in results[1:]]
    both = plot_paired(lines, tmp_path / "paired.png", baseline="grpo")
    assert_png(both)
    # Without a grpo arm there is one panel: half as wide.
    alone = plot_paired(
        [(line[0], line[1], None) for line in lines], tmp_path / "alone.png", baseline="grpo"
    )
    assert matplotlib.image.imread(alone).shape[1] * 2 == matplotlib.image.imread(both).shape[1]
