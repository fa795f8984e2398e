"""`hero reflect` on a large set: bounded calls in flight over a lazily read input, and a run
that was interrupted resumes with --append, its finished work answered by the cache."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import typer
from reflection_server import error_reply, make_trajectory, valid_reply
from typer.testing import CliRunner

from hero_agents.cli.reflect import reflect
from hero_agents.storage import read_trajectories, write_trajectories

app = typer.Typer()
app.command()(reflect)
app.command("noop", hidden=True)(lambda: None)
runner = CliRunner()


def invoke(*args: str | Path):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["reflect", *map(str, args)])


def test_calls_in_flight_stay_within_concurrency(chat_server, tmp_path: Path) -> None:
    traces = tmp_path / "traces.jsonl"
    write_trajectories(traces, [make_trajectory(f"t{i}", turns=2) for i in range(12)])
    lock, in_flight, peak = threading.Lock(), [0], [0]

    def slow(body):  # type: ignore[no-untyped-def]
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return valid_reply(body)

    server = chat_server(default=slow)
    spec = f"openai-compatible:{server.url}#scripted"
    result = invoke(
        traces, "-r", spec, "-o", tmp_path / "o.jsonl", "--no-cache", "--concurrency", 3
    )
    assert result.exit_code == 0, result.output
    assert len(server.requests) == 12 and 2 <= peak[0] <= 3


def test_an_interrupted_run_resumes_from_out_and_the_cache(chat_server, tmp_path: Path) -> None:
    traces, out, cache = tmp_path / "traces.jsonl", tmp_path / "out.jsonl", tmp_path / "cache"
    write_trajectories(traces, [make_trajectory(f"t{i}", turns=2) for i in range(6)])
    gone = error_reply(404, "model not found")  # stops the whole run, as a lost server would
    server = chat_server([valid_reply, valid_reply, valid_reply, gone], default=valid_reply)
    spec = f"openai-compatible:{server.url}#scripted"
    common = ("-r", spec, "-o", out, "--cache-dir", cache, "--concurrency", 1)

    interrupted = invoke(traces, *common)
    assert interrupted.exit_code == 2
    assert "3 trajectories were written" in interrupted.output and "--append" in interrupted.output
    assert len(read_trajectories(out)) == 3

    resumed = invoke(traces, *common, "--append")
    assert resumed.exit_code == 0, resumed.output
    assert sorted(t.id for t in read_trajectories(out)) == [f"t{i}" for i in range(6)]
    assert len(server.requests) == 4 + 3  # only the three that were left

    again = invoke(traces, *common, "--overwrite")
    assert again.exit_code == 0 and len(server.requests) == 7  # all six from the cache
    assert "6 (6 from cache)" in again.output
