"""`hero reflect` through typer's CliRunner, against a scripted server on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from reflection_server import completion, make_trajectory, valid_reply
from typer.testing import CliRunner

from hero_agents.cli.reflect import reflect
from hero_agents.storage import read_trajectories, write_trajectories

app = typer.Typer()
app.command()(reflect)
app.command("noop", hidden=True)(lambda: None)  # keeps `reflect` a named subcommand
runner = CliRunner()


@pytest.fixture
def traces(tmp_path: Path) -> Path:
    path = tmp_path / "traces.jsonl"
    write_trajectories(
        path,
        [
            make_trajectory("a", task_id="A", turns=3, reward=0.0, error_turns=[1]),
            make_trajectory("b", task_id="A", turns=2, reward=1.0),
            make_trajectory("c", task_id="C", turns=4, reward=0.0),
        ],
    )
    return path


def invoke(*args: str | Path):
    return runner.invoke(app, ["reflect", *map(str, args)])


def test_llm_reflector_writes_one_diagnosis_per_turn(chat_server, traces: Path, tmp_path) -> None:
    server = chat_server()
    out = tmp_path / "diagnosed.jsonl"
    spec = f"openai-compatible:{server.url}#scripted"
    result = invoke(traces, "--reflector", spec, "--out", out, "--cache-dir", tmp_path / "cache")

    assert result.exit_code == 0, result.output
    diagnosed = {t.id: t for t in read_trajectories(out)}
    assert sorted(diagnosed) == ["a", "b", "c"]
    for trajectory in diagnosed.values():
        assert [d.turn_index for d in trajectory.diagnoses] == list(range(len(trajectory.turns)))
    assert len(server.requests) == 3
    assert "model calls" in result.output and "3 (1.00 per trajectory)" in result.output
    assert "unnecessary" in result.output and "44.4%" in result.output  # 4 of 9 turns

    rerun = invoke(
        traces, "-r", spec, "--out", out, "--overwrite", "--cache-dir", tmp_path / "cache"
    )
    assert rerun.exit_code == 0 and len(server.requests) == 3  # all from the cache
    assert "3 (3 from cache)" in rerun.output


def test_failures_are_named_and_exit_1(chat_server, traces: Path, tmp_path: Path) -> None:
    def garbage_for_c(body):
        if "#Wc" in body["messages"][1]["content"]:
            return completion("no idea")
        return valid_reply(body)

    server = chat_server(default=garbage_for_c)
    out, failures = tmp_path / "out.jsonl", tmp_path / "failures.jsonl"
    spec = f"openai-compatible:{server.url}#scripted"
    result = invoke(traces, "-r", spec, "-o", out, "--no-cache", "--failures", failures)

    assert result.exit_code == 1, result.output
    assert sorted(t.id for t in read_trajectories(out)) == ["a", "b"]
    assert "not diagnosed: c: turns [0]" in result.output
    [failure] = [json.loads(line) for line in failures.read_text().splitlines()]
    assert failure["id"] == "c" and "not valid JSON" in failure["error"]

    allowed = invoke(
        traces, "-r", spec, "-o", tmp_path / "o2.jsonl", "--no-cache", "--allow-failures"
    )
    assert allowed.exit_code == 0


def test_bad_spec_fails_with_the_valid_forms(traces: Path, tmp_path: Path) -> None:
    result = invoke(traces, "-r", "gpt4", "-o", tmp_path / "out.jsonl")
    assert result.exit_code == 2
    assert "openai-compatible:URL#MODEL" in result.output and "env-feedback" in result.output


def test_baselines(traces: Path, tmp_path: Path) -> None:
    out = tmp_path / "env.jsonl"
    result = invoke(traces, "-r", "env-feedback", "-o", out)
    assert result.exit_code == 0, result.output
    a = next(t for t in read_trajectories(out) if t.id == "a")  # written as each completes
    assert a.diagnoses[1].hint == "[get_order error] Error: order not found"

    demo_out = tmp_path / "demo.jsonl"
    result = invoke(traces, "-r", "demo", "-o", demo_out)
    assert result.exit_code == 1  # task C has no success, b is the only success of A
    assert [t.id for t in read_trajectories(demo_out)] == ["a"]
    assert "not diagnosed: b:" in result.output and "not diagnosed: c:" in result.output
    assert "of task 'C'" in result.output


def test_existing_output_needs_append_or_overwrite(chat_server, traces: Path, tmp_path) -> None:
    server = chat_server()
    out = tmp_path / "out.jsonl"
    write_trajectories(out, read_trajectories(traces)[:1])  # 'a' is already there
    spec = f"openai-compatible:{server.url}#scripted"

    refused = invoke(traces, "-r", spec, "-o", out, "--no-cache")
    assert refused.exit_code == 2 and "--append" in refused.output

    appended = invoke(traces, "-r", spec, "-o", out, "--no-cache", "--append")
    assert appended.exit_code == 0, appended.output
    assert sorted(t.id for t in read_trajectories(out)) == ["a", "b", "c"]
    assert len(server.requests) == 2  # 'a' was skipped
    assert "already in --out (skipped)" in appended.output


def test_unreachable_server_exits_2(traces: Path, tmp_path: Path) -> None:
    result = invoke(
        traces,
        "-r",
        "openai-compatible:http://127.0.0.1:9/v1#m",
        "-o",
        tmp_path / "o.jsonl",
        "--no-cache",
        "--max-retries",
        "0",
    )
    assert result.exit_code == 2 and "cannot reach" in result.output
