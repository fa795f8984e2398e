"""Capture LangGraph runs as trajectories with a LangChain callback handler.

Pass a `TraceRecorder` in the run config of any compiled graph (or use `wrap`): every chat-model
call becomes a `Turn` holding the exact input messages, the bound tool schemas, the output
message, the ``langgraph_node`` that made the call, and the observation, i.e. every message
produced after the call and before the next policy call. The graph itself is not changed.

Observations are read from the conversation itself: the messages that follow the action in
the next call's context (or, for the last turn, in the graph's final state). Where a history is
not append-only (a node that summarizes or trims), the tool results seen by the callbacks since
the action are used instead. Events are grouped by root run, so concurrent and async runs
through one recorder never mix their turns.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import Runnable

from hero_agents.messages import to_openai_message
from hero_agents.trajectory import (
    RESPONSE_METADATA_KEY,
    Message,
    TokenTrace,
    Trajectory,
    Turn,
)

TASK_ID_KEY = "hero_task_id"
"""Run-config metadata key naming the task of a run (copied to `Trajectory.task_id`)."""
ENV_KEY = "hero_env"
"""Run-config metadata key naming the environment of a run (copied to `Trajectory.env`)."""
POLICY_VERSION_KEY = "hero_policy_version"
"""Run-config metadata key naming the policy version, when the backend does not report one."""


@dataclass
class _PendingTurn:
    context: list[BaseMessage]
    tools: list[dict[str, Any]]
    node: str | None
    action: BaseMessage | None = None
    tool_results: list[Message] = field(default_factory=list)


@dataclass
class _Run:
    metadata: dict[str, Any]
    turns: list[_PendingTurn] = field(default_factory=list)


class TraceRecorder(BaseCallbackHandler):
    """Records every chat-model call of a LangGraph run as a `Turn` of a `Trajectory`.

    Args:
        nodes: record only calls made from these LangGraph nodes (default: every chat-model
            call, which is right for agents with a single policy node).
        on_trajectory: called with each finished trajectory (e.g. a `TrajectoryWriter.write`).

    Finished trajectories are kept in `trajectories` (in completion order) unless
    `keep=False`; `take(run_id)` removes and returns the one of a given root run.
    """

    run_inline = True  # handle events in order, in the caller's thread or event loop

    def __init__(
        self,
        *,
        nodes: Collection[str] | None = None,
        on_trajectory: Callable[[Trajectory], None] | None = None,
        keep: bool = True,
    ) -> None:
        self.nodes = frozenset(nodes) if nodes is not None else None
        self.on_trajectory = on_trajectory
        self.keep = keep
        self.trajectories: list[Trajectory] = []
        self._lock = threading.Lock()
        self._root_of: dict[UUID, UUID] = {}
        self._runs: dict[UUID, _Run] = {}
        self._turn_of: dict[UUID, _PendingTurn] = {}
        self._tool_names: dict[UUID, str] = {}
        self._finished: dict[UUID, Trajectory] = {}

    # -- public ---------------------------------------------------------------------------

    def take(self, run_id: UUID) -> Trajectory:
        """Remove and return the trajectory of the finished root run `run_id`."""
        with self._lock:
            try:
                trajectory = self._finished.pop(run_id)
            except KeyError:
                raise KeyError(f"no finished run {run_id} in this recorder") from None
            self.trajectories = [t for t in self.trajectories if t is not trajectory]
            return trajectory

    # -- run bookkeeping --------------------------------------------------------------------

    def _register(self, run_id: UUID, parent_run_id: UUID | None, metadata: dict | None) -> UUID:
        """Map a run to its root run, opening a new root when it has no parent."""
        if parent_run_id is None or parent_run_id not in self._root_of:
            self._root_of[run_id] = run_id
            self._runs[run_id] = _Run(metadata=dict(metadata or {}))
        else:
            self._root_of[run_id] = self._root_of[parent_run_id]
        return self._root_of[run_id]

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            self._register(run_id, parent_run_id, metadata)

    def on_chain_end(
        self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        with self._lock:
            final = outputs.get("messages") if isinstance(outputs, dict) else None
            self._finish_if_root(run_id, final_messages=final, error=None)

    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            self._finish_if_root(run_id, final_messages=None, error=error)

    # -- policy calls -----------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        invocation_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            root = self._register(run_id, parent_run_id, metadata)
            node = (metadata or {}).get("langgraph_node")
            if self.nodes is not None and node not in self.nodes:
                return
            tools = list((invocation_params or {}).get("tools") or [])
            turn = _PendingTurn(context=list(messages[0]), tools=tools, node=node)
            self._runs[root].turns.append(turn)
            self._turn_of[run_id] = turn

    def on_llm_end(
        self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        with self._lock:
            turn = self._turn_of.pop(run_id, None)
            if turn is not None:
                turn.action = response.generations[0][0].message  # type: ignore[attr-defined]
            self._finish_if_root(run_id, final_messages=None, error=None)

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            self._turn_of.pop(run_id, None)
            self._finish_if_root(run_id, final_messages=None, error=error)

    # -- tools (fallback observations for non-append histories) ----------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            self._register(run_id, parent_run_id, metadata)
            self._tool_names[run_id] = (serialized or {}).get("name") or kwargs.get("name") or ""

    def on_tool_end(
        self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        with self._lock:
            name = self._tool_names.pop(run_id, "")
            if isinstance(output, ToolMessage):
                result = to_openai_message(output)
            else:
                result = {"role": "tool", "name": name, "content": str(output)}
            self._add_tool_result(run_id, result)

    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        with self._lock:
            name = self._tool_names.pop(run_id, "")
            result = {"role": "tool", "name": name, "content": str(error), "status": "error"}
            self._add_tool_result(run_id, result)

    def _add_tool_result(self, run_id: UUID, result: Message) -> None:
        root = self._root_of.get(run_id)
        run = self._runs.get(root) if root is not None else None
        if run is not None and run.turns:
            run.turns[-1].tool_results.append(result)

    # -- assembling trajectories ------------------------------------------------------------

    def _finish_if_root(
        self,
        run_id: UUID,
        *,
        final_messages: Sequence[BaseMessage] | None,
        error: BaseException | None,
    ) -> None:
        if self._root_of.get(run_id) != run_id:
            return
        run = self._runs.pop(run_id)
        self._root_of = {k: v for k, v in self._root_of.items() if v != run_id}
        trajectory = _assemble(run_id, run, final_messages, error)
        if self.keep:
            self.trajectories.append(trajectory)
            self._finished[run_id] = trajectory
        if self.on_trajectory is not None:
            self.on_trajectory(trajectory)


def _assemble(
    run_id: UUID,
    run: _Run,
    final_messages: Sequence[BaseMessage] | None,
    error: BaseException | None,
) -> Trajectory:
    done = [turn for turn in run.turns if turn.action is not None]
    # Contexts share most of their messages: convert each message object once.
    converted: dict[int, Message] = {}

    def convert(message: BaseMessage) -> Message:
        key = id(message)
        if key not in converted:
            converted[key] = to_openai_message(message)
        return converted[key]

    turns: list[Turn] = []
    for index, pending in enumerate(done):
        following = done[index + 1].context if index + 1 < len(done) else final_messages
        observation = _messages_after(pending.action, following, convert)
        action = convert(pending.action)  # type: ignore[arg-type]
        trace = (pending.action.response_metadata or {}).get(RESPONSE_METADATA_KEY)  # type: ignore[union-attr]
        tokens = TokenTrace.model_validate(trace) if trace else None
        version = (tokens.policy_version if tokens else None) or run.metadata.get(
            POLICY_VERSION_KEY
        )
        turns.append(
            Turn(
                index=index,
                messages=[convert(message) for message in pending.context],
                tools=pending.tools,
                action=action,
                observation=pending.tool_results if observation is None else observation,
                node=pending.node,
                policy_version=version,
                tokens=tokens,
            )
        )
    metadata: dict[str, Any] = {}
    if error is not None:
        metadata["error"] = f"{type(error).__name__}: {error}"
    return Trajectory(
        id=str(run_id),
        task_id=run.metadata.get(TASK_ID_KEY),
        env=run.metadata.get(ENV_KEY),
        turns=turns,
        termination="error" if error is not None else None,
        metadata=metadata,
    )


def _messages_after(
    action: BaseMessage | None,
    following: Sequence[BaseMessage] | None,
    convert: Callable[[BaseMessage], Message],
) -> list[Message] | None:
    """The messages after `action` in `following`, or None when `action` is not in it."""
    if action is None or not following:
        return None
    position = _position_of(action, following, convert)
    if position is None:
        return None
    return [convert(message) for message in following[position + 1 :]]


def _position_of(
    action: BaseMessage,
    following: Sequence[BaseMessage],
    convert: Callable[[BaseMessage], Message],
) -> int | None:
    """Where `action` is in `following`: the same object or id, else an equal message."""
    for position in range(len(following) - 1, -1, -1):
        candidate = following[position]
        if candidate is action or (action.id is not None and candidate.id == action.id):
            return position
    target = convert(action)
    for position in range(len(following) - 1, -1, -1):
        if convert(following[position]) == target:
            return position
    return None


GraphT = TypeVar("GraphT", bound=Runnable)


def wrap(
    graph: GraphT, recorder: TraceRecorder | None = None, **recorder_options: Any
) -> tuple[GraphT, TraceRecorder]:
    """Return `graph` with a `TraceRecorder` in its config, and the recorder.

    ``graph, recorder = hero_agents.wrap(graph)``; then invoke the graph as before and read
    ``recorder.trajectories``.
    """
    recorder = recorder or TraceRecorder(**recorder_options)
    return graph.with_config(callbacks=[recorder]), recorder  # type: ignore[return-value]


def new_run_id() -> UUID:
    """A fresh root run id to pass as ``config["run_id"]`` and later to `TraceRecorder.take`."""
    return uuid.uuid4()
