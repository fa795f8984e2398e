"""``hero compare``: every arm on the same tasks, seeds and budget, in one table.

The comparison's folder holds one training run per arm and seed (``OUT/<arm>/seed-<s>/``,
each resumable like any ``hero train`` run), the warm start's held-out evaluation shared by all
of them (``OUT/warm-start/``: every run starts from the same warm-started weights, so it is
measured once), ``results.md`` and the plots. Rerunning resumes where it stopped.

Each arm's row gives, over seeds, the mean ± standard deviation of its final held-out success,
turns per episode, unnecessary-turn rate, and wall time; nothing is tuned per arm. Arms that
see the benchmark's answers are marked privileged.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hero_agents.backend import PolicyBackend
from hero_agents.errors import ConfigError
from hero_agents.loop.config import CompareConfig, arm_folder, dump_config, load_compare_config
from hero_agents.loop.reflectors import LLMReflector
from hero_agents.loop.report import mean_std, plot_compare
from hero_agents.loop.run_dir import RunDir
from hero_agents.loop.runner import evaluate_policy
from hero_agents.loop.session import Session, run_log
from hero_agents.loop.training import changed_settings, prepare_run, run_training
from hero_agents.methods import PRIVILEGED_MARK, parse_arm
from hero_agents.outputs import FolderKind, claim_folder
from hero_agents.phases import Progress, no_progress
from hero_agents.storage import read_json, write_json_atomic

COMPARE_FOLDER = FolderKind(
    "comparison folder",
    marker="compare.yaml",
    owned=("log.txt", "warm-start", "results.md", "compare-*.png"),
)

COLUMNS = (
    ("held-out success", "success_rate", "percent"),
    ("turns / episode", "mean_turns", "number"),
    ("unnecessary turns", "unnecessary_turn_rate", "percent"),
    ("invalid actions", "invalid_action_rate", "percent"),
)


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


def _cell(values: list[float], kind: str) -> str:
    if not values:
        return "–"
    mean, sd = mean_std(values)
    if kind == "percent":
        return f"{mean:.1%} ± {sd:.1%}"
    return f"{mean:.2f} ± {sd:.2f}"


def arm_label(arm: str) -> str:
    """The arm's name in tables, marked when it sees the benchmark's answers."""
    row, reflector = parse_arm(arm)
    privileged = row.privileged or reflector == "reference"
    return arm + (PRIVILEGED_MARK if privileged else "")


def results_table(runs: dict[str, list[list[dict[str, Any]]]], baseline: dict[str, Any]) -> str:
    """The comparison as a markdown table: one row per arm (and the warm start)."""
    names = [name for name, _, _ in COLUMNS]
    header = f"| method | {' | '.join(names)} | rollout turns spent | wall time (s) | seeds |"
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    cells = [
        _cell([baseline[key]] if baseline.get(key) is not None else [], k) for _, key, k in COLUMNS
    ]
    lines.append(f"| warm start (before training) | {' | '.join(cells)} | 0 | – | – |")
    for arm, seeds in runs.items():
        finals = [rows[-1] for rows in seeds if rows and rows[-1].get("eval")]
        cells = [
            _cell([r["eval"][key] for r in finals if r["eval"].get(key) is not None], kind)
            for _, key, kind in COLUMNS
        ]
        spent = _cell([float(r["rollout_turns_total"]) for r in finals], "number")
        wall = _cell(
            [sum(sum(r["seconds"].values()) for r in rows[1:]) for rows in seeds], "number"
        )
        lines.append(
            f"| {arm_label(arm)} | {' | '.join(cells)} | {spent} | {wall} | {len(finals)} |"
        )
    return "\n".join(lines) + "\n"


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
) -> str:
    """Run (or resume) every arm and seed in `out` (set up by `prepare_compare`); write and
    return the results table."""
    base = config.train
    with run_log(out / "log.txt"):
        baseline = out / "warm-start"
        if not (baseline / "metrics.json").is_file():
            figures = evaluate_policy(
                base, session.env, backend, baseline / "eval.jsonl", progress=progress
            )
            row = {
                "iteration": 0,
                "eval": figures,
                "policy_version": "warm-start",
                "rollout_turns_total": 0,
                "seconds": {"eval": figures["seconds"]},
            }
            write_json_atomic(baseline / "metrics.json", row)
        runs: dict[str, list[list[dict[str, Any]]]] = {}
        for arm in config.methods:
            for seed in config.seeds:
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
    table = results_table(runs, read_json(baseline / "metrics.json")["eval"])
    plots = plot_compare(runs, out)
    seeds = ", ".join(map(str, config.seeds))
    (out / "results.md").write_text(
        f"# hero compare · {base.env} · seeds {seeds}\n\n{table}\n"
        + "".join(f"![{p.stem}]({p.name})\n" for p in plots)
    )
    return table
