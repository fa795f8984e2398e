"""``hero report``, ``hero compare`` and ``hero demo`` on the tiny model: plots that are real
images, tables with every method and its spread over seeds, a demo with a before/after table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import matplotlib.image
import yaml
from conftest import tiny_settings
from typer.testing import CliRunner

from hero_agents.cli import app
from hero_agents.loop.run_dir import RunDir

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


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
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == ["0", "1", "2"]
    assert "| iteration | rollout turns spent |" in printed


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

    table = (out / "results.md").read_text()
    for method in ("env-feedback", "grpo"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {method} |"))
        assert row.count("±") == 6 and row.rstrip(" |").endswith("2")  # 2 seeds
        for seed in (0, 1):
            run = RunDir(out / method / f"seed-{seed}")
            assert run.finished(1)
            # Every run's iteration 0 is the one shared evaluation of the warm start.
            assert run.eval(0).read_bytes() == (out / "warm-start" / "eval.jsonl").read_bytes()
            first = json.loads(run.metrics.read_text().splitlines()[0])
            assert first["method"] == method and first["seed"] == seed
    assert "| warm start (before training) |" in printed
    for stem in ("success", "turns", "unnecessary"):
        assert_png(out / f"compare-{stem}.png")

    # A rerun resumes: nothing left to do, the same table.
    assert invoke("compare", str(config), "--out", str(out)).count("| grpo |") == 1
    assert (out / "results.md").read_text() == table


def test_demo_prints_before_and_after_and_who_wrote_the_diagnoses(
    tmp_path: Path, tiny_model_dir: Path, hero_cache: Path
) -> None:
    out = tmp_path / "demo"
    printed = invoke("demo", "--model", str(tiny_model_dir), "--iterations", "1", "--out", str(out))
    cells = [line.split("│")[1].strip() for line in printed.splitlines() if line.count("│") > 3]
    assert cells[0].startswith("before") and any(c.startswith("after 1") for c in cells)
    assert "diagnoses written by: self: the policy" in " ".join(printed.split())
    assert_png(out / "report" / "success.png")
    assert RunDir(out).finished(1)
