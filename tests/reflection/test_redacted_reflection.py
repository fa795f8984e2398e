"""Redaction on the reflection path: what reaches the reflector's server, what is written back,
what the cache holds, and the CLI's switches (against a scripted server on loopback)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from reflection_server import completion, make_trajectory
from typer.testing import CliRunner

from hero_agents.adapters.reflectors import load_reflector
from hero_agents.cli.reflect import reflect
from hero_agents.redaction import Redactor
from hero_agents.reflection.prompt import requested_turns
from hero_agents.reflection.redacting import RedactingReflector
from hero_agents.storage import read_trajectories, write_trajectories

app = typer.Typer()
app.command()(reflect)
app.command("noop", hidden=True)(lambda: None)
runner = CliRunner()


def invoke(*args: str | Path):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["reflect", *map(str, args)])


EMAIL = "jane.roe@example.com"
KEY = "sk-proj-" + "Zx81" * 8
PLACEHOLDER = re.compile(r"<(?:EMAIL|API_KEY|PHONE)_\d+>")


def echo_placeholders(body):  # type: ignore[no-untyped-def]
    """Diagnoses whose hints name the placeholders the request showed."""
    seen = sorted(set(PLACEHOLDER.findall(body["messages"][1]["content"])))
    diagnoses = [
        {
            "turn_index": i,
            "necessity": "necessary",
            "validity": "valid",
            "cause": None,
            "hint": f"Use {' and '.join(seen) or 'the order id'} as given.",
        }
        for i in requested_turns(body["messages"])
    ]
    return completion(json.dumps({"diagnoses": diagnoses}))


@pytest.fixture
def traces(tmp_path: Path) -> Path:
    path = tmp_path / "traces.jsonl"
    personal = make_trajectory("p", turns=3, secret=f"Escalate to {EMAIL}; key {KEY}.")
    plain = make_trajectory("q", turns=2)
    write_trajectories(path, [personal, plain])
    return path


def test_forced_redaction_sends_placeholders_and_writes_originals_back(
    chat_server, traces: Path, tmp_path: Path
) -> None:
    server = chat_server(default=echo_placeholders)
    out, cache = tmp_path / "out.jsonl", tmp_path / "cache"
    spec = f"openai-compatible:{server.url}#scripted"
    result = invoke(traces, "-r", spec, "-o", out, "--cache-dir", cache, "--redact")
    assert result.exit_code == 0, result.output

    sent = json.dumps(server.requests)
    assert EMAIL not in sent and KEY not in sent
    assert "<EMAIL_1>" in sent and "<API_KEY_1>" in sent
    diagnosed = {t.id: t for t in read_trajectories(out)}
    original = {t.id: t for t in read_trajectories(traces)}
    personal = diagnosed["p"]
    assert personal.turns == original["p"].turns  # the original turns, never the redacted ones
    assert personal.diagnoses[0].hint == "Use <API_KEY_1> and <EMAIL_1> as given."
    assert personal.metadata["redacted"] == {"EMAIL": 1, "API_KEY": 1}
    assert "redacted" not in diagnosed["q"].metadata
    cached = "".join(p.read_text() for p in cache.rglob("*.json"))
    assert "<EMAIL_1>" in cached and EMAIL not in cached and KEY not in cached
    assert "trajectories with redactions" in result.output and "1 of 2" in result.output
    assert re.search(r"EMAIL\s*│\s*1 values", result.output)


def test_loopback_reflectors_see_the_traces_as_they_are_by_default(
    chat_server, traces: Path, tmp_path: Path
) -> None:
    server = chat_server(default=echo_placeholders)
    spec = f"openai-compatible:{server.url}#scripted"
    result = invoke(traces, "-r", spec, "-o", tmp_path / "o.jsonl", "--no-cache")
    assert result.exit_code == 0, result.output
    assert EMAIL in json.dumps(server.requests)
    assert "redacted before reflection" not in result.output


def test_user_patterns_turn_redaction_on_and_contradictions_are_refused(
    chat_server, traces: Path, tmp_path: Path
) -> None:
    server = chat_server(default=echo_placeholders)
    spec = f"openai-compatible:{server.url}#scripted"
    out = tmp_path / "o.jsonl"
    pattern = r"ORDER=#(?P<value>Wp)"
    result = invoke(traces, "-r", spec, "-o", out, "--no-cache", "--redact-pattern", pattern)
    assert result.exit_code == 0, result.output
    sent = json.dumps(server.requests)
    assert "#<ORDER_1>" in sent and "#Wp" not in sent and EMAIL not in sent

    refused = invoke(
        traces, "-r", spec, "-o", tmp_path / "x.jsonl", "--no-redact", "--redact-pattern", pattern
    )
    assert refused.exit_code == 2 and "contradict" in refused.output
    bad = invoke(traces, "-r", spec, "-o", tmp_path / "y.jsonl", "--redact-pattern", "lower=x")
    assert bad.exit_code == 2 and "upper case" in bad.output


def test_a_failed_trajectory_is_returned_unredacted(chat_server, traces: Path) -> None:
    server = chat_server(default=lambda body: completion("not json"))
    reflector = load_reflector(
        f"openai-compatible:{server.url}#scripted",
        redaction=Redactor(),
        format_retries=0,
        per_turn_fallback=False,
    )
    assert isinstance(reflector, RedactingReflector)
    [personal, _] = read_trajectories(traces)
    [result] = reflector.reflect([personal])
    assert not result.ok and result.trajectory == personal
    assert EMAIL in result.trajectory.turns[0].messages[0]["content"]
    assert EMAIL not in json.dumps(server.requests)
