"""`hero probe`: the teacher-signal check, with real models and the real tau2 environment.

The sign of the signal is checked on a constructed case: the note-following tiny model (see
conftest) answers PREFERRED only after a note that names it, so a note naming PREFERRED must
lower a USUAL action and raise a PREFERRED one, and an uninformative note must move neither.
The reference sections run on tau2:mock with scripted episodes (a gold one, a wrong one)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from distill_helpers import (
    INFORMATIVE_HINT,
    NOTE_TEMPLATE,
    PREFERRED,
    UNINFORMATIVE_HINT,
    USUAL,
    answering_with,
    note_contexts,
)
from langchain_core.messages import AIMessage
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from hero_agents.adapters.envs import make_env
from hero_agents.cli import app
from hero_agents.demonstrations import ScriptedReplies
from hero_agents.probe import Prober, figures
from hero_agents.reflection.reference import ReferenceReflector
from hero_agents.rollout import arun_episode
from hero_agents.storage import write_trajectories
from hero_agents.trajectory import Diagnosis, Trajectory, Turn


def answered(answer: str, hint: str, number: int) -> Trajectory:
    """One turn answering `answer` after a tool result, diagnosed with `hint`."""
    turn = Turn(
        index=0,
        messages=note_contexts()[0],
        action={"role": "assistant", "content": answer},
    )
    diagnosis = Diagnosis(
        turn_index=0, necessity="necessary", validity="valid", hint=hint, reflector="test"
    )
    return Trajectory(id=f"t{number}", turns=[turn], diagnoses=[diagnosis])


@pytest.fixture(scope="module")
def note_following(note_following_model_dir: Path) -> tuple[Any, Any]:
    model = AutoModelForCausalLM.from_pretrained(note_following_model_dir).eval()
    return model, AutoTokenizer.from_pretrained(note_following_model_dir)


def test_a_note_naming_the_right_answer_lowers_the_wrong_one_and_raises_the_right_one(
    note_following: tuple[Any, Any],
) -> None:
    model, tokenizer = note_following
    prober = Prober(model, tokenizer, note_template=NOTE_TEMPLATE, note_placement="user-message")
    wrong = prober.probe([answered(USUAL, INFORMATIVE_HINT, 0)], "informative")
    right = prober.probe([answered(PREFERRED, INFORMATIVE_HINT, 1)], "informative")
    plain = prober.probe([answered(USUAL, UNINFORMATIVE_HINT, 2)], "uninformative")
    assert wrong[0].taken_shift < -1.0 and right[0].taken_shift > 1.0
    assert abs(plain[0].taken_shift) < abs(wrong[0].taken_shift) / 4
    # The first token of the answer is the one the note changes most here.
    assert wrong[0].opening_ratio < 0.5 < 2.0 < right[0].opening_ratio
    assert figures("informative", wrong).verdict.startswith("away from better actions") is False


def test_an_empty_hint_is_no_signal(note_following: tuple[Any, Any]) -> None:
    model, tokenizer = note_following
    probes = Prober(model, tokenizer, note_template=NOTE_TEMPLATE).probe(
        [answered(USUAL, "", 0)], "grounded"
    )
    assert probes[0].empty_hint and probes[0].taken_shift == 0.0
    assert figures("grounded", probes).verdict.startswith("nowhere: every hint is empty")


def play(env: Any, task_id: str, replies: list[AIMessage], number: int) -> Trajectory:
    trajectory = asyncio.run(
        arun_episode(env, ScriptedReplies(replies=replies), task_id, max_turns=len(replies))
    )
    return trajectory.model_copy(update={"id": f"e{number}"})


def call(name: str, **args: Any) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call_{name}"}])


@pytest.fixture(scope="module")
def mock_episodes() -> list[Trajectory]:
    """A gold episode and a wrong one (a bad argument that tau2 rejects, then a reply),
    diagnosed by the reference reflector."""
    env = make_env("tau2:mock")
    gold = play(
        env,
        "create_task_1__v0",
        [call("create_task", user_id="user_2", title="Training Session"), AIMessage("Done.")],
        0,
    )
    wrong = play(
        env,
        "create_task_1__v0",
        [call("create_task", user_id="user_2", task_title="Training"), AIMessage("Done.")],
        1,
    )
    results = ReferenceReflector(env).reflect([gold, wrong])
    assert all(result.ok for result in results)
    return [result.trajectory for result in results]


def test_reference_figures_on_tau2(tiny_model_dir: Path, mock_episodes: list[Trajectory]) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prober = Prober(model, tokenizer, note_template="{hint}", env=make_env("tau2:mock"))
    probes = prober.probe(mock_episodes, "reference")
    gold_call, _, wrong_call, _ = probes
    assert gold_call.proof == "good" and gold_call.empty_hint  # the reference's own action
    assert gold_call.reference_shift == gold_call.taken_shift == 0.0
    assert gold_call.prefers_reference is None
    assert wrong_call.proof == "bad" and wrong_call.labelled_invalid  # tau2 rejected the call
    assert wrong_call.reference_shift is not None and wrong_call.prefers_reference is not None
    result = figures("reference", probes)
    assert result.turns_by_proof["bad"] >= 1 and result.turns_by_proof["good"] == 2  # gold: both
    assert result.wrong_turns_with_reference == 1
    assert result.proven_bad_labelled_invalid == 1.0


def test_hero_probe_compares_reflectors_on_the_same_turns(
    tiny_model_dir: Path, mock_episodes: list[Trajectory], tmp_path: Path
) -> None:
    traces = tmp_path / "traces.jsonl"
    write_trajectories(traces, [t.model_copy(update={"diagnoses": None}) for t in mock_episodes])
    args = ["probe", str(traces), "--policy", str(tiny_model_dir), "--no-teacher-actions"]
    for spec in ("env-feedback", "grounded", "reference"):
        args += ["--reflector", spec]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "reference (privileged)" in result.output and "grounded" in result.output
    saved = json.loads((tmp_path / "traces.probe.json").read_text())
    assert [s["reflector"] for s in saved] == ["env-feedback", "grounded", "reference"]
    assert {s["turns"] for s in saved} == {4}  # every reflector on the same four turns
    grounded = saved[1]
    assert grounded["proven_bad_labelled_invalid"] == 1.0
    assert grounded["empty_hints"] >= 2 and saved[2]["wrong_turns_with_reference"] == 1

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "exists" in again.output  # the figures are not clobbered


def test_a_probe_on_undiagnosed_traces_says_what_to_do(
    tiny_model_dir: Path, mock_episodes: list[Trajectory], tmp_path: Path
) -> None:
    traces = tmp_path / "traces.jsonl"
    write_trajectories(traces, [t.model_copy(update={"diagnoses": None}) for t in mock_episodes])
    result = CliRunner().invoke(app, ["probe", str(traces), "--policy", str(tiny_model_dir)])
    assert result.exit_code == 2 and "has no diagnoses" in result.output
    assert "Traceback" not in result.output


def test_teacher_actions_are_decoded_within_the_budget_given(
    tiny_model_dir: Path, tokenizer: Any, mock_episodes: list[Trajectory], tmp_path: Path
) -> None:
    from hero_agents.cli.probe import _greedy

    never_ends = tokenizer.convert_tokens_to_ids("a")
    model = answering_with(tiny_model_dir, never_ends).eval()
    prompt = [tokenizer.encode("Hello")]
    for budget in (3, 9):
        [action] = _greedy(model, tokenizer, budget)(prompt)
        assert action["content"] == tokenizer.decode([never_ends] * budget)

    traces = tmp_path / "traces.jsonl"
    write_trajectories(traces, mock_episodes)
    args = ["probe", str(traces), "--policy", str(tiny_model_dir), "--max-new-tokens", "0"]
    refused = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert (
        refused.exit_code == 2
        and "'--max-new-tokens': Input should be greater than or equal to 1" in refused.output
    )
