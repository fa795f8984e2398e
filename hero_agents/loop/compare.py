"""``hero compare``: every arm on the same tasks, seeds and budget, in one table.

The comparison's folder holds one training run per arm and seed (``OUT/<arm>/seed-<s>/``,
each resumable like any ``hero train`` run), the warm start's held-out evaluation shared by all
of them (``OUT/warm-start/``: every run starts from the same warm-started weights, so it is
measured once), ``results.md`` and the plots, written after every seed for the seeds done so far
(`whole_seeds` reads them back for ``hero report``). Rerunning resumes where it stopped.

Each arm's row gives its final held-out success figures pooled over seeds and tasks with 95%
intervals, and its paired per-task comparison with the warm start and with GRPO (`ArmResult`);
turns per episode, the unnecessary-turn and invalid-action rates and wall time as mean ±
standard deviation over seeds. Nothing is tuned per arm. Arms that see the benchmark's answers
are marked privileged; arms whose runs did not all finish say so.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hero_agents.backend import PolicyBackend
from hero_agents.errors import ConfigError
from hero_agents.loop.config import CompareConfig, arm_folder, dump_config, load_compare_config
from hero_agents.loop.figures import (
    Figure,
    cell,
    difference_cell,
    guard,
    paired,
    pass_hat_cell,
    pooled_pass_hat_k,
    pooled_reference_logprob,
    pooled_success,
    sampled,
    tally_cell,
)
from hero_agents.loop.reflectors import LLMReflector
from hero_agents.loop.report import mean_std, plot_compare, plot_paired
from hero_agents.loop.run_dir import COMPARE_FOLDER, RunDir, read_metrics
from hero_agents.loop.runner import ReferenceChecks, evaluate_policy
from hero_agents.loop.session import Session, run_log
from hero_agents.loop.training import changed_settings, prepare_run, run_training
from hero_agents.methods import PRIVILEGED_MARK, parse_arm
from hero_agents.outputs import claim_folder
from hero_agents.phases import Progress, no_progress
from hero_agents.stats import RESAMPLES, PairedComparison
from hero_agents.storage import read_json, write_json_atomic


def prepare_compare(config: CompareConfig, out: Path, *, overwrite: bool = False) -> None:
    """Make `out` the folder of `config`'s comparison (new, resumed, or started over)."""
    snapshot = out / COMPARE_FOLDER.marker
    arms = [arm_folder(arm) for arm in config.methods]
    if snapshot.is_file():
        arms += [arm_folder(arm) for arm in load_compare_config(snapshot).methods]
    if claim_folder(out, COMPARE_FOLDER, overwrite=overwrite, extra_owned=arms):
        started = load_compare_config(snapshot)
        changed = changed_settings(started.model_dump(mode="json"), config.model_dump(mode="json"))
        if changed:
            lines = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changed.items())
            raise ConfigError(
                f"{out} holds a comparison with other settings ({lines}); rerun with the same "
                "config to resume, or pass --overwrite to start over"
            )
        return
    dump_config(config, snapshot)


def _share_baseline(baseline: Path, run_root: Path, arm: str, seed: int) -> None:
    """Give a run the warm start's evaluation as its iteration 0 (same weights, same tasks)."""
    run = RunDir(run_root)
    if run.finished(0):
        return
    run.iteration(0).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(baseline / "eval.jsonl", run.eval(0))
    row = read_json(baseline / "metrics.json")
    write_json_atomic(run.iteration_metrics(0), {**row, "method": arm, "seed": seed})


def arm_label(arm: str) -> str:
    """The arm's name in tables, marked when it sees the benchmark's answers."""
    row, reflector = parse_arm(arm)
    privileged = row.privileged or reflector == "reference"
    return arm + (PRIVILEGED_MARK if privileged else "")


BASELINE_ARM = "grpo"
"""The arm every other arm is also compared with, task by task, when it is in the comparison."""

SPREAD_COLUMNS = (
    ("turns / episode", "mean_turns", "number"),
    ("unnecessary turns", "unnecessary_turn_rate", "percent"),
    ("invalid actions", "invalid_action_rate", "percent"),
)
"""Figures without per-task values: shown as mean ± standard deviation over seeds."""


@dataclass(frozen=True)
class ArmResult:
    """One line of a comparison: an arm's final held-out figures over its seeds (or the warm
    start's), each success figure with its 95% interval."""

    label: str
    """The arm's name (`arm_label`), or the warm start's."""
    runs: int
    """Runs (seeds) the arm has; 0 for the warm start."""
    finished: int
    """Runs that reached the end of their budget."""
    stopped: int
    """Runs the drift guard stopped early (their last evaluation counts, like a finished one)."""
    success: Figure | None
    pass_hat_k: tuple[int, Figure] | None
    sampled_success: Figure | None
    sampled_pass_hat_k: tuple[int, Figure] | None
    reference_logprob: Figure | None
    vs_warm_start: PairedComparison | None
    vs_grpo: PairedComparison | None
    per_seed: dict[str, list[float]] = field(default_factory=dict)
    """Per counted run: `SPREAD_COLUMNS`' figures, ``rollout_turns_total`` and ``seconds``."""

    @property
    def counted(self) -> int:
        """Runs whose last evaluation the figures pool."""
        return self.finished + self.stopped

    @property
    def complete(self) -> bool:
        """Every run finished or was stopped by the guard."""
        return self.counted == self.runs


@dataclass(frozen=True)
class _Run:
    """One seed's run of an arm, as the comparison counts it."""

    seed: int
    state: str
    """finished, stopped (by the drift guard) or unfinished."""
    final: dict[str, Any] | None
    """The row of its last evaluation, when the run counts."""
    seconds: float
    """Wall time of its iterations after the shared warm start."""


def _run(rows: list[dict[str, Any]], position: int, iterations: int) -> _Run:
    """A run's seed (its position among the arm's runs where its rows do not say), state, and
    the row of its last evaluation when it finished or was stopped by the drift guard."""
    seed = next((row["seed"] for row in rows if row.get("seed") is not None), position)
    seconds = sum(sum(row["seconds"].values()) for row in rows[1:])
    last = next((row for row in reversed(rows) if row.get("eval")), None)
    if rows and rows[-1]["iteration"] >= iterations and rows[-1].get("eval"):
        return _Run(seed, "finished", last, seconds)
    if last is not None and any(entry.stopped for entry in map(guard, rows) if entry):
        return _Run(seed, "stopped", last, seconds)
    return _Run(seed, "unfinished", None, seconds)


def _result(
    label: str,
    finals: list[dict[str, Any]],
    *,
    runs: list[_Run] | None = None,
    vs_warm_start: PairedComparison | None = None,
    vs_grpo: PairedComparison | None = None,
) -> ArmResult:
    """A comparison's line from the last evaluated rows it pools."""
    runs = runs or []
    evals = [row["eval"] for row in finals]
    samples = [sampled(e) for e in evals]
    have_samples = bool(samples) and all(samples)
    return ArmResult(
        label=label,
        runs=len(runs),
        finished=sum(run.state == "finished" for run in runs),
        stopped=sum(run.state == "stopped" for run in runs),
        success=pooled_success(evals),
        pass_hat_k=pooled_pass_hat_k(evals),
        sampled_success=pooled_success(samples) if have_samples else None,
        sampled_pass_hat_k=pooled_pass_hat_k(samples) if have_samples else None,
        reference_logprob=pooled_reference_logprob(evals),
        vs_warm_start=vs_warm_start,
        vs_grpo=vs_grpo,
        per_seed={
            **{
                key: [e[key] for e in evals if e.get(key) is not None]
                for _, key, _ in SPREAD_COLUMNS
            },
            "rollout_turns_total": [float(row.get("rollout_turns_total", 0)) for row in finals],
            "seconds": [run.seconds for run in runs if run.final is not None],
        },
    )


def arm_results(
    runs: dict[str, list[list[dict[str, Any]]]], baseline: dict[str, Any], *, iterations: int
) -> list[ArmResult]:
    """The warm start's line and each arm's: final held-out figures pooled over the runs that
    finished (or that the drift guard stopped), and the paired per-task comparison of each arm
    with the warm start and, seed by seed, with `BASELINE_ARM` when it is an arm."""
    arms = {
        arm: [_run(rows, position, iterations) for position, rows in enumerate(seeds)]
        for arm, seeds in runs.items()
    }
    finals = {
        arm: {run.seed: run.final for run in arm_runs if run.final is not None}
        for arm, arm_runs in arms.items()
    }
    results = [_result("warm start (before training)", [{"eval": baseline}])]
    for arm, arm_runs in arms.items():
        evals = {seed: row["eval"] for seed, row in finals[arm].items()}
        grpo = finals.get(BASELINE_ARM, {}) if arm != BASELINE_ARM else {}
        both = [seed for seed in evals if seed in grpo]
        results.append(
            _result(
                arm_label(arm),
                list(finals[arm].values()),
                runs=arm_runs,
                vs_warm_start=paired(list(evals.values()), [baseline] * len(evals)),
                vs_grpo=paired([evals[s] for s in both], [grpo[s]["eval"] for s in both]),
            )
        )
    return results


def _spread(values: list[float], kind: str) -> str:
    if not values:
        return "–"
    mean, sd = mean_std(values)
    if kind == "percent":
        return f"{mean:.1%} ± {sd:.1%}"
    return f"{mean:.2f} ± {sd:.2f}"


def runs_cell(result: ArmResult) -> str:
    """How many runs the figures pool, and why the others do not count."""
    if not result.runs:
        return "–"
    text = str(result.counted) if result.complete else f"{result.counted} of {result.runs}"
    notes = []
    if not result.complete:
        notes.append(f"{result.runs - result.counted} unfinished")
    if result.stopped:
        notes.append(f"{result.stopped} stopped by the drift guard")
    return text + (f" ({', '.join(notes)})" if notes else "")


def _paired_cell(comparison: PairedComparison | None) -> str:
    if comparison is None:
        return "–"
    return f"{difference_cell(comparison)} · {tally_cell(comparison)}"


def results_caption(results: list[ArmResult], *, against_grpo: bool) -> str:
    """What a comparison's figures are and how their intervals were drawn."""
    seeds = max((r.runs for r in results), default=0)
    versus = f"vs warm start / vs {BASELINE_ARM}" if against_grpo else "vs warm start"
    by_seed = f" ({BASELINE_ARM} paired seed by seed)" if against_grpo else ""
    return (
        f"Final held-out figures over {seeds} seed{'s' if seeds != 1 else ''}. Success (greedy "
        "pass@1; pass^k as tau2-bench; sampled: k episodes per task at temperature > 0) is the "
        "mean over seeds and tasks with a 95% interval from a crossed percentile bootstrap "
        f"({RESAMPLES:,} draws) that resamples the held-out tasks and, independently, the seeds "
        "(`hero_agents.stats.pooled_mean_interval`); the warm start's resamples tasks only. "
        f"{versus}: the arm minus the baseline on each task's success, in points, averaged over "
        f"tasks and seeds{by_seed}, with the same bootstrap (`stats.pooled_paired_comparison`); "
        "W / L / T: tasks on which the arm did better, worse or the same, averaged over seeds. "
        "Reference log-prob: mean log-prob per token of the reference actions on held-out "
        "tasks, mean over seeds, its interval combining the seeds' spread with each seed's own "
        "(`stats.pooled_estimate`). Other figures: mean ± standard deviation over seeds. Runs: "
        "those whose last evaluation the figures pool; unfinished runs are left out. Privileged "
        "arms see the benchmark's answers: an upper bound, never evidence against a baseline."
    )


def results_table(
    runs: dict[str, list[list[dict[str, Any]]]], baseline: dict[str, Any], *, iterations: int
) -> str:
    """The comparison as a markdown table, one row per arm and one for the warm start, with
    its caption; `iterations` is each run's budget (runs short of it are unfinished)."""
    return _markdown(
        arm_results(runs, baseline, iterations=iterations), against_grpo=BASELINE_ARM in runs
    )


def _markdown(results: list[ArmResult], *, against_grpo: bool) -> str:
    """`results_table` of the comparison's lines."""
    columns: list[tuple[str, Callable[[ArmResult], str]]] = [
        ("method", lambda r: r.label),
        ("held-out success [95% CI]", lambda r: cell(r.success)),
    ]
    k = next((r.pass_hat_k[0] for r in results if r.pass_hat_k), None)
    if k is not None:
        columns.append((f"pass^{k} [95% CI]", lambda r: pass_hat_cell(r.pass_hat_k, k)))
    if any(r.sampled_success is not None for r in results):
        columns.append(("sampled pass^1 [95% CI]", lambda r: cell(r.sampled_success)))
    sk = next((r.sampled_pass_hat_k[0] for r in results if r.sampled_pass_hat_k), None)
    if sk is not None:
        columns.append(
            (f"sampled pass^{sk} [95% CI]", lambda r: pass_hat_cell(r.sampled_pass_hat_k, sk))
        )
    if any(r.reference_logprob is not None for r in results):
        columns.append(
            (
                "reference log-prob/token [95% CI]",
                lambda r: cell(r.reference_logprob, percent=False),
            )
        )
    columns.append(
        ("vs warm start: points [95% CI] · W L T", lambda r: _paired_cell(r.vs_warm_start))
    )
    if against_grpo:
        columns.append(
            (f"vs {BASELINE_ARM}: points [95% CI] · W L T", lambda r: _paired_cell(r.vs_grpo))
        )
    for header, key, kind in SPREAD_COLUMNS:
        columns.append(
            (header, lambda r, key=key, kind=kind: _spread(r.per_seed.get(key, []), kind))
        )
    columns += [
        (
            "rollout turns spent",
            lambda r: (
                _spread(r.per_seed.get("rollout_turns_total", []), "number") if r.runs else "0"
            ),
        ),
        ("wall time (s)", lambda r: _spread(r.per_seed.get("seconds", []), "number")),
        ("runs", runs_cell),
    ]
    lines = [
        "| " + " | ".join(header for header, _ in columns) + " |",
        "|" + " --- |" * len(columns),
        *("| " + " | ".join(render(r) for _, render in columns) + " |" for r in results),
    ]
    return "\n".join(lines) + f"\n\n{results_caption(results, against_grpo=against_grpo)}\n"


def run_compare(
    config: CompareConfig,
    out: Path,
    *,
    session: Session,
    backend: PolicyBackend,
    llm_reflector: LLMReflector,
    progress: Progress = no_progress,
    on_run: Callable[[str, int], None] | None = None,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
) -> list[ArmResult]:
    """Run (or resume) every arm and seed in `out` (set up by `prepare_compare`); write the
    results table and plots, and return the comparison's lines."""
    base = config.train
    with run_log(out / "log.txt"):
        baseline = out / "warm-start"
        if not (baseline / "metrics.json").is_file():
            checks = ReferenceChecks(base, session.env, session.warm_model)
            figures = evaluate_policy(
                base,
                session.env,
                backend,
                baseline / "eval.jsonl",
                progress=progress,
                reference=lambda: checks.held_out(None),
            )
            row = {
                "iteration": 0,
                "eval": figures,
                "guard": checks.guard(None, None),
                "policy_version": "warm-start",
                "rollout_turns_total": 0,
                "seconds": {"eval": figures["seconds"]},
            }
            write_json_atomic(baseline / "metrics.json", row)
        runs: dict[str, list[list[dict[str, Any]]]] = {}
        # Seed by seed, every arm: a comparison stopped part-way has whole seeds of every arm.
        for done, seed in enumerate(config.seeds, 1):
            for arm in config.methods:
                root = out / arm_folder(arm) / f"seed-{seed}"
                if on_run is not None:
                    on_run(arm, seed)
                run_config = config.run_config(arm, seed)
                prepare_run(run_config, root)
                _share_baseline(baseline, root, arm, seed)
                backend.reset()
                rows = run_training(
                    run_config,
                    root,
                    session=session,
                    backend=backend,
                    llm_reflector=llm_reflector,
                    progress=progress,
                    on_iteration=on_iteration,
                )
                runs.setdefault(arm, []).append(rows)
            if done < len(config.seeds):  # the table so far: whole seeds of every arm
                write_results(config, out, runs, config.seeds[:done])
    return write_results(config, out, runs, config.seeds)


def write_results(
    config: CompareConfig,
    out: Path,
    runs: dict[str, list[list[dict[str, Any]]]],
    seeds: list[int],
    *,
    target: Path | None = None,
) -> list[ArmResult]:
    """Write comparison `out`'s ``results.md`` and plots (into `target`, default `out`) for
    `runs` (each arm's runs of `seeds`, in that order); returns the comparison's lines."""
    target = target if target is not None else out
    warm = read_json(out / "warm-start" / "metrics.json")["eval"]
    iterations = config.train.budget.iterations
    results = arm_results(runs, warm, iterations=iterations)
    table = _markdown(results, against_grpo=BASELINE_ARM in runs)
    plots = plot_compare({arm_label(arm): arm_runs for arm, arm_runs in runs.items()}, target)
    plots.insert(
        1,
        plot_paired(
            [(r.label, r.vs_warm_start, r.vs_grpo) for r in results[1:]],
            target / "compare-paired.png",
            baseline=BASELINE_ARM,
        ),
    )
    (target / "results.md").write_text(
        f"# hero compare · {config.train.env} · seeds {', '.join(map(str, seeds))}\n\n{table}\n"
        + "".join(f"![{p.stem}]({p.name})\n" for p in plots)
    )
    return results


def whole_seeds(
    out: Path,
) -> tuple[CompareConfig, list[int], dict[str, list[list[dict[str, Any]]]]]:
    """A comparison folder's config, and the runs of its whole seeds (those whose every arm ran
    to the end of its budget or was stopped by the drift guard), read from disk."""
    snapshot = out / COMPARE_FOLDER.marker
    if not snapshot.is_file():
        raise ConfigError(f"{out} is not a comparison folder (no {COMPARE_FOLDER.marker})")
    config = load_compare_config(snapshot)
    if not (out / "warm-start" / "metrics.json").is_file():
        raise ConfigError(f"{out}: the warm start has not been evaluated yet, nothing to report")
    iterations = config.train.budget.iterations
    seeds: list[int] = []
    runs: dict[str, list[list[dict[str, Any]]]] = {arm: [] for arm in config.methods}
    for seed in config.seeds:
        roots = {arm: out / arm_folder(arm) / f"seed-{seed}" for arm in config.methods}
        rows = {
            arm: read_metrics(root) if RunDir(root).metrics.is_file() else []
            for arm, root in roots.items()
        }
        if all(
            _run(arm_rows, seed, iterations).state != "unfinished" for arm_rows in rows.values()
        ):
            seeds.append(seed)
            for arm, arm_rows in rows.items():
                runs[arm].append(arm_rows)
    if not seeds:
        raise ConfigError(f"{out}: no seed has every arm finished yet; rerun hero compare to go on")
    return config, seeds, runs
