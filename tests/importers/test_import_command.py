"""`hero import` through typer's CliRunner on sample logs of each format: what is written, what
is reported, exit codes, sharded and compressed sources, and the options."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pytest
from sample_logs import write_samples
from typer.testing import CliRunner

from hero_agents.cli import app
from hero_agents.storage import read_trajectories

runner = CliRunner()
REWARDS = {
    "openai": ["--reward", "metadata.resolved"],
    "langsmith": ["--reward", "feedback_stats.user_score.avg"],
    "otel": ["--reward", "app.resolved"],
}


def invoke(*args: str | Path):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["import", *map(str, args)])


@pytest.mark.parametrize("format_name", ["openai", "langsmith", "otel"])
def test_samples_of_each_format_import_with_their_problems_named(
    format_name: str, tmp_path: Path
) -> None:
    logs, out, problems = tmp_path / "logs.jsonl", tmp_path / "traces.jsonl", tmp_path / "p.jsonl"
    write_samples(format_name, logs, 12, broken=3)
    result = invoke(format_name, logs, "-o", out, "--problems", problems, *REWARDS[format_name])

    assert result.exit_code == 1, result.output  # some records were not importable
    trajectories = read_trajectories(out)
    assert len(trajectories) == 12  # one per conversation: follow-up traces joined their thread
    assert all(t.source == "production" and t.reward in (0.0, 1.0) for t in trajectories)
    assert all(t.turns and t.turns[0].tools for t in trajectories)
    reported = [json.loads(line) for line in problems.read_text().splitlines()]
    assert len(reported) == 3
    assert {p["kind"] for p in reported} >= {"invalid JSON"}
    assert all(p["location"].startswith(f"{logs}:") for p in reported)
    assert "not imported" in result.output and "invalid JSON (1):" in result.output

    allowed = invoke(format_name, logs, "-o", out, "--overwrite", "--allow-problems")
    assert allowed.exit_code == 0, allowed.output
    assert len(read_trajectories(out)) == 12


def test_sharded_gzip_folders_and_globs(tmp_path: Path) -> None:
    shards = tmp_path / "export" / "2026-01"
    shards.mkdir(parents=True)
    for number in range(3):
        plain = tmp_path / f"part-{number}.jsonl"
        write_samples("otel", plain, 4, seed=number)
        with (
            plain.open("rb") as source,
            gzip.open(shards / f"part-{number}.jsonl.gz", "wb") as target,
        ):
            shutil.copyfileobj(source, target)
    (shards / "README.txt").write_text("not a record file")

    folder = invoke("otel", tmp_path / "export", "-o", tmp_path / "a.jsonl")
    assert folder.exit_code == 0, folder.output
    assert len(read_trajectories(tmp_path / "a.jsonl")) == 12
    assert re.search(r"files\s*│\s*3 │", folder.output)  # the README is not a record file

    pattern = invoke(
        "otel", str(tmp_path / "export" / "**" / "part-[01].jsonl.gz"), "-o", tmp_path / "b.jsonl"
    )
    assert pattern.exit_code == 0, pattern.output
    assert len(read_trajectories(tmp_path / "b.jsonl")) == 8


def test_options_nodes_threads_and_output_checks(tmp_path: Path) -> None:
    logs, out = tmp_path / "runs.jsonl", tmp_path / "traces.jsonl"
    traces = write_samples("langsmith", logs, 10)
    per_trace = invoke("langsmith", logs, "-o", out, "--no-threads")
    assert per_trace.exit_code == 0, per_trace.output
    assert len(read_trajectories(out)) == traces > 10

    refused = invoke("langsmith", logs, "-o", out)
    assert refused.exit_code == 2 and "--append" in refused.output
    no_node = invoke("langsmith", logs, "-o", out, "--overwrite", "--node", "summarizer")
    assert no_node.exit_code == 0 and read_trajectories(out) == []
    assert "ignored: no calls of --node" in no_node.output

    unknown = invoke("zipkin", logs, "-o", tmp_path / "x.jsonl")
    assert unknown.exit_code == 2 and "langsmith" in unknown.output and "otel" in unknown.output
    missing = invoke("otel", tmp_path / "nowhere", "-o", tmp_path / "x.jsonl")
    assert missing.exit_code == 2 and "no such file, folder or glob" in missing.output
    label_only = invoke("otel", logs, "-o", tmp_path / "x.jsonl", "--reward-label", "good=1")
    assert label_only.exit_code == 2 and "needs --reward" in label_only.output
    into_source = invoke("langsmith", tmp_path, "-o", out, "--append")
    assert into_source.exit_code == 2 and "is also an input" in into_source.output
