"""Parity with tau2-bench's own harness on retail, airline and telecom (solo mode): the same
actions, scored through our adapter (LangGraph tool agent, LangChain tools, our conversion) and
through tau2 alone (its registered domain environment, its messages, `evaluate_simulation`),
give the same reward."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from tau2.data_model import message as tau2_msg
from tau2.data_model.simulation import RewardInfo, SimulationRun, TerminationReason
from tau2.data_model.tasks import Task
from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation
from tau2.registry import registry as tau2_registry
from tau2.utils.utils import get_now

from hero_agents.adapters.envs import make_env
from hero_agents.adapters.envs.tau2_env import Tau2Environment, first_user_message
from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.environment import Score
from hero_agents.graphs import build_tool_agent, termination_reason

Call = tuple[str, dict[str, Any]]
SAMPLED_TASKS = 5
"""Tasks per domain whose gold actions are replayed (spread over the task list)."""


def gold_calls(task: Task) -> list[Call]:
    return [(a.name, dict(a.arguments)) for a in task.evaluation_criteria.actions or []]


def closing(task: Task) -> str:
    return "Done. " + "; ".join(task.evaluation_criteria.communicate_info or [])


def through_adapter(
    env: Tau2Environment, task: Task, calls: list[Call], closing_message: AIMessage | None = None
) -> tuple[Score, list]:
    """Play `calls`, then `closing_message` (default: a reply stating the task's information),
    with our tool agent on our episode; its score and its tool results."""
    episode = env.new_episode(task.id)
    script = [
        AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"g{i}"}])
        for i, (name, args) in enumerate(calls)
    ]
    last = closing_message if closing_message is not None else AIMessage(closing(task))
    graph = build_tool_agent(
        ScriptedChatModel(responses=[*script, last]),
        episode.tools,
        system_prompt=episode.system_prompt,
        max_turns=len(calls) + 2,  # a turn to spare: the closing message ends it
    )
    state = graph.invoke({"messages": list(episode.initial_messages)})
    results = [m.text for m in state["messages"] if isinstance(m, ToolMessage)]
    return episode.score(state["messages"], termination=termination_reason(state)), results


def through_tau2(
    domain: str, task: Task, calls: list[Call], *, solo: bool = False
) -> tuple[RewardInfo, list]:
    """Play `calls` on tau2's own registered environment and score with tau2's evaluator; in
    solo mode without a user message, stopping as `LLMSoloAgent` does."""
    environment = tau2_registry.get_env_constructor(domain)(solo_mode=solo)
    state = task.initial_state
    environment.set_state(
        initialization_data=state.initialization_data if state else None,
        initialization_actions=state.initialization_actions if state else None,
        message_history=[],
    )
    messages: list[tau2_msg.Message] = (
        [] if solo else [tau2_msg.UserMessage(role="user", content=first_user_message(task))]
    )
    results = []
    for i, (name, args) in enumerate(calls):
        call = tau2_msg.ToolCall(id=f"g{i}", name=name, arguments=args, requestor="assistant")
        messages.append(tau2_msg.AssistantMessage(role="assistant", tool_calls=[call]))
        response = environment.get_response(call)
        messages.append(response)
        results.append(response.content)
    final = "###STOP###" if solo else closing(task)
    messages.append(tau2_msg.AssistantMessage(role="assistant", content=final))
    now = get_now()
    simulation = SimulationRun(
        id=str(uuid.uuid4()),
        task_id=task.id,
        start_time=now,
        end_time=now,
        duration=0.0,
        termination_reason=TerminationReason.AGENT_STOP,
        messages=messages,
    )
    reward = evaluate_simulation(
        simulation=simulation,
        task=task,
        evaluation_type=EvaluationType.ALL,
        solo_mode=solo,
        domain=domain,
    )
    return reward, results


def assert_same_breakdown(ours: Score, theirs: RewardInfo) -> None:
    assert ours.reward == theirs.reward
    assert ours.info["reward_breakdown"] == {k.value: v for k, v in theirs.reward_breakdown.items()}


def assert_same(ours: Score, theirs: RewardInfo) -> None:
    assert_same_breakdown(ours, theirs)
    assert ours.info["db_check"]["db_match"] == theirs.db_check.db_match


def writes(task: Task) -> bool:
    """Whether the task's gold actions change the database."""
    reads = ("get_", "find_", "list_", "search_", "calculate", "think", "transfer_")
    return any(not a.name.startswith(reads) for a in task.evaluation_criteria.actions or [])


def first_task_with(env: Tau2Environment, action: str) -> Task:
    return next(
        env.task(t)
        for t in env.task_ids()
        if any(a.name == action for a in env.task(t).evaluation_criteria.actions or [])
    )


@pytest.mark.parametrize("name", ["tau2:retail", "tau2:airline"])
def test_gold_actions_score_one_as_in_tau2(name: str) -> None:
    env: Tau2Environment = make_env(name)  # type: ignore[assignment]
    ids = env.task_ids()
    sample = [env.task(ids[i * len(ids) // SAMPLED_TASKS]) for i in range(SAMPLED_TASKS)]
    for task in sample:
        calls = gold_calls(task)  # may be none: some tasks are solved by refusing
        ours, our_results = through_adapter(env, task, calls)
        theirs, their_results = through_tau2(name.removeprefix("tau2:"), task, calls)
        assert ours.reward == 1.0, (task.id, ours.info)
        assert our_results == their_results  # the same tool outputs, call by call
        assert_same(ours, theirs)


@pytest.mark.parametrize("name", ["tau2:retail", "tau2:airline"])
def test_no_actions_score_zero_as_in_tau2(name: str) -> None:
    env: Tau2Environment = make_env(name)  # type: ignore[assignment]
    task = next(env.task(t) for t in env.task_ids("test") if writes(env.task(t)))
    ours, _ = through_adapter(env, task, [])
    theirs, _ = through_tau2(name.removeprefix("tau2:"), task, [])
    assert ours.reward == 0.0 and ours.info["db_check"]["db_match"] is False
    assert_same(ours, theirs)


@pytest.mark.parametrize(
    ("name", "action", "change"),
    [
        # the right order cancelled for the wrong reason
        ("tau2:retail", "cancel_pending_order", {"reason": "ordered by mistake"}),
        # a compensation certificate of the wrong amount
        ("tau2:airline", "send_certificate", {"amount": 1000}),
    ],
)
def test_a_wrong_modification_scores_zero_as_in_tau2(
    name: str, action: str, change: dict[str, Any]
) -> None:
    env: Tau2Environment = make_env(name)  # type: ignore[assignment]
    task = first_task_with(env, action)
    calls = [
        (tool, {**args, **change} if tool == action else args) for tool, args in gold_calls(task)
    ]
    assert calls != gold_calls(task)
    ours, our_results = through_adapter(env, task, calls)
    theirs, their_results = through_tau2(name.removeprefix("tau2:"), task, calls)
    assert our_results == their_results
    assert ours.reward == 0.0 and ours.info["db_check"]["db_match"] is False
    assert_same(ours, theirs)


# --------------------------------------------------------------------------- telecom, solo mode

DONE = AIMessage("", tool_calls=[{"name": "done", "args": {}, "id": "done"}])


def solo_through_adapter(
    env: Tau2Environment, task: Task, calls: list[Call], closing: AIMessage = DONE
) -> tuple[Score, list]:
    """`through_adapter` on a solo episode (no user message, the user's tools)."""
    episode = env.new_episode(task.id)
    assert not episode.initial_messages and task.ticket in episode.system_prompt
    score, results = through_adapter(env, task, calls, closing)
    if closing is DONE:
        assert results.pop() == "###STOP###"  # the done tool's own result, not tau2's
    return score, results


def solo_through_tau2(task: Task, calls: list[Call]) -> tuple[RewardInfo, list]:
    """`through_tau2` on tau2's telecom environment in solo mode."""
    return through_tau2("telecom", task, calls, solo=True)


def test_telecom_gold_actions_score_one_as_in_tau2_solo() -> None:
    env: Tau2Environment = make_env("tau2:telecom")  # type: ignore[assignment]
    ids = env.task_ids()
    sample = [env.task(ids[i * len(ids) // SAMPLED_TASKS]) for i in range(SAMPLED_TASKS)]
    # the agent acts on the phone itself: the user's tools are among the gold actions
    assert any(a.requestor == "user" for t in sample for a in t.evaluation_criteria.actions)
    for task in sample:
        calls = gold_calls(task)
        ours, our_results = solo_through_adapter(env, task, calls)
        theirs, their_results = solo_through_tau2(task, calls)
        assert ours.reward == 1.0, (task.id, ours.info)
        assert our_results == their_results
        assert_same_breakdown(ours, theirs)


def test_telecom_no_actions_and_a_wrong_one_score_zero_as_in_tau2_solo() -> None:
    env: Tau2Environment = make_env("tau2:telecom")  # type: ignore[assignment]
    task = first_task_with(env, "refuel_data")
    ours, _ = solo_through_adapter(env, task, [])
    theirs, _ = solo_through_tau2(task, [])
    assert ours.reward == 0.0
    assert_same_breakdown(ours, theirs)

    # refuelling less data than the customer asked for
    wrong = [(n, {**a, "gb_amount": 0.5} if n == "refuel_data" else a) for n, a in gold_calls(task)]
    ours, our_results = solo_through_adapter(env, task, wrong)
    theirs, their_results = solo_through_tau2(task, wrong)
    assert our_results == their_results
    assert ours.reward == 0.0
    assert_same_breakdown(ours, theirs)


def test_a_solo_agent_that_answers_in_text_scores_zero() -> None:
    env: Tau2Environment = make_env("tau2:telecom")  # type: ignore[assignment]
    task = env.task(env.task_ids("test")[0])
    ours, _ = solo_through_adapter(env, task, gold_calls(task), closing=AIMessage("All fixed."))
    assert ours.reward == 0.0
    assert ours.info["termination_reason"] == "agent_error"


def test_calls_sent_with_done_are_dropped_as_tau2_drops_them() -> None:
    env: Tau2Environment = make_env("tau2:telecom")  # type: ignore[assignment]
    task = env.task(env.task_ids("test")[0])
    (*calls, (last, args)) = gold_calls(task)
    closing = AIMessage(
        "",
        tool_calls=[
            {"name": last, "args": args, "id": "late"},
            {"name": "done", "args": {}, "id": "done"},
        ],
    )
    ours, _ = solo_through_adapter(env, task, calls, closing=closing)
    theirs, _ = solo_through_tau2(task, calls)  # the last gold action never reaches tau2
    assert ours.info["skipped_tool_calls"] == [
        {"id": "late", "name": last, "reason": "sent with done"}
    ]
    assert_same_breakdown(ours, theirs)
