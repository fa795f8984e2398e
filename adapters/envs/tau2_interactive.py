"""tau2-bench domains in interactive mode: the customer is an LLM user simulator, as in tau2.

What tau2's orchestrator does, and what this mode does the same way:

- the conversation opens with tau2's fixed agent greeting (``"Hi! How can I help you today?"``,
  not a policy turn) unless the task has a message history, in which case it resumes where the
  history leaves off;
- the simulator is prompted with tau2's own user-simulator system prompt (its simulation
  guidelines and the task's user scenario, built by `tau2.user.user_simulator.UserSimulator`)
  and sees the conversation with roles flipped and without the agent's tool traffic
  (`hero_agents.graphs.user_view`);
- the simulator's stop signals (``###STOP###``, ``###TRANSFER###``, ``###OUT-OF-SCOPE###``) end
  the episode with tau2's ``user_stop`` termination; an episode that runs out of agent turns
  ends with ``max_turns`` and scores 0, as tau2's ``max_steps`` does;
- scoring is the ticket-mode scorer (`Tau2Episode.score`: tau2's `evaluate_simulation` on the
  converted conversation), greeting and user turns included.

Tasks, splits and tools are those of the ticket-mode environment; only the first messages and
the simulated user differ. An interactive episode's score has ``info["mode"] == "interactive"``.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from tau2.data_model.tasks import Task
from tau2.orchestrator.orchestrator import DEFAULT_FIRST_AGENT_MESSAGE
from tau2.user.base import OUT_OF_SCOPE, STOP, TRANSFER
from tau2.user.user_simulator import UserSimulator as Tau2UserSimulator

from hero_agents.adapters.envs.tau2_env import Tau2Domain, Tau2Environment, Tau2Episode
from hero_agents.environment import Score, UserSimulator

STOP_SIGNALS: tuple[str, ...] = (STOP, TRANSFER, OUT_OF_SCOPE)
"""tau2's user-simulator stop signals, any of which ends the conversation."""

GREETING: str = DEFAULT_FIRST_AGENT_MESSAGE.content or ""
"""tau2's first agent message when a task has no message history."""


def user_simulator_prompt(task: Task) -> str:
    """tau2's system prompt for the simulated user of `task` (guidelines and scenario)."""
    return Tau2UserSimulator(instructions=str(task.user_scenario)).system_prompt


class Tau2InteractiveEpisode(Tau2Episode):
    """A tau2 task on a fresh environment, with an LLM playing its customer."""

    def __init__(
        self, domain: Tau2Domain, task: Task, user_model: BaseChatModel, *, user_sim_name: str
    ) -> None:
        super().__init__(domain, task)
        state = task.initial_state
        history = list(state.message_history or []) if state is not None else []
        # The ticket-mode first message is the task's ticket; here the user speaks for itself.
        opening: list[BaseMessage] = self.initial_messages[:-1] if history else []
        self.initial_messages = opening or [AIMessage(GREETING)]
        self.user_simulator = UserSimulator(
            model=user_model,
            system_prompt=user_simulator_prompt(task),
            stop_signals=STOP_SIGNALS,
        )
        self.user_sim_name = user_sim_name

    def score(self, messages: Sequence[BaseMessage], *, termination: str) -> Score:
        """tau2's evaluation of the conversation, marked as an interactive episode."""
        score = super().score(messages, termination=termination)
        info = {**score.info, "mode": "interactive", "user_simulator": self.user_sim_name}
        return Score(reward=score.reward, info=info)


class Tau2InteractiveEnvironment:
    """A ticket-mode tau2 environment's tasks, played with a simulated user."""

    def __init__(
        self, base: Tau2Environment, user_model: BaseChatModel, *, user_sim_name: str
    ) -> None:
        self.base = base
        self.name = base.name
        self.user_model = user_model
        self.user_sim_name = user_sim_name

    def task_ids(self, split: str = "all") -> list[str]:
        """The ticket-mode environment's task ids (tau2's splits)."""
        return self.base.task_ids(split)

    def task(self, task_id: str) -> Task:
        """The tau2 task behind an id (read-only)."""
        return self.base.task(task_id)

    def new_episode(self, task_id: str) -> Tau2InteractiveEpisode:
        """A fresh episode: its own tau2 environment, database copy and user prompt."""
        return Tau2InteractiveEpisode(
            self.base.domain,
            self.task(task_id),
            self.user_model,
            user_sim_name=self.user_sim_name,
        )

    def __repr__(self) -> str:
        return f"Tau2InteractiveEnvironment({self.name!r}, user_sim={self.user_sim_name!r})"
