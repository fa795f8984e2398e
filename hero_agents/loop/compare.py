"""``hero compare CONFIG.yaml``: every method on the same tasks, seeds and budget, in one table.

The comparison's folder holds one training run per method and seed
(``OUT/<method>/seed-<s>/``, each resumable like any ``hero train`` run), the warm start's
held-out evaluation shared by all of them (``OUT/warm-start/``: every run starts from the same
warm-started weights, so it is measured once), ``results.md`` and the plots. Rerunning the
command resumes where it stopped.

Each method's row gives, over seeds, the mean ± standard deviation of its final held-out
success, turns per episode, unnecessary-turn rate, and wall time; nothing is tuned per method.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from hero_agents.console import console, fail, stdout
from hero_agents.errors import ConfigError, HeroError
from hero_agents.loop.config import CompareConfig, dump_config, load_compare_config
from hero_agents.loop.report import mean_std, plot_compare
from hero_agents.loop.run_dir import RunDir, read_json, write_json_atomic

COLUMNS = (
    ("held-out success", "success_rate", "percent"),
    ("turns / episode", "mean_turns", "number"),
    ("unnecessary turns", "unnecessary_turn_rate", "percent"),
    ("invalid actions", "invalid_action_rate", "percent"),
)


def _check_folder(config: CompareConfig, out: Path, *, overwrite: bool) -> None:
    snapshot = out / "compare.yaml"
    if snapshot.is_file() and not overwrite:
        if load_compare_config(snapshot) != config:
            raise ConfigError(
                f"{out} holds a comparison with other settings ({snapshot}); rerun with the same "
                "config to resume, or pass --overwrite to start over"
            )
        return
    if overwrite and out.exists():
        shutil.rmtree(out)
    elif out.exists() and any(out.iterdir()):
        raise HeroError(f"{out} exists and is not a comparison folder: choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    dump_config(config, snapshot)


def _share_baseline(baseline: Path, run_root: Path, method: str, seed: int) -> None:
    """Give a run the warm start's evaluation as its iteration 0 (same weights, same tasks)."""
    run = RunDir(run_root)
    if run.finished(0):
        return
    run.iteration(0).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(baseline / "eval.jsonl", run.eval(0))
    row = read_json(baseline / "metrics.json")
    write_json_atomic(run.iteration_metrics(0), {**row, "method": method, "seed": seed})


def _cell(values: list[float], kind: str) -> str:
    if not values:
        return "–"
    mean, sd = mean_std(values)
    if kind == "percent":
        return f"{mean:.1%} ± {sd:.1%}"
    return f"{mean:.2f} ± {sd:.2f}"


def results_table(
    config: CompareConfig, runs: dict[str, list[list[dict[str, Any]]]], baseline: dict[str, Any]
) -> str:
    """The comparison as a markdown table: one row per method (and the warm start)."""
    names = [name for name, _, _ in COLUMNS]
    header = f"| method | {' | '.join(names)} | rollout turns spent | wall time (s) | seeds |"
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    cells = [
        _cell([baseline[key]] if baseline.get(key) is not None else [], k) for _, key, k in COLUMNS
    ]
    lines.append(f"| warm start (before training) | {' | '.join(cells)} | 0 | – | – |")
    for method, seeds in runs.items():
        finals = [rows[-1] for rows in seeds if rows and rows[-1].get("eval")]
        cells = [
            _cell([r["eval"][key] for r in finals if r["eval"].get(key) is not None], kind)
            for _, key, kind in COLUMNS
        ]
        spent = _cell([float(r["rollout_turns_total"]) for r in finals], "number")
        wall = _cell(
            [sum(sum(r["seconds"].values()) for r in rows[1:]) for rows in seeds], "number"
        )
        lines.append(f"| {method} | {' | '.join(cells)} | {spent} | {wall} | {len(finals)} |")
    return "\n".join(lines) + "\n"


def run_compare(config: CompareConfig, out: Path, *, overwrite: bool = False) -> str:
    """Run (or resume) every method and seed; write and return the results table."""
    from hero_agents.loop.commands import run_training
    from hero_agents.loop.runner import evaluate_policy, prepare_run
    from hero_agents.loop.session import open_backend, open_session, phase_progress, run_log

    _check_folder(config, out, overwrite=overwrite)
    base = config.train
    with run_log(out / "log.txt"):
        session = open_session(base)
        baseline = out / "warm-start"
        backend = open_backend(base, session.warm_model, baseline)
        try:
            if not (baseline / "metrics.json").is_file():
                with phase_progress() as progress:
                    figures = evaluate_policy(
                        base, session.env, backend, baseline, progress=progress
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
            for method in config.methods:
                for seed in config.seeds:
                    root = out / method / f"seed-{seed}"
                    console.rule(f"{method} · seed {seed}")
                    run_config = config.run_config(method, seed)
                    prepare_run(run_config, root)
                    _share_baseline(baseline, root, method, seed)
                    rows = run_training(run_config, root, session=session, backend=backend)
                    runs.setdefault(method, []).append(rows)
        finally:
            backend.close()
    table = results_table(config, runs, read_json(baseline / "metrics.json")["eval"])
    plots = plot_compare(runs, out)
    seeds = ", ".join(map(str, config.seeds))
    (out / "results.md").write_text(
        f"# hero compare · {base.env} · seeds {seeds}\n\n{table}\n"
        + "".join(f"![{p.stem}]({p.name})\n" for p in plots)
    )
    return table


def compare(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG.yaml", help="Compare config.")],
    out: Annotated[
        Path | None, typer.Option(help="Comparison folder (default: runs/<config name>).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Start over (deletes --out).")] = False,
) -> None:
    """Train every method for every seed on the same tasks and budget; print one table."""
    root = out if out is not None else Path("runs") / config_path.stem
    try:
        table = run_compare(load_compare_config(config_path), root, overwrite=overwrite)
    except HeroError as error:
        raise fail(error) from None
    stdout.out(table)
    console.print(f"results: {root / 'results.md'} · plots: {root}/compare-*.png")
