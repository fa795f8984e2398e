"""Grounded reflection: what a trace proves about each action, alone and over an LLM reflector.

Most turns come from real episodes of tau2's mock domain (the tool agent, tau2's tools and their
errors): scripted for the schema cases (`mock_episode`), sampled from the tiny model for the
malformed and cut-off calls. Actions written as text go through the policy backends' own
tool-call parser and message conversion, as a rollout would record them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from langchain_core.messages import AIMessage
from reflection_server import completion, diagnoses_json, valid_reply
from transformers import AutoModelForCausalLM, AutoTokenizer

from hero_agents.adapters.envs import make_env
from hero_agents.adapters.policy.tool_calls import parse_tool_calls
from hero_agents.adapters.policy.transformers_chat import TransformersChatModel
from hero_agents.adapters.reflectors import load_reflector
from hero_agents.distill.examples import student_examples
from hero_agents.messages import to_openai_message
from hero_agents.phases.rollout import cycling_slots, run_episodes
from hero_agents.reflection import GroundedReflector, prove_turn
from hero_agents.reflection.prompt import requested_turns
from hero_agents.trajectory import Diagnosis, Message, TokenTrace, Trajectory, Turn

CREATE_TASK = "create_task(user_id: string, title: string, description?: string)"
"""The signature of tau2 mock's create_task tool, as a hint names it."""


def diagnose(trajectory: Trajectory, **options: Any) -> list[Diagnosis]:
    [result] = GroundedReflector(**options).reflect([trajectory])
    assert result.ok and result.usage.calls == 0
    return result.diagnoses


# -- schema violations, tool errors and repeats, on a real tau2 episode ------------------------


def test_a_tool_error_is_invalid_and_its_text_is_the_cause(mock_episode: Trajectory) -> None:
    unexpected = mock_episode.turns[1]
    [error] = unexpected.observation
    assert error["status"] == "error"  # tau2 itself refused the call
    assert error["content"] == (
        "Error: MockTools.create_task() got an unexpected keyword argument 'task_id'"
    )
    diagnosis = diagnose(mock_episode)[1]
    assert (diagnosis.validity, diagnosis.necessity) == ("invalid", "necessary")
    assert diagnosis.cause == error["content"]


@pytest.mark.parametrize(
    ("turn", "hint"),
    [
        (  # unknown and missing arguments in one call
            1,
            'create_task(user_id="user_1", task_id="x") does not fit the schema of create_task: '
            "missing required argument 'title'; unknown argument 'task_id'. Its signature is "
            f"{CREATE_TASK}. It failed: Error: MockTools.create_task() got an unexpected keyword "
            "argument 'task_id'",
        ),
        (  # wrong JSON type
            2,
            'create_task(user_id=5, title="t") does not fit the schema of create_task: '
            "'user_id' must be string, got 5 (integer). Its signature is "
            f"{CREATE_TASK}. It failed: Error: User 5 not found",
        ),
        (  # missing required argument
            3,
            'create_task(title="t") does not fit the schema of create_task: missing required '
            f"argument 'user_id'. Its signature is {CREATE_TASK}. It failed: Error: "
            "MockTools.create_task() missing 1 required positional argument: 'user_id'",
        ),
        (  # a value outside the enum, which tau2 accepted without an error
            4,
            'update_task_status(task_id="task_1", status="done") does not fit the schema of '
            'update_task_status: \'status\' must be one of "pending", "completed", got "done". '
            'Its signature is update_task_status(task_id: string, status: "pending"|"completed").',
        ),
        (  # unknown tool: the tools are listed (no name is close enough to be a typo)
            5,
            "There is no tool 'delete_task'; the tools are: create_task, get_users, "
            "update_task_status, transfer_to_human_agents. It failed: Error: delete_task is not "
            "a valid tool, try one of [create_task, get_users, update_task_status, "
            "transfer_to_human_agents].",
        ),
    ],
)
def test_a_schema_violation_is_invalid_and_the_hint_names_the_signature(
    mock_episode: Trajectory, turn: int, hint: str
) -> None:
    diagnosis = diagnose(mock_episode)[turn]
    assert (diagnosis.validity, diagnosis.necessity) == ("invalid", "necessary")
    assert diagnosis.hint == hint
    assert diagnosis.reflector == "grounded"


def test_the_enum_violation_is_proven_though_the_environment_accepted_it(
    mock_episode: Trajectory,
) -> None:
    turn = mock_episode.turns[4]
    assert turn.tool_errors == 0
    finding = prove_turn(turn)
    assert [fact.kind for fact in finding.facts] == ["schema_violation"]
    assert finding.cause == (
        'update_task_status: \'status\' must be one of "pending", "completed", got "done"'
    )


def test_an_exact_repeat_whose_result_is_in_the_context_is_unnecessary(
    mock_episode: Trajectory,
) -> None:
    diagnosis = diagnose(mock_episode)[6]
    assert (diagnosis.validity, diagnosis.necessity) == ("valid", "unnecessary")
    assert diagnosis.cause == "repeats get_users(), whose result is already in the context"
    assert diagnosis.hint == (
        "get_users() repeats an earlier call whose result is already in the context: use that "
        "result instead of calling again."
    )


def test_turns_with_nothing_proven_carry_no_signal(mock_episode: Trajectory) -> None:
    diagnoses = diagnose(mock_episode)
    for turn in (0, 7):  # the first get_users, and the final answer
        assert not prove_turn(mock_episode.turns[turn]).facts
        assert diagnoses[turn].model_dump() == {
            "turn_index": turn,
            "necessity": "necessary",
            "validity": "valid",
            "cause": None,
            "hint": "",
            "reflector": "grounded",
        }


def test_a_repeat_is_proven_only_from_what_the_context_holds(mock_episode: Trajectory) -> None:
    repeat = mock_episode.turns[6]
    # The earlier result trimmed from the context: the call may be needed again.
    trimmed = [m for m in repeat.messages if m.get("tool_call_id") != "c0"]
    assert not prove_turn(repeat.model_copy(update={"messages": trimmed})).facts
    # Together with a new call, the repeat is named but the action is not unnecessary.
    new_call = {
        "id": "c7",
        "type": "function",
        "function": {"name": "get_users", "arguments": '{"x": 1}'},
    }
    both = {**repeat.action, "tool_calls": [*repeat.action["tool_calls"], new_call]}
    finding = prove_turn(repeat.model_copy(update={"action": both}))
    assert [fact.kind for fact in finding.facts] == ["schema_violation", "repeat"]
    assert not finding.unnecessary and finding.invalid


def test_without_recorded_tools_no_schema_is_claimed(mock_episode: Trajectory) -> None:
    unknown_tool = mock_episode.turns[5].model_copy(update={"tools": []})
    finding = prove_turn(unknown_tool)
    assert [fact.kind for fact in finding.facts] == ["tool_error"]  # tau2's error remains


# -- malformed and cut-off calls ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def end_of_turn(tokenizer: Any) -> set[int]:
    return set(tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]))


def text_turn(
    mock_episode: Trajectory, text: str, tokenizer: Any | None = None, *, ended: bool = False
) -> Turn:
    """The first turn of `mock_episode` with the policy's reply `text`, parsed and recorded as
    the in-process backend does (with its tokens when a tokenizer is given)."""
    parsed = parse_tool_calls(text)
    message = AIMessage(
        content=parsed.content,
        tool_calls=parsed.tool_calls,
        invalid_tool_calls=parsed.invalid_tool_calls,
    )
    tokens = None
    if tokenizer is not None:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += [tokenizer.convert_tokens_to_ids("<|im_end|>")] if ended else []
        tokens = TokenTrace(completion_token_ids=ids)
    first = mock_episode.turns[0]
    return first.model_copy(
        update={"action": to_openai_message(message), "observation": [], "tokens": tokens}
    )


BAD_JSON = '<tool_call>\n{"name": "create_task", "arguments": {"user_id": "user_1" "title": "t"}}'
CUT = '<tool_call>\n{"name": "create_task", "arguments": {"user_id": "us'


def test_unparseable_json_is_invalid_and_the_hint_says_where(mock_episode: Trajectory) -> None:
    turn = text_turn(mock_episode, BAD_JSON + "\n</tool_call>")
    [diagnosis] = diagnose(Trajectory(id="t", turns=[turn]))
    error = "tool call is not valid JSON: Expecting ',' delimiter: line 2 column 59 (char 59)"
    assert (diagnosis.validity, diagnosis.cause) == ("invalid", f"malformed tool call: {error}")
    assert diagnosis.hint == (
        f"Your tool call could not be parsed: {error}, near "
        '…"user_id": "user_1" <here> "title": "….'
    )


def test_arguments_that_are_not_json_are_malformed(mock_episode: Trajectory) -> None:
    # An OpenAI-format trace (e.g. imported from production) that nothing parsed before.
    call = {
        "id": "c9",
        "type": "function",
        "function": {"name": "create_task", "arguments": '{"user_id": "user_1", "title": }'},
    }
    action: Message = {"role": "assistant", "content": "", "tool_calls": [call]}
    turn = mock_episode.turns[0].model_copy(update={"action": action, "observation": []})
    finding = prove_turn(turn)
    assert finding.invalid and [fact.kind for fact in finding.facts] == ["malformed_call"]
    assert finding.hint() == (
        "The arguments of your create_task call are not a valid JSON object: Expecting value "
        'at character 31, near … "user_1", "title": <here> }…. '
        f"Use {CREATE_TASK}."
    )


def test_a_call_cut_off_by_the_token_budget_says_after_how_many_tokens(
    mock_episode: Trajectory, tokenizer: Any
) -> None:
    turn = text_turn(mock_episode, CUT, tokenizer)
    count = len(turn.tokens.completion_token_ids)
    finding = prove_turn(turn, end_of_turn_ids=end_of_turn(tokenizer))
    assert finding.invalid and [f.kind for f in finding.facts] == ["cut_off", "malformed_call"]
    assert finding.cause == (
        f"cut off after {count} tokens, before the end of its turn, inside an unclosed "
        "<tool_call> block"
    )
    assert finding.hint().startswith(
        f"Your action was cut off after {count} tokens, before it ended, inside an unclosed "
        "<tool_call> block: the token budget ran out. Write a shorter action that ends. "
        "Your tool call could not be parsed: unterminated <tool_call>;"
    )
    # Without the end-of-turn ids, the unclosed block alone proves the cut.
    alone = prove_turn(turn)
    assert (
        alone.cause
        == f"cut off after {count} tokens: a <tool_call> block is opened and never closed"
    )


def test_a_cut_off_answer_in_text_is_invalid(mock_episode: Trajectory, tokenizer: Any) -> None:
    turn = text_turn(mock_episode, "I will now look up the user and then", tokenizer)
    [diagnosis] = diagnose(Trajectory(id="t", turns=[turn]), end_of_turn_ids=end_of_turn(tokenizer))
    assert diagnosis.validity == "invalid"
    assert diagnosis.cause.startswith("cut off after ")
    # The same text, ended by the policy: nothing is proven.
    ended = text_turn(mock_episode, "I will now look up the user and then", tokenizer, ended=True)
    assert not prove_turn(ended, end_of_turn_ids=end_of_turn(tokenizer)).facts


def test_an_unclosed_call_in_an_ended_turn_is_malformed_not_cut(
    mock_episode: Trajectory, tokenizer: Any
) -> None:
    turn = text_turn(mock_episode, CUT, tokenizer, ended=True)
    finding = prove_turn(turn, end_of_turn_ids=end_of_turn(tokenizer))
    assert [fact.kind for fact in finding.facts] == ["malformed_call"]
    assert finding.cause.startswith("malformed tool call: unterminated <tool_call>;")


def test_a_complete_call_that_fits_its_schema_proves_nothing(
    mock_episode: Trajectory, tokenizer: Any
) -> None:
    text = (
        '<tool_call>\n{"name": "create_task", "arguments": {"user_id": "user_1", "title": "t", '
        '"description": null}}\n</tool_call>'  # null is the description's default
    )
    turn = text_turn(mock_episode, text, tokenizer, ended=True)
    assert turn.action["tool_calls"]
    assert not prove_turn(turn, end_of_turn_ids=end_of_turn(tokenizer)).facts


# -- over an LLM reflector ----------------------------------------------------------------------


def test_proven_facts_override_the_llms_labels_and_lead_its_hint(
    chat_server: Any, mock_episode: Trajectory
) -> None:
    server = chat_server(default=valid_reply)  # every turn "valid"; odd turns "unnecessary"
    reflector = load_reflector(f"grounded+openai-compatible:{server.url}#m")
    assert reflector.name == "grounded+openai-compatible:m"
    with reflector:
        [result] = reflector.reflect([mock_episode])
    assert result.ok and result.usage.calls == 1
    diagnoses = result.diagnoses
    proven = diagnose(mock_episode)

    failed = diagnoses[1]  # the LLM: valid, unnecessary, "redundant lookup"
    assert (failed.validity, failed.necessity) == ("invalid", "unnecessary")
    assert failed.cause == proven[1].cause
    assert failed.overridden == {"validity": "valid", "cause": "redundant lookup"}
    assert failed.hint == f"{proven[1].hint} Hint for turn 1."
    assert failed.reflector == "grounded+openai-compatible:m"

    repeat = diagnoses[6]  # the LLM: necessary, valid, no cause
    assert (repeat.validity, repeat.necessity) == ("valid", "unnecessary")
    assert repeat.overridden == {"necessity": "necessary", "cause": None}
    assert repeat.hint.startswith("get_users() repeats an earlier call") and repeat.hint.endswith(
        " Hint for turn 6."
    )

    for turn in (0, 7):  # nothing proven: the LLM's diagnosis as it wrote it
        assert diagnoses[turn].overridden is None
        assert diagnoses[turn].hint == f"Hint for turn {turn}."
        assert "overridden" not in json.loads(diagnoses[turn].model_dump_json())
    assert diagnoses[7].necessity == "unnecessary"  # not proven either way: the LLM's label
    stored = Trajectory.model_validate_json(result.trajectory.model_dump_json())
    assert stored.diagnoses == diagnoses  # both sources survive a round trip through JSON


def test_an_llm_label_the_trace_does_not_contradict_is_kept(
    chat_server: Any, mock_episode: Trajectory
) -> None:
    def all_invalid(body: dict[str, Any]) -> Any:
        reply = json.loads(diagnoses_json(requested_turns(body["messages"])))
        for entry in reply["diagnoses"]:
            entry.update(validity="invalid", cause="wrong step")
        return completion(json.dumps(reply))

    server = chat_server(default=all_invalid)
    with load_reflector(f"grounded+openai-compatible:{server.url}#m") as reflector:
        [result] = reflector.reflect([mock_episode])
    first, failed = result.diagnoses[0], result.diagnoses[1]
    assert (first.validity, first.cause, first.overridden) == ("invalid", "wrong step", None)
    # agreeing on the label, the proven cause replaces the LLM's (which is kept)
    assert failed.validity == "invalid" and failed.overridden == {"cause": "wrong step"}


def test_the_llms_hint_is_cut_to_fit_after_the_proven_one(
    chat_server: Any, mock_episode: Trajectory
) -> None:
    server = chat_server(
        default=lambda body: completion(
            diagnoses_json(requested_turns(body["messages"]), hint="word " * 60)
        )
    )
    inner = load_reflector(f"openai-compatible:{server.url}#m")
    with GroundedReflector(inner, max_hint_chars=300) as reflector:
        [result] = reflector.reflect([mock_episode])
    proven = diagnose(mock_episode, max_hint_chars=300)
    for diagnosis, alone in zip(result.diagnoses, proven, strict=True):
        assert len(diagnosis.hint) <= 300
        assert diagnosis.hint.startswith(alone.hint)
    assert result.diagnoses[4].hint.endswith("word word…")
    assert result.diagnoses[0].hint.startswith("word word")


def test_the_inner_reflectors_failure_is_reported(
    chat_server: Any, mock_episode: Trajectory
) -> None:
    server = chat_server(default=lambda body: completion("I cannot help with that."))
    inner = load_reflector(f"openai-compatible:{server.url}#m", format_retries=0)
    with GroundedReflector(inner) as reflector:
        [result] = reflector.reflect([mock_episode])
    assert not result.ok and "JSON" in result.error
    assert result.trajectory.diagnoses is None


# -- acceptance: every trace-proven invalid turn of real tiny-model rollouts --------------------


@pytest.fixture(scope="module")
def tool_calling_tiny_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model after 50 AdamW steps on the first turn of one tau2 mock demonstration: at
    temperature 1 it opens tool calls, mostly malformed or cut off (at random weights it never
    writes ``<tool_call>`` at all)."""
    env = make_env("tau2:mock")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    demos = env.demonstrations(env.task_ids("train")[:1]).trajectories
    [turn] = student_examples(demos, tokenizer)[0].turns[:1]
    input_ids = torch.tensor([turn.prompt_ids + turn.completion_ids])
    labels = input_ids.clone()
    labels[0, : len(turn.prompt_ids)] = -100
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for _ in range(50):
            loss = model(input_ids=input_ids, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    out = tmp_path_factory.mktemp("tool-calling-tiny")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.usefixtures("single_thread")
def test_every_trace_proven_invalid_turn_of_real_rollouts_is_labelled_invalid(
    tool_calling_tiny_model: Path, tokenizer: Any
) -> None:
    env = make_env("tau2:mock")
    policy = TransformersChatModel.from_pretrained(
        tool_calling_tiny_model, temperature=1.0, max_new_tokens=48, seed=0
    )
    slots = cycling_slots("t", env.task_ids("train")[:1], 16)
    rollouts = run_episodes(env, policy, slots, max_turns=3, concurrency=8)
    assert not rollouts.failures
    ends = end_of_turn(tokenizer)
    with GroundedReflector(end_of_turn_ids=ends) as reflector:
        results = reflector.reflect(rollouts.trajectories)

    proven: dict[str, int] = {"malformed": 0, "tool error": 0, "cut off": 0}
    turns = 0
    for result in results:
        assert result.ok
        for turn, diagnosis in zip(result.trajectory.turns, result.diagnoses, strict=True):
            turns += 1
            # What the trace shows, read directly: the parser's verdict, tau2's, the tokens'.
            shown = {
                "malformed": bool(turn.action.get("invalid_tool_calls")),
                "tool error": turn.tool_errors > 0,
                "cut off": turn.tokens.completion_token_ids[-1] not in ends,
            }
            for kind, seen in shown.items():
                proven[kind] += seen
            if any(shown.values()):
                assert diagnosis.validity == "invalid", (turn.action, diagnosis)
                assert diagnosis.cause and diagnosis.hint
            if diagnosis.validity == "valid" and diagnosis.necessity == "necessary":
                assert diagnosis.hint == "" and diagnosis.cause is None
    # The sample holds plenty of each kind the tiny model produces.
    assert proven["malformed"] >= 8 and proven["cut off"] >= 4, (proven, turns)
