"""tau2-bench domains as hero-agents environments, in ticket mode (telecom: solo mode).

Everything domain-specific is tau2's own: its environment construction (DB, policy, toolkit),
its tools (executed through `tau2.environment.Environment.get_response`, as tau2's orchestrator
does), its tasks and splits, and its evaluator (`tau2.evaluator.evaluate_simulation` with
`EvaluationType.ALL`: DB-hash check after replaying the conversation's tool calls in a fresh
environment, env assertions, action matching, communicate-info).

An episode is a fresh tau2 environment with the task's initial state applied; its tools are
LangChain `StructuredTool`s whose args schema is the tau2 tool's own JSON schema (no client-side
validation or coercion: tau2 receives the arguments exactly as the model wrote them, as in a tau2
run). A failed tau2 call raises `ToolException` carrying tau2's error text, which the tool turns
into a ``ToolMessage(status="error")`` with that text as content (``handle_tool_error=True``), so
the model sees what tau2's own agents see and a replay reproduces it exactly.

Ticket mode: the system prompt is tau2's `LLMAgent` prompt (its agent instruction plus the
domain policy); the first user message is the task's ticket or, when it has none, its user
instructions. A task's message history (initial state) comes before that message.

Solo mode (telecom, whose tasks need the user to act on their phone): as tau2's `LLMSoloAgent`,
the agent gets the user's tools besides its own and a ``done`` tool, tau2's solo prompt (its
solo instruction, the domain's solo policy and the ticket) and no user message; it can only call
tools, and calling ``done`` ends the episode. An answer in text ends it as an agent error (tau2
scores it 0). The telecom tasks are tau2's 'base' set (its train/test splits are drawn from it).

Scoring and reward: the LangChain conversation is converted to tau2 messages and scored by
`evaluate_simulation`, which multiplies the rewards of the parts named in the task's
`reward_basis` (DB and/or ENV_ASSERTION from the environment evaluator, ACTION, COMMUNICATE),
and gives 0 when the episode did not end by the agent stopping (termination 'stop'). Two
adaptations, both reported in `Score.info`: tool calls that never reached tau2 (unknown tool
name, or no result because the episode ended first) are left out of the replay
(``info["skipped_tool_calls"]``), and an env assertion whose function raises (mock's
``assert_task_status`` on a task that was never created) counts as not met instead of aborting
the evaluation. Natural-language assertions
need an LLM judge: they are never evaluated here (``info["nl_assertions"] == "not_evaluated"``);
if NL_ASSERTION is in a task's reward basis it is removed before scoring, so the reward is the
product of the remaining parts. Tasks with no offline-evaluable part (their reward would be 1
whatever the agent did) are left out of `task_ids`.

The package `hero_agents.adapters.envs` prepares the process for tau2 before this module imports
it (offline litellm cost map, tau2's loguru output off).
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages import ToolMessage as LCToolMessage
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from tau2.agent.llm_agent import (
    AGENT_INSTRUCTION,
    AGENT_SOLO_INSTRUCTION,
    SYSTEM_PROMPT,
    SYSTEM_PROMPT_SOLO,
    LLMSoloAgent,
)
from tau2.data_model import message as tau2_msg
from tau2.data_model.simulation import SimulationRun, TerminationReason
from tau2.data_model.tasks import RewardType, Task
from tau2.environment.db import DB
from tau2.environment.environment import Environment as Tau2Env
from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation
from tau2.registry import registry as tau2_registry
from tau2.utils import load_file
from tau2.utils.utils import get_now

from hero_agents.environment import Demonstrations, ReferenceSolution, Score
from hero_agents.errors import ConfigError, EnvError
from hero_agents.messages import to_openai_messages

logger = logging.getLogger(__name__)

TICKET_FROM_INSTRUCTIONS = (
    'A customer\'s request. It was written to the customer, so "you" below is the customer.\n\n'
    "{instructions}"
)
"""First user message of a task without a ticket: its user instructions, framed."""

TERMINATIONS: dict[str, TerminationReason] = {
    "stop": TerminationReason.AGENT_STOP,
    "max_turns": TerminationReason.MAX_STEPS,
    "error": TerminationReason.AGENT_ERROR,
    **{reason.value: reason for reason in TerminationReason},
}
"""How an episode's termination string maps to tau2's (the graph says 'stop' / 'max_turns')."""


# --------------------------------------------------------------------------- domains


@dataclass(frozen=True)
class Tau2Domain:
    """How to build one tau2 domain's environment from a (cached) database."""

    name: str
    db_class: type[DB]
    db_path: Path
    get_environment: Callable[..., Tau2Env]
    solo: bool = False
    """Episodes run in tau2's solo mode (the agent has the user's tools; see the module doc)."""

    def db_data(self) -> dict[str, Any]:
        """The domain's database as loaded from its file (cached per process: do not mutate)."""
        return _raw_db(self.db_path)

    def fresh_environment(self, solo_mode: bool = False) -> Tau2Env:
        """A new tau2 environment on a private copy of the domain's database."""
        db = self.db_class.model_validate(self.db_data())
        return self.get_environment(db=db, solo_mode=solo_mode)

    def tool_functions(self) -> tuple[dict[str, Any], ...]:
        """The agent tools' OpenAI function specs (name, description, JSON-schema parameters),
        as tau2 renders them for its own agents; in solo mode the user's tools follow."""
        return _tool_functions(self)


@functools.cache
def _tool_functions(domain: Tau2Domain) -> tuple[dict[str, Any], ...]:
    # Building tau2's Tool objects parses docstrings (half the cost of an episode): once per
    # domain. Episodes execute calls through their own environment, not through these objects.
    env = domain.fresh_environment(solo_mode=domain.solo)
    tools = [*env.get_tools(), *(env.get_user_tools() if domain.solo else [])]
    return tuple(t.openai_schema["function"] for t in tools)


@functools.cache
def _raw_db(path: Path) -> dict[str, Any]:
    # Validating a cached dict builds new containers (no sharing between copies) and is the
    # cheapest way to a fresh DB: airline ~0.15 s vs ~0.2 s from file, retail 0.02 vs 0.12 s.
    return load_file(path)


@functools.cache
def tau2_domain(name: str) -> Tau2Domain:
    """The tau2 domain called `name` ('mock', 'retail', 'airline' or 'telecom')."""
    if name == "mock":
        from tau2.domains.mock.data_model import MockDB
        from tau2.domains.mock.environment import get_environment
        from tau2.domains.mock.utils import MOCK_DB_PATH

        return Tau2Domain(name, MockDB, Path(MOCK_DB_PATH), get_environment)
    if name == "retail":
        from tau2.domains.retail.data_model import RetailDB
        from tau2.domains.retail.environment import get_environment
        from tau2.domains.retail.utils import RETAIL_DB_PATH

        return Tau2Domain(name, RetailDB, Path(RETAIL_DB_PATH), get_environment)
    if name == "airline":
        from tau2.domains.airline.data_model import FlightDB
        from tau2.domains.airline.environment import get_environment
        from tau2.domains.airline.utils import AIRLINE_DB_PATH

        return Tau2Domain(name, FlightDB, Path(AIRLINE_DB_PATH), get_environment)
    if name == "telecom":
        from tau2.domains.telecom.data_model import TelecomDB
        from tau2.domains.telecom.environment import get_environment
        from tau2.domains.telecom.utils import TELECOM_DB_PATH

        return Tau2Domain(name, TelecomDB, Path(TELECOM_DB_PATH), get_environment, solo=True)
    raise ConfigError(
        f"unknown tau2 domain {name!r}; known: 'mock', 'retail', 'airline', 'telecom'"
    )


_REGISTRATION_LOCK = threading.Lock()


def _evaluator_domain(domain: Tau2Domain) -> str:
    """Name under which tau2's registry builds `domain` for its evaluator.

    `evaluate_simulation` looks the environment constructor up by name. The one registered here
    validates the cached DB (no JSON reparsing, twice per score) and makes an env assertion whose
    function raises (e.g. mock's ``assert_task_status`` on a task the agent never created)
    count as not met instead of aborting the evaluation.
    """
    key = f"hero-agents:{domain.name}"

    def construct(solo_mode: bool = False) -> Tau2Env:
        env = domain.fresh_environment(solo_mode=solo_mode)
        env.run_env_assertion = functools.partial(_assertion_or_unmet, env.run_env_assertion)
        return env

    with _REGISTRATION_LOCK:
        if key not in tau2_registry.get_domains():
            tau2_registry.register_domain(construct, key)
    return key


def _assertion_or_unmet(
    run: Callable[..., bool], assertion: Any, raise_assertion_error: bool = True
) -> bool:
    try:
        return run(assertion, raise_assertion_error=raise_assertion_error)
    except (AssertionError, ValueError, KeyError) as error:
        if raise_assertion_error:
            raise
        logger.debug("env assertion %s raised %r: counted as not met", assertion.func_name, error)
        return False


TASK_SETS: Mapping[str, str | None] = {"telecom": "base"}
"""tau2 task set of a domain where it is not all of its tasks (telecom's full set has 2285
generated tasks; its train/test splits cover the 114 of 'base')."""


@functools.cache
def domain_tasks(name: str) -> tuple[Task, ...]:
    """tau2's own tasks of a domain (cached per process; treat them as read-only)."""
    return tuple(tau2_registry.get_tasks_loader(name)(TASK_SETS.get(name)))


@functools.cache
def domain_splits(name: str) -> Mapping[str, tuple[str, ...]]:
    """tau2's own task splits of a domain (its split_tasks.json), e.g. 'train', 'test', 'base'."""
    loader = tau2_registry.get_task_splits_loader(name)
    return {k: tuple(v) for k, v in loader().items()} if loader is not None else {}


# --------------------------------------------------------------------------- tasks


def evaluable_parts(task: Task) -> list[RewardType]:
    """The parts of the task's reward basis that can be scored offline and depend on the agent.

    DB/ENV_ASSERTION count when the task has expected actions or env assertions (tau2 gives 1.0
    without looking otherwise), ACTION when it has expected actions, COMMUNICATE when it has
    communicate_info; NL_ASSERTION never (it needs an LLM judge).
    """
    criteria = task.evaluation_criteria
    if criteria is None:
        return []
    parts = []
    for part in criteria.reward_basis:
        if part in (RewardType.DB, RewardType.ENV_ASSERTION):
            informative = criteria.actions is not None or criteria.env_assertions is not None
        elif part == RewardType.ACTION:
            informative = bool(criteria.actions)
        elif part == RewardType.COMMUNICATE:
            informative = bool(criteria.communicate_info)
        else:
            informative = False
        if informative:
            parts.append(part)
    return parts


def first_user_message(task: Task) -> str:
    """The task in ticket mode: its ticket, or its user instructions framed as a request."""
    if task.ticket:
        return task.ticket
    return TICKET_FROM_INSTRUCTIONS.format(instructions=str(task.user_scenario.instructions))


def system_prompt_for(policy: str) -> str:
    """tau2's `LLMAgent` system prompt: its agent instruction and the domain policy."""
    return SYSTEM_PROMPT.format(domain_policy=policy, agent_instruction=AGENT_INSTRUCTION)


def solo_system_prompt_for(policy: str, ticket: str) -> str:
    """tau2's `LLMSoloAgent` system prompt: its solo instruction, the policy and the ticket."""
    instruction = AGENT_SOLO_INSTRUCTION.format(
        stop_function_name=LLMSoloAgent.STOP_FUNCTION_NAME, stop_token=LLMSoloAgent.STOP_TOKEN
    )
    return SYSTEM_PROMPT_SOLO.format(
        agent_instruction=instruction, domain_policy=policy, ticket=ticket
    )


def stop_tool() -> StructuredTool:
    """The solo agent's ``done`` tool (tau2's): calling it ends the episode."""

    def done() -> str:
        return LLMSoloAgent.STOP_TOKEN

    return StructuredTool.from_function(
        func=done,
        name=LLMSoloAgent.STOP_FUNCTION_NAME,
        description="Call this function when you are done with the task.",
        return_direct=True,
    )


# --------------------------------------------------------------------------- messages


def tau2_to_langchain(messages: Sequence[tau2_msg.Message]) -> list[BaseMessage]:
    """tau2 messages (e.g. a task's message history) as LangChain messages."""
    out: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, tau2_msg.MultiToolMessage):
            out.extend(tau2_to_langchain(message.tool_messages))
        elif isinstance(message, tau2_msg.ToolMessage):
            out.append(
                LCToolMessage(
                    content=message.content or "",
                    tool_call_id=message.id,
                    status="error" if message.error else "success",
                )
            )
        elif isinstance(message, tau2_msg.AssistantMessage):
            calls = [
                {"name": c.name, "args": dict(c.arguments), "id": c.id, "type": "tool_call"}
                for c in message.tool_calls or []
            ]
            out.append(AIMessage(content=message.content or "", tool_calls=calls))
        elif isinstance(message, tau2_msg.UserMessage):
            if message.tool_calls:
                raise EnvError("user tool calls (telecom-style) are not supported in ticket mode")
            out.append(HumanMessage(content=message.content or ""))
        elif isinstance(message, tau2_msg.SystemMessage):
            out.append(SystemMessage(content=message.content or ""))
        else:
            raise EnvError(f"unexpected tau2 message type {type(message).__name__}")
    return out


@dataclass(frozen=True)
class SkippedToolCall:
    """A tool call left out of the tau2 trajectory because it never reached the environment."""

    id: str
    name: str
    reason: str


def langchain_to_tau2(
    messages: Sequence[BaseMessage], *, tool_names: set[str], stop_tool: str | None = None
) -> tuple[list[tau2_msg.Message], list[SkippedToolCall]]:
    """A LangChain conversation as tau2 messages, each assistant message's tool calls followed
    by their results in call order (as tau2's orchestrator records them).

    System messages are dropped. A tool call is kept only if it reached the tau2 environment:
    its name is one of `tool_names` and a ToolMessage answers it (a call to an unknown tool gets
    an error from LangGraph, not from tau2; a call without a result was never executed). A call
    to `stop_tool` (solo mode's ``done``) becomes tau2's stop message, as `LLMSoloAgent` makes it.
    """
    results = {m.tool_call_id: m for m in messages if isinstance(m, LCToolMessage)}
    out: list[tau2_msg.Message] = []
    skipped: list[SkippedToolCall] = []
    for message in messages:
        if isinstance(message, HumanMessage):
            out.append(tau2_msg.UserMessage(role="user", content=message.text))
        elif isinstance(message, AIMessage):
            if stop_tool is not None and any(c["name"] == stop_tool for c in message.tool_calls):
                # tau2 drops the other calls of a stop message, unexecuted
                skipped.extend(
                    SkippedToolCall(c.get("id") or "", c["name"], f"sent with {stop_tool}")
                    for c in message.tool_calls
                    if c["name"] != stop_tool
                )
                content = LLMSoloAgent.STOP_TOKEN
                out.append(tau2_msg.AssistantMessage(role="assistant", content=content))
                continue
            calls: list[tau2_msg.ToolCall] = []
            replies: list[tau2_msg.ToolMessage] = []
            for call in message.tool_calls:
                call_id = call.get("id") or ""
                if call["name"] not in tool_names:
                    skipped.append(SkippedToolCall(call_id, call["name"], "unknown tool"))
                    continue
                result = results.get(call_id)
                if result is None:
                    skipped.append(SkippedToolCall(call_id, call["name"], "no tool result"))
                    continue
                calls.append(
                    tau2_msg.ToolCall(id=call_id, name=call["name"], arguments=call["args"])
                )
                replies.append(
                    tau2_msg.ToolMessage(
                        id=call_id,
                        role="tool",
                        content=result.text,
                        requestor="assistant",
                        error=result.status == "error",
                    )
                )
            text = message.text or None
            if text is None and not calls:
                continue
            out.append(
                tau2_msg.AssistantMessage(role="assistant", content=text, tool_calls=calls or None)
            )
            out.extend(replies)
        elif isinstance(message, (LCToolMessage, SystemMessage)):
            continue  # tool results were placed after their calls; the prompt is not scored
        else:
            raise EnvError(f"cannot convert a {type(message).__name__} into a tau2 message")
    return out, skipped


# --------------------------------------------------------------------------- episodes


class Tau2Episode:
    """One task on a fresh tau2 environment: LangChain tools, prompt, first messages, scorer."""

    def __init__(self, domain: Tau2Domain, task: Task) -> None:
        self.domain = domain
        self.task = task
        self.task_id: str = task.id
        self._lock = threading.Lock()
        self._env = domain.fresh_environment(solo_mode=domain.solo)
        state = task.initial_state
        history = list(state.message_history or []) if state is not None else []
        self._env.set_state(
            initialization_data=state.initialization_data if state is not None else None,
            initialization_actions=state.initialization_actions if state is not None else None,
            message_history=history,
        )
        self.tools: list[BaseTool] = [self._langchain_tool(f) for f in domain.tool_functions()]
        if domain.solo:
            if task.ticket is None or not LLMSoloAgent.check_valid_task(task):
                raise EnvError(f"task {task.id!r} cannot run in tau2's solo mode (no ticket)")
            self.system_prompt: str = solo_system_prompt_for(self._env.get_policy(), task.ticket)
            self.initial_messages: list[BaseMessage] = tau2_to_langchain(history)
            self.tools.append(stop_tool())
        else:
            self.system_prompt = system_prompt_for(self._env.get_policy())
            self.initial_messages = [
                *tau2_to_langchain(history),
                HumanMessage(content=first_user_message(task)),
            ]

    def _langchain_tool(self, function: dict[str, Any]) -> StructuredTool:
        name = function["name"]

        def call(**arguments: Any) -> str:
            return self._execute(name, arguments)

        async def acall(**arguments: Any) -> str:
            # tau2 calls are fast and synchronous: running them inline keeps the order of a
            # message's tool calls the order in which they execute, as a replay expects.
            return self._execute(name, arguments)

        return StructuredTool(
            name=name,
            description=function["description"],
            args_schema=copy.deepcopy(function["parameters"]),  # the cached spec stays intact
            func=call,
            coroutine=acall,
            handle_tool_error=True,
        )

    def _execute(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one tool call on this episode's environment the way tau2's orchestrator does."""
        call = tau2_msg.ToolCall(name=name, arguments=arguments, requestor="assistant")
        with self._lock:
            response = self._env.get_response(call)
        if response.error:
            raise ToolException(response.content)
        return response.content or ""

    def score(self, messages: Sequence[BaseMessage], *, termination: str) -> Score:
        """Score the conversation (everything after the system prompt) with tau2's evaluator."""
        reason = TERMINATIONS.get(termination)
        if reason is None:
            raise EnvError(
                f"unknown termination {termination!r}; expected one of {sorted(TERMINATIONS)}"
            )
        solo = self.domain.solo
        stop = LLMSoloAgent.STOP_FUNCTION_NAME if solo else None
        trajectory, skipped = langchain_to_tau2(
            messages, tool_names={t.name for t in self.tools} - {stop}, stop_tool=stop
        )
        if solo and reason == TerminationReason.AGENT_STOP and not _ends_with_stop(trajectory):
            reason = TerminationReason.AGENT_ERROR  # a solo agent may only stop through `done`
        criteria = self.task.evaluation_criteria
        declared = list(criteria.reward_basis) if criteria is not None else []
        task = self.task
        if RewardType.NL_ASSERTION in declared:
            kept = [part for part in declared if part != RewardType.NL_ASSERTION]
            task = task.model_copy(
                update={"evaluation_criteria": criteria.model_copy(update={"reward_basis": kept})}
            )
        now = get_now()
        simulation = SimulationRun(
            id=str(uuid.uuid4()),
            task_id=self.task_id,
            start_time=now,
            end_time=now,
            duration=0.0,
            termination_reason=reason,
            messages=trajectory,
        )
        try:
            reward_info = evaluate_simulation(
                simulation=simulation,
                task=task,
                evaluation_type=EvaluationType.ALL,
                solo_mode=solo,
                domain=_evaluator_domain(self.domain),
            )
        except (ValueError, AssertionError) as error:
            raise EnvError(
                f"tau2 could not replay the conversation of task {self.task_id!r}: {error}. "
                "Score the messages this episode produced, unedited (tool results must be the "
                "ones its tools returned, in the order of the calls)."
            ) from error
        info = reward_info.model_dump(mode="json", exclude={"reward"})
        info["tau2_notes"] = info.pop("info")
        info["domain"] = self.domain.name
        info["termination_reason"] = reason.value
        info["reward_basis_declared"] = [part.value for part in declared]
        info["nl_assertions"] = "not_evaluated" if criteria and criteria.nl_assertions else None
        info["nl_assertion_texts"] = list(criteria.nl_assertions or []) if criteria else []
        info["skipped_tool_calls"] = [vars(s) for s in skipped]
        return Score(reward=float(reward_info.reward), info=info)


def _ends_with_stop(trajectory: Sequence[tau2_msg.Message]) -> bool:
    last = trajectory[-1] if trajectory else None
    return isinstance(last, tau2_msg.AssistantMessage) and LLMSoloAgent.is_stop(last)


# --------------------------------------------------------------------------- environments


class Tau2Environment:
    """A named set of tau2 tasks of one domain, with train/test splits (and possibly other
    held-out splits, e.g. `tau2:mock`'s ``test-templates``)."""

    def __init__(
        self,
        name: str,
        domain: str,
        tasks: Sequence[Task],
        splits: Mapping[str, Sequence[str]],
    ) -> None:
        """`splits` must name 'train' and 'test'; any other split is held out like 'test'.
        Tasks with nothing to score offline are dropped (see `evaluable_parts`)."""
        self.name = name
        self.domain = tau2_domain(domain)
        self._tasks = {t.id: t for t in tasks if evaluable_parts(t)}
        self._unscoreable = {t.id for t in tasks} - set(self._tasks)
        missing = {"train", "test"} - set(splits)
        if missing:
            raise EnvError(f"{name}: splits {sorted(missing)} are missing")
        self._splits = {
            split: [i for i in ids if i in self._tasks] for split, ids in splits.items()
        }
        train = set(self._splits["train"])
        for split, ids in self._splits.items():
            overlap = train & set(ids)
            if split != "train" and overlap:
                raise EnvError(f"{name}: tasks in both train and {split}: {sorted(overlap)[:5]}")
        self._splits["all"] = list(self._tasks)

    def task_ids(self, split: str = "all") -> list[str]:
        """Task ids of a split (``"train"``, ``"test"``, ``"all"`` or another held-out split
        the environment has), in a fixed order."""
        if split not in self._splits:
            raise ConfigError(
                f"unknown split {split!r} for {self.name}; valid: {list(self._splits)}"
            )
        return list(self._splits[split])

    def task(self, task_id: str) -> Task:
        """The tau2 task behind an id (read-only)."""
        try:
            return self._tasks[task_id]
        except KeyError:
            if task_id in self._unscoreable:
                raise ConfigError(
                    f"task {task_id!r} of {self.name} has nothing that can be scored offline "
                    "(only natural-language assertions), so it is not offered"
                ) from None
            raise ConfigError(
                f"unknown task {task_id!r} for {self.name}; see task_ids() "
                f"({len(self._tasks)} tasks)"
            ) from None

    def new_episode(self, task_id: str) -> Tau2Episode:
        """A fresh episode: its own tau2 environment and database copy."""
        return Tau2Episode(self.domain, self.task(task_id))

    def solution_turns(self, task_id: str) -> int | None:
        """Turns of the gold solution: its actions, one a turn, then the reply to the user;
        None for a task without gold actions."""
        actions = self.task(task_id).evaluation_criteria.actions
        return len(actions) + 1 if actions else None

    def demonstrations(self, task_ids: Sequence[str]) -> Demonstrations:
        """Each task's gold actions played through the agent graph and scored (`tau2_demos`)."""
        from hero_agents.adapters.envs.tau2_demos import gold_replies
        from hero_agents.demonstrations import record_demonstrations

        scripts, left_out = {}, {}
        for task_id in task_ids:
            replies = gold_replies(self.task(task_id), solo=self.domain.solo)
            if replies is None:
                left_out[task_id] = "no gold actions"
            else:
                scripts[task_id] = replies
        return record_demonstrations(self, scripts, left_out=left_out)

    def reference_solution(self, task_id: str) -> ReferenceSolution | None:
        """The task's gold actions as the agent's replies (its demonstration's script, with the
        arguments tau2 compares); None for a task without gold actions."""
        from hero_agents.adapters.envs.tau2_demos import compared_arguments, gold_replies

        task = self.task(task_id)
        replies = gold_replies(task, solo=self.domain.solo)
        if replies is None:
            return None
        return ReferenceSolution(tuple(to_openai_messages(replies)), compared_arguments(task))

    def __repr__(self) -> str:
        return f"Tau2Environment({self.name!r}, tasks={len(self._tasks)})"
