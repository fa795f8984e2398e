"""JSONL storage: round-trip, atomic appends, and errors that name the file and line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hero_agents.errors import TraceFormatError
from hero_agents.storage import (
    TrajectoryWriter,
    read_trajectories,
    to_dataset,
    write_trajectories,
)
from hero_agents.trajectory import Diagnosis, TokenTrace, Trajectory, Turn


def make_trajectory(name: str = "t1", turns: int = 2) -> Trajectory:
    return Trajectory(
        id=name,
        task_id="task-0",
        env="tau2:mock",
        reward=1.0,
        reward_info={"db": 1.0},
        termination="stop",
        turns=[
            Turn(
                index=i,
                messages=[{"role": "user", "content": f"question {i} ✓"}],
                tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
                action={
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": f"c{i}",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                observation=[
                    {"role": "tool", "tool_call_id": f"c{i}", "content": "boom", "status": "error"}
                ],
                node="agent",
                tokens=TokenTrace(completion_token_ids=[1, 2], completion_logprobs=[-0.5, -1.0]),
            )
            for i in range(turns)
        ],
        diagnoses=[
            Diagnosis(
                turn_index=i,
                necessity="necessary",
                validity="invalid",
                hint="Try g.",
                reflector="x",
            )
            for i in range(turns)
        ],
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    originals = [make_trajectory("a"), make_trajectory("b", turns=3)]
    assert write_trajectories(path, originals) == 2
    assert read_trajectories(path) == originals
    with TrajectoryWriter(path) as writer:
        writer.write(make_trajectory("c"))
    assert [t.id for t in read_trajectories(path)] == ["a", "b", "c"]
    assert originals[0].tool_errors == 2


def test_turn_to_openai_format() -> None:
    turn = make_trajectory().turns[0]
    body = turn.to_openai()
    assert body["messages"][-1]["role"] == "assistant"
    assert body["tools"][0]["function"]["name"] == "f"
    assert turn.to_openai(include_action=False)["messages"] == turn.messages


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"id": "x"}', "missing 'schema_version'"),
        ('{"schema_version": 99, "id": "x"}', "unknown schema_version 99"),
        ('{"schema_version": 1}', "id: Field required"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    write_trajectories(path, [make_trajectory()])
    with path.open("a") as handle:
        handle.write("\n" + line + "\n")
    with pytest.raises(TraceFormatError) as caught:
        read_trajectories(path)
    assert f"{path}:3" in str(caught.value)
    assert message in str(caught.value)


def test_mismatched_diagnoses_are_rejected(tmp_path: Path) -> None:
    record = json.loads(make_trajectory().model_dump_json())
    record["diagnoses"] = record["diagnoses"][:1]
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(TraceFormatError, match=r"d.jsonl:1: .*diagnoses cover turns \[0\]"):
        read_trajectories(path)


def test_writer_cuts_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "torn.jsonl"
    write_trajectories(path, [make_trajectory("whole")])
    with path.open("ab") as handle:
        handle.write(b'{"schema_version": 1, "id": "half')
    with pytest.raises(TraceFormatError, match="last line has no newline"):
        read_trajectories(path)
    with TrajectoryWriter(path) as writer:
        writer.write(make_trajectory("next"))
    assert [t.id for t in read_trajectories(path)] == ["whole", "next"]


def test_killed_writer_leaves_whole_lines(tmp_path: Path) -> None:
    """A writer process killed at a random moment leaves a file of whole records only."""
    path = tmp_path / "killed.jsonl"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_storage import make_trajectory
        from hero_agents.storage import TrajectoryWriter
        big = make_trajectory("big", turns=200)
        with TrajectoryWriter({str(path)!r}) as writer:
            print("ready", flush=True)
            while True:
                writer.write(big)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
    while not path.exists() or path.stat().st_size < 2_000_000:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with TrajectoryWriter(path) as writer:  # repairs a torn tail, if the kill left one
        writer.write(make_trajectory("after"))
    records = read_trajectories(path)
    assert len(records) >= 2 and records[-1].id == "after"


def test_to_dataset_rows_per_turn() -> None:
    dataset = to_dataset([make_trajectory("a"), make_trajectory("b", turns=1)])
    assert len(dataset) == 3
    assert (
        dataset[0]["hint"] == "Try g." and json.loads(dataset[0]["action"])["role"] == "assistant"
    )
