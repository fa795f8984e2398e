"""What the rollout loop needs from an environment: tasks, fresh episodes, and a scorer.

Concrete environments (tau2-bench, WebShop, ...) live in `hero_agents.adapters.envs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.tools import BaseTool

from hero_agents.trajectory import Message, Trajectory


@dataclass(frozen=True)
class Score:
    """An episode's outcome: the reward in [0, 1] and the evaluator's breakdown."""

    reward: float
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Episode(Protocol):
    """One fresh, isolated instance of a task: its own tools, state and scorer."""

    task_id: str
    system_prompt: str
    initial_messages: list[BaseMessage]
    tools: list[BaseTool]

    def score(self, messages: Sequence[BaseMessage], *, termination: str) -> Score:
        """Score the finished conversation (every message after the system prompt)."""
        ...


@dataclass(frozen=True)
class UserSimulator:
    """The simulated user of an interactive episode: a chat model, its prompt (the task's
    scenario) and the signals with which it ends the conversation."""

    model: BaseChatModel
    system_prompt: str
    stop_signals: tuple[str, ...]


@runtime_checkable
class InteractiveEpisode(Episode, Protocol):
    """An episode whose user is simulated: its replies are observations, never policy turns.

    It ends with termination ``"user_stop"`` (a stop signal) or ``"max_turns"``.
    """

    user_simulator: UserSimulator


@runtime_checkable
class Environment(Protocol):
    """A named family of tasks, e.g. ``tau2:mock``."""

    name: str

    def task_ids(self, split: str = "all") -> list[str]:
        """Task ids of a split: ``"train"``, ``"test"``, ``"all"``, or another held-out split
        the environment names (``tau2:mock``'s ``"test-templates"``)."""
        ...

    def new_episode(self, task_id: str) -> Episode:
        """A fresh episode of the task; episodes never share mutable state."""
        ...


@dataclass(frozen=True)
class Demonstrations:
    """Correct episodes of some tasks, and the tasks that have none (with the reason)."""

    trajectories: list[Trajectory]
    left_out: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class DemonstrationSource(Protocol):
    """An environment that can show correct episodes of its tasks (for a warm start)."""

    def demonstrations(self, task_ids: Sequence[str]) -> Demonstrations:
        """Scored, successful episodes of `task_ids`; tasks without one are in ``left_out``."""
        ...


@dataclass(frozen=True)
class ReferenceSolution:
    """A benchmark's answer to one task: the assistant actions of a correct episode."""

    actions: tuple[Message, ...]
    """The agent's messages in order, in OpenAI format (tool calls with JSON-string arguments),
    as a policy would write them; the last is usually the closing reply."""
    compared_arguments: Mapping[int, frozenset[str]] = field(default_factory=dict)
    """Per action index, the only argument names whose values must match (tau2's
    ``compare_args``; empty: any arguments do, e.g. a free-text summary). Absent: all of them."""
    any_order: tuple[frozenset[int], ...] = ()
    """Groups of consecutive action indices that may be made in any order among themselves
    (e.g. choosing a product's options)."""


@runtime_checkable
class ReferenceSolutions(Protocol):
    """An environment that knows a correct action sequence for its tasks (privileged: a
    benchmark's answers, for reference reflection and upper bounds, never for the agent)."""

    def reference_solution(self, task_id: str) -> ReferenceSolution | None:
        """The reference of `task_id`, or None when the task has none."""
        ...


@runtime_checkable
class SolutionLengths(Protocol):
    """An environment that knows how many policy turns a correct episode of a task takes."""

    def solution_turns(self, task_id: str) -> int | None:
        """Turns of the shortest correct episode of `task_id`, or None if unknown."""
        ...
