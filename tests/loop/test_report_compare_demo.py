"""``hero report``, ``hero compare`` and ``hero demo`` on the tiny model: plots that are real
images, tables with every success figure's 95% interval and the paired comparisons, terminal
tables that fit 80 columns, a demo with a before/after table."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import matplotlib.image
import yaml
from conftest import tiny_settings
from typer.testing import CliRunner

from hero_agents.cli import app
from hero_agents.loop.run_dir import RunDir

runner = CliRunner()

CI = re.compile(r"\d+\.\d% \[\d+\.\d, \d+\.\d\]")
"""A success figure with its interval: ``33.3% [21.9, 45.8]``."""
PAIRED = re.compile(r"[+-]\d+\.\d \[-?\d+\.\d, -?\d+\.\d\] · \d+W \d+L \d+T")
"""A paired difference in points with its interval and tally: ``+8.3 [-2.1, 18.8] · 5W 3L 16T``."""


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "80"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def table_lines(printed: str) -> list[str]:
    """The printed lines of rich tables (the ones with column rules or separators)."""
    return [line for line in printed.splitlines() if "│" in line or "─" in line]


def assert_png(path: Path) -> None:
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100


def test_report_plots_a_run_and_writes_its_table(
    write_config: Callable[..., Path], tmp_path: Path, hero_cache: Path
) -> None:
    out = tmp_path / "run"
    invoke("train", str(write_config(budget={"iterations": 2})), "--out", str(out))
    printed = invoke("report", str(out))

    for stem in ("success", "turns", "unnecessary"):
        assert_png(out / "report" / f"{stem}.png")
    table = (out / "report" / "report.md").read_text()
    assert (
        "| iteration | rollout turns spent | rollout success | held-out success [95% CI] |" in table
    )
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == ["0", "1", "2"]
    assert all(CI.fullmatch(row.split("|")[4].strip()) for row in rows)
    # The terminal gets the evaluated iterations with their intervals, in 80 columns.
    summary = [line for line in table_lines(printed) if CI.search(line)]
    assert [line.split("│")[1].strip() for line in summary] == ["0", "1", "2"]
    assert max(map(len, printed.splitlines())) <= 80


def test_compare_runs_every_method_and_seed_from_one_shared_warm_start(
    tmp_path: Path, tiny_model_dir: Path, hero_cache: Path
) -> None:
    config = tmp_path / "compare.yaml"
    settings = {
        "train": tiny_settings(tiny_model_dir),
        "methods": ["env-feedback", "grpo"],
        "seeds": [0, 1],
    }
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "compare"
    printed = invoke("compare", str(config), "--out", str(out))
    # Seed by seed, every arm: a comparison stopped part-way has whole seeds of every arm.
    started = re.findall(r"(env-feedback|grpo) · seed (\d)", printed)
    assert started == [("env-feedback", "0"), ("grpo", "0"), ("env-feedback", "1"), ("grpo", "1")]

    table = (out / "results.md").read_text()
    header = table.splitlines()[2].split(" | ")
    assert header[1:3] == ["held-out success [95% CI]", "reference log-prob/token [95% CI]"]
    column = {name: position for position, name in enumerate(header)}
    vs_warm = column["vs warm start: points [95% CI] · W L T"]
    vs_grpo = column["vs grpo: points [95% CI] · W L T"]
    warm = next(line for line in table.splitlines() if line.startswith("| warm start")).split(" | ")
    assert CI.fullmatch(warm[1]) and [warm[vs_warm], warm[vs_grpo]] == ["–", "–"]
    for method in ("env-feedback", "grpo"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {method} |"))
        cells = row.split(" | ")
        assert CI.fullmatch(cells[1]) and PAIRED.fullmatch(cells[vs_warm])
        # only the other arm is compared with grpo, seed by seed
        assert (PAIRED.fullmatch(cells[vs_grpo]) is not None) == (method != "grpo")
        assert row.count("±") == 5 and row.rstrip(" |").endswith("| 2")  # 2 seeds finished
        for seed in (0, 1):
            run = RunDir(out / method / f"seed-{seed}")
            assert run.finished(1)
            # Every run's iteration 0 is the one shared evaluation of the warm start.
            assert run.eval(0).read_bytes() == (out / "warm-start" / "eval.jsonl").read_bytes()
            first = json.loads(run.metrics.read_text().splitlines()[0])
            assert first["method"] == method and first["seed"] == seed
    assert "crossed percentile bootstrap" in table
    # The terminal's table: every arm with its interval and paired differences, in 80 columns.
    lines = printed.splitlines()
    table_rows = lines[next(i for i, line in enumerate(lines) if line.startswith("method ")) :]
    names = [line.split()[0] for line in table_rows if CI.search(line)]
    assert names == ["warm", "env-feedback", "grpo"]
    assert max(map(len, printed.splitlines())) <= 80
    for stem in ("success", "paired", "turns", "unnecessary"):
        assert_png(out / f"compare-{stem}.png")

    # A rerun resumes: nothing left to do, the same table (the intervals are seeded).
    rerun = invoke("compare", str(config), "--out", str(out))
    assert rerun[rerun.index("\nmethod ") :] == printed[printed.index("\nmethod ") :]
    assert (out / "results.md").read_text() == table

    # hero report reads a comparison back: the same table; of one stopped part-way, the seeds
    # that every arm has finished, and which are not.
    invoke("report", str(out))
    assert (out / "results.md").read_text() == table
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    shutil.rmtree(partial / "grpo" / "seed-1")
    printed = invoke("report", str(partial))
    assert "seed(s) 1: not every arm has finished" in " ".join(printed.split())
    table = (partial / "results.md").read_text()
    assert table.splitlines()[0].endswith(" · seeds 0")
    for method in ("env-feedback", "grpo"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {method} |"))
        assert row.rstrip(" |").endswith("| 1")  # one seed counted
    shutil.rmtree(partial / "env-feedback" / "seed-0")
    result = runner.invoke(app, ["report", str(partial)])
    assert result.exit_code == 2 and "no seed has every arm finished yet" in result.output


def test_demo_prints_before_and_after_and_who_wrote_the_diagnoses(
    tmp_path: Path, tiny_model_dir: Path, hero_cache: Path
) -> None:
    out = tmp_path / "demo"
    printed = invoke("demo", "--model", str(tiny_model_dir), "--iterations", "1", "--out", str(out))
    header = next(line for line in printed.splitlines() if "┃" in line)
    assert [cell.strip() for cell in header.split("┃")[1:-1]] == [
        "held-out",
        "before (warm start)",
        "after 1 iteration",
    ]
    success = next(line for line in printed.splitlines() if line.startswith("│ success "))
    assert len(CI.findall(success)) == 2
    words = " ".join(printed.split())
    assert re.search(r"after − before, paired over tasks: [+-]\d+\.\d points \[", words)
    assert "diagnoses written by: reference (privileged): notes from the benchmark's" in words
    assert "reads the benchmark's" in words  # the privileged notice, said after the table too
    assert max(map(len, printed.splitlines())) <= 80
    assert_png(out / "report" / "success.png")
    assert RunDir(out).finished(1)
