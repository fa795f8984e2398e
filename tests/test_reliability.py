"""The reliability probes of issue 17, through the real ``hero`` command line with the tiny model
and the real tau2:mock environment: every bad input is one error line (never a traceback),
nothing the user wrote is removed, settings are checked before any work, and a run resumes
and extends as documented.

One tiny training run (one iteration, ~5 s) is shared by the module: the probes that change a
run folder work on a copy of it; what a killed process leaves (a torn line, a phase clock, a
scratch folder) is written as it would be found. The module takes ~21 s on 2 shared cores
(~27 s with start-up), so none of it is marked slow.
"""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from hero_agents.cli import app
from hero_agents.loop.run_dir import RunDir
from hero_agents.storage import read_trajectories

# The sample logs of the production-traces example (not part of the installed package).
sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "production_traces"))
from sample_logs import write_samples

runner = CliRunner()


def hero(*args: str | Path) -> Result:
    return runner.invoke(app, [str(arg) for arg in args])


def one_error(result: Result, *fragments: str) -> str:
    """Assert that `result` is a refusal: exit 2, one error message naming every fragment, no
    traceback; returns the message with its whitespace collapsed."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    if "error:" in result.output:  # ours (`hero_agents.cli.console.fail`)
        assert result.output.count("error:") == 1, result.output
        message = result.output.split("error:", 1)[1]
    else:  # a usage error of click's (a bad option value), in typer's box
        assert "Invalid value" in result.output, result.output
        message = result.output
    message = " ".join(message.replace("│", " ").split())
    for fragment in fragments:
        assert fragment in message, (fragment, result.output)
    return message


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry under `folder` with its bytes (None for a folder), to compare before/after."""
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


def user_folder(path: Path) -> dict[str, bytes | None]:
    """A folder of the user's own (a note and a subfolder), returned as its `tree`."""
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("precious\n")
    (path / "sub" / "more.txt").write_text("also precious\n")
    return tree(path)


def settings(model: Path, **overrides: Any) -> dict[str, Any]:
    """A one-iteration loop on tau2:mock with the tiny random model, sections merged."""
    data: dict[str, Any] = {
        "env": "tau2:mock",
        "model": str(model),
        "method": "env-feedback",
        "warmup": {"steps": 1},
        "rollout": {"tasks": 2, "group_size": 2, "max_turns": 2, "max_new_tokens": 12},
        "eval": {"tasks": 3, "max_turns": 2},
        "budget": {"iterations": 1},
    }
    for key, value in overrides.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) else value
    return data


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def warm_starts(cache: Path) -> list[str]:
    folder = cache / "warmups"
    return sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """$HERO_CACHE of this module (warm starts, reflector replies): no probe touches the
    user's cache."""
    folder = tmp_path_factory.mktemp("hero-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HERO_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The shared run's config file."""
    folder = tmp_path_factory.mktemp("config")
    return write_yaml(folder / "tiny.yaml", settings(tiny_model_dir))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, config: Path, cache: Path) -> Path:
    """A finished one-iteration run of `config` (env-feedback): read it, or copy it to change it."""
    out = tmp_path_factory.mktemp("shared") / "run"
    result = hero("train", config, "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


@pytest.fixture
def traces(finished_run: Path, tmp_path: Path) -> Path:
    """The shared run's four tau2:mock rollouts, as a user's trace file."""
    path = tmp_path / "traces.jsonl"
    shutil.copyfile(RunDir(finished_run).rollouts(1), path)
    return path


@pytest.fixture
def diagnosed(finished_run: Path, tmp_path: Path) -> Path:
    """The same rollouts with their env-feedback diagnoses (``--signal env-feedback`` input)."""
    path = tmp_path / "diagnosed.jsonl"
    shutil.copyfile(RunDir(finished_run).diagnosed(1), path)
    return path


def write_samples_file(path: Path, count: int = 2) -> Path:
    """OpenTelemetry sample logs of `count` conversations (`hero import otel` input)."""
    write_samples("otel", path, count)
    return path


# ---- user data is never removed


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_train_never_takes_a_folder_it_did_not_write(
    overwrite: list[str], config: Path, tmp_path: Path
) -> None:
    out = tmp_path / "u"
    before = user_folder(out)
    one_error(hero("train", config, "--out", out, *overwrite), "is not a run folder", str(out))
    assert tree(out) == before


def test_compare_never_takes_a_folder_it_did_not_write(config: Path, tmp_path: Path) -> None:
    compare = write_yaml(
        tmp_path / "compare.yaml",
        {"train": yaml.safe_load(config.read_text()), "methods": ["env-feedback"], "seeds": [0]},
    )
    out = tmp_path / "u2"
    before = user_folder(out)
    result = hero("compare", compare, "--out", out, "--overwrite")
    one_error(result, "is not a comparison folder", str(out))
    assert tree(out) == before


def test_overwrite_of_a_run_folder_keeps_what_the_user_put_in_it(
    run_copy: Path, config: Path
) -> None:
    (run_copy / "notes.txt").write_text("precious\n")
    before = tree(run_copy)
    one_error(hero("train", config, "--out", run_copy, "--overwrite"), "notes.txt")
    assert tree(run_copy) == before


@pytest.mark.parametrize("flag", ["--overwrite", "--append"])
def test_reflect_never_writes_over_its_input(flag: str, traces: Path) -> None:
    before = traces.read_bytes()
    result = hero("reflect", traces, "-r", "env-feedback", "--out", traces, flag)
    one_error(result, "is also an input")
    assert traces.read_bytes() == before


# ---- one error line, never a traceback


@pytest.fixture
def empty_config_model(tmp_path: Path) -> Path:
    """A model folder whose config.json is ``{}``."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


@pytest.mark.parametrize("command", ["rollout", "reflect", "distill", "train"])
def test_a_model_folder_with_an_empty_config_is_one_error_line(
    command: str, empty_config_model: Path, traces: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args: dict[str, list[str | Path]] = {
        "rollout": ["rollout", "--policy", empty_config_model, "--out", out],
        "reflect": ["reflect", traces, "-r", empty_config_model, "--out", out],
        "distill": ["distill", traces, "--model", empty_config_model, "--out", out],
        "train": [
            "train",
            write_yaml(tmp_path / "c.yaml", settings(empty_config_model)),
            "--out",
            out,
        ],
    }
    # Named as a model folder, whichever option or key gave it.
    one_error(hero(*args[command]), f"model folder '{empty_config_model}'", "its config")
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--learning-rate", "-1", "learning_rate"),
        ("--epochs", "-1", "--epochs"),
        ("--epochs", "0", "num_train_epochs"),
        ("--max-steps", "0", "max_steps"),
        ("--max-steps", "-5", "max_steps"),
    ],
)
def test_distill_refuses_a_number_that_trains_nothing(
    option: str, value: str, named: str, diagnosed: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "distilled"
    distill = ["distill", diagnosed, "--signal", "env-feedback", "--model", tiny_model_dir]
    result = hero(*distill, "--out", out, option, value)
    one_error(result, named)
    assert not out.exists()  # no untrained adapter was saved


@pytest.mark.parametrize(
    "command",
    ["reflect --overwrite", "reflect --append", "rollout", "eval", "import"],
)
def test_out_naming_a_folder_is_refused(
    command: str, traces: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "u"
    before = user_folder(out)
    name, *flags = command.split()
    args: dict[str, list[str | Path]] = {
        "reflect": ["reflect", traces, "-r", "env-feedback"],
        "rollout": ["rollout", "--policy", tiny_model_dir],
        "eval": ["eval", "--policy", tiny_model_dir],
        "import": ["import", "otel", write_samples_file(tmp_path / "logs.jsonl")],
    }
    one_error(hero(*args[name], "--out", out, *flags), str(out), "is a folder")
    assert tree(out) == before


@pytest.mark.parametrize("command", ["train", "distill"])
def test_out_naming_a_file_is_refused(
    command: str, config: Path, diagnosed: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "precious.txt"
    out.write_text("precious\n")
    args: dict[str, list[str | Path]] = {
        "train": ["train", config],
        "distill": ["distill", diagnosed, "--signal", "env-feedback", "--model", tiny_model_dir],
    }
    one_error(hero(*args[command], "--out", out), str(out), "is a file")
    assert out.read_text() == "precious\n"


@pytest.mark.parametrize("damage", ["not gzip", "truncated"])
def test_import_reads_past_a_corrupt_gzip_shard(damage: str, tmp_path: Path) -> None:
    shards = tmp_path / "export"
    shards.mkdir()
    write_samples_file(shards / "a.jsonl", count=3)
    whole = gzip.compress((shards / "a.jsonl").read_bytes())
    bad = shards / "b.jsonl.gz"
    bad.write_bytes(b"no gzip stream\n" if damage == "not gzip" else whole[: len(whole) // 2])
    out = tmp_path / "traces.jsonl"
    result = hero("import", "otel", shards, "--out", out)
    assert result.exit_code == 1, result.output  # some records were not importable
    assert "Traceback" not in result.output
    assert str(bad) in " ".join(result.output.split())
    assert len(read_trajectories(out)) >= 3  # the good shard was imported


DEEP = b"[" * 200_000 + b"]" * 200_000 + b"\n"


@pytest.mark.parametrize("line", [1, 2])
def test_import_names_a_line_nested_too_deeply_and_goes_on(line: int, tmp_path: Path) -> None:
    logs = write_samples_file(tmp_path / "logs.jsonl", count=3)
    lines = logs.read_bytes().splitlines(keepends=True)
    logs.write_bytes(b"".join([*lines[: line - 1], DEEP, *lines[line - 1 :]]))
    out = tmp_path / "traces.jsonl"
    result = hero("import", "otel", logs, "--out", out)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "nested too deeply" in result.output
    if line == 1:  # a file that starts with "[" is one JSON array: the whole file is the problem
        assert f"{logs}: JSON nested too deeply" in " ".join(result.output.split())
    else:  # JSON Lines: that line is the problem, the others are imported
        assert f"{logs}:2" in " ".join(result.output.split())
        assert len(read_trajectories(out)) == 3


def test_reflect_names_a_line_nested_too_deeply(traces: Path, tmp_path: Path) -> None:
    traces.write_bytes(traces.read_bytes() + DEEP)
    out = tmp_path / "diagnosed.jsonl"
    result = hero("reflect", traces, "-r", "env-feedback", "--out", out)
    one_error(result, f"{traces}:5", "nested too deeply")
    assert not out.exists()


def test_reflect_names_an_unpaired_surrogate_and_keeps_the_old_output(
    traces: Path, tmp_path: Path
) -> None:
    records = [json.loads(line) for line in traces.read_text().splitlines()]
    turn = records[1]["turns"][0]
    turn["observation"] = [
        {"role": "tool", "tool_call_id": "call_0", "name": "get_users", "content": "ok \ud800"}
    ]
    # json.dumps escapes the surrogate as the six characters \ud800, as a logger would.
    traces.write_text("".join(json.dumps(record) + "\n" for record in records))
    assert "\\ud800" in traces.read_text()
    out = tmp_path / "diagnosed.jsonl"
    one_error(hero("reflect", traces, "-r", "env-feedback", "--out", out), f"{traces}:2")
    assert not out.exists()
    out.write_text("an earlier output\n")
    result = hero("reflect", traces, "-r", "env-feedback", "--out", out, "--overwrite")
    one_error(result, f"{traces}:2", "surrogate")
    assert out.read_text() == "an earlier output\n"


def test_a_torn_line_in_reflect_failures_does_not_stop_a_resume(
    run_copy: Path, config: Path
) -> None:
    run = RunDir(run_copy)
    ids = [t.id for t in read_trajectories(run.rollouts(1))]
    # Killed after one failure was recorded and while writing the next, before the
    # iteration finished: its diagnoses are lost too.
    run.iteration_metrics(1).unlink()
    run.diagnosed(1).unlink()
    whole = json.dumps({"id": ids[0], "error": "the reflector's reply was cut"}) + "\n"
    run.reflect_failures(1).write_text(whole + json.dumps({"id": ids[1]})[:9])

    result = hero("train", config, "--out", run_copy)
    assert result.exit_code == 0, result.output
    row = json.loads(run.metrics.read_text().splitlines()[-1])
    assert row["iteration"] == 1
    assert row["reflect"]["failed"] == 1 and row["reflect"]["diagnosed"] == 3
    assert run.reflect_failures(1).read_text().startswith(whole)
    assert sorted(t.id for t in read_trajectories(run.diagnosed(1))) == sorted(ids[1:])


# ---- settings checked before any work


def test_an_unknown_train_option_fails_before_any_work(
    tiny_model_dir: Path, finished_run: Path, cache: Path, tmp_path: Path
) -> None:
    # Another warm-start seed: a warm start done before the check would be a new cache entry.
    bad = settings(tiny_model_dir, warmup={"seed": 7}, train={"options": {"no_such_option": 1}})
    before = warm_starts(cache)
    out = tmp_path / "run"
    one_error(
        hero("train", write_yaml(tmp_path / "c.yaml", bad), "--out", out),
        "train.options",
        "no_such_option",
    )
    assert not (out / "config.yaml").exists()
    assert warm_starts(cache) == before


@pytest.mark.parametrize(
    ("section", "named"), [("rollout", "rollout.tasks=1000"), ("eval", "eval.tasks=1000")]
)
def test_more_tasks_than_the_environment_has_fail_before_out_is_written(
    section: str, named: str, tiny_model_dir: Path, cache: Path, tmp_path: Path
) -> None:
    bad = settings(tiny_model_dir, warmup={"seed": 7}, **{section: {"tasks": 1000}})
    before = warm_starts(cache)
    out = tmp_path / "run"
    one_error(hero("train", write_yaml(tmp_path / "c.yaml", bad), "--out", out), named)
    assert not out.exists()
    assert warm_starts(cache) == before


def test_reflect_warns_on_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    result = hero("reflect", empty, "-r", "env-feedback", "--out", tmp_path / "d.jsonl")
    assert result.exit_code == 0, result.output
    assert f"warning: {empty} holds no trajectory\n" in result.output  # one line


# ---- resume


def test_a_changed_config_is_refused_naming_each_changed_key(
    finished_run: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    before = tree(finished_run)
    changed = settings(tiny_model_dir, rollout={"tasks": 3}, eval={"max_turns": 3})
    result = hero("train", write_yaml(tmp_path / "c.yaml", changed), "--out", finished_run)
    one_error(result, "rollout.tasks: 2 -> 3", "eval.max_turns: 2 -> 3")
    assert tree(finished_run) == before


def test_raising_budget_iterations_extends_a_finished_run(
    run_copy: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    run = RunDir(run_copy)
    first = tree(run.iteration(1))
    longer = write_yaml(tmp_path / "c.yaml", settings(tiny_model_dir, budget={"iterations": 2}))
    for _ in range(2):  # the second time finds the run finished: nothing more is run
        result = hero("train", longer, "--out", run_copy)
        assert result.exit_code == 0, result.output
        rows = [json.loads(line) for line in run.metrics.read_text().splitlines()]
        assert [row["iteration"] for row in rows] == [0, 1, 2]
        assert yaml.safe_load(run.config.read_text())["budget"]["iterations"] == 2
        assert sorted(p.name for p in (run_copy / "iterations").iterdir()) == [
            "0000",
            "0001",
            "0002",
        ]
    assert tree(run.iteration(1)) == first  # the finished iteration is kept as it was
    assert rows[2]["policy_version"] == "policy-v2"
    assert len(read_trajectories(run.rollouts(2))) == 4


def test_phase_seconds_add_up_across_processes(run_copy: Path, config: Path) -> None:
    run = RunDir(run_copy)
    # What a process killed during iteration 1's training leaves: far more seconds than this
    # test's own process can spend, so a total of this process alone cannot pass.
    run.iteration_metrics(1).unlink()
    earlier = {"rollout": 1000.0, "reflect": 500.0, "train": 250.0}
    run.seconds(1).write_text(json.dumps(earlier))

    result = hero("train", config, "--out", run_copy)
    assert result.exit_code == 0, result.output
    seconds = json.loads(run.metrics.read_text().splitlines()[-1])["seconds"]
    assert set(seconds) == {"rollout", "reflect", "train", "sync", "guard", "eval"}
    for phase, spent in earlier.items():
        assert spent <= seconds[phase] < spent + 120, (phase, seconds)
    assert json.loads(run.seconds(1).read_text()) == seconds


def test_the_next_build_removes_a_stale_scratch_folder(
    finished_run: Path, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HERO_CACHE", str(cache))
    target = Path(json.loads(RunDir(finished_run).warmup.read_text())["model"]).name
    # What a warm start killed by SIGKILL leaves, and another target's build in progress.
    stale = cache / "warmups" / f".{target}.k1ll3d"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    other = cache / "warmups" / ".tau2-mock-0123456789abcdef.busy"
    other.mkdir()

    result = hero("warmup", config, "--out", tmp_path / "warmup")
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert other.is_dir()
    assert (cache / "warmups" / target / "config.json").is_file()


# ---- user strings are printed as written


def test_an_unreachable_reflector_is_named_exactly_as_written(traces: Path, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Printed through rich unescaped, ":m:" would become an emoji and "[b]" a style.
    spec = f"openai-compatible:http://127.0.0.1:{port}/v1#team[b]/tiny:m:latest"
    out = tmp_path / "diagnosed.jsonl"
    result = hero("reflect", traces, "-r", spec, "--out", out, "--max-retries", "0", "--no-cache")
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    assert spec in result.output
    assert "Ⓜ" not in result.output


def test_an_imported_trajectory_id_is_printed_as_written(traces: Path, tmp_path: Path) -> None:
    records = [json.loads(line) for line in traces.read_text().splitlines()]
    for number, record in enumerate(records):  # ids of production traces are the user's text
        record["id"] = f"ticket-{number}[/v1]:m:"
    traces.write_text("".join(json.dumps(record) + "\n" for record in records))
    out = tmp_path / "diagnosed.jsonl"
    # The tiny model never succeeds: the demo baseline has no demo, every trajectory fails.
    result = hero("reflect", traces, "-r", "demo", "--out", out)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "not diagnosed: ticket-0[/v1]:m:: " in result.output
